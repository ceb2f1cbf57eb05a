// Runs garbage collection inside the server: every gc.interval, and on demand (the admin
// endpoint). Runs never overlap: an on-demand run waits for the one in progress, and the
// next scheduled run counts from the end of the last one. close() waits for a run in
// progress, so the index is never closed under it.

import type { GcConfig } from '../config/config.js';
import { collectGarbage, type GcDeps, type GcReport, type GcSettings } from './collector.js';

export interface GcSchedule extends GcSettings {
  /** Milliseconds between the end of one run and the start of the next; 0: only on demand. */
  intervalMs: number;
}

/** The configuration (seconds) as the collector's settings (milliseconds), with test overrides on top. */
export function gcSchedule(config: GcConfig | undefined, overrides: Partial<GcSchedule> = {}): GcSchedule {
  const seconds = (value: number | undefined, fallback: number) => (value ?? fallback) * 1000;
  return {
    intervalMs: seconds(config?.interval, DEFAULT_GC.interval),
    graceMs: seconds(config?.grace, DEFAULT_GC.grace),
    uploadsStaleAfterMs: seconds(config?.uploadsStaleAfter, DEFAULT_GC.uploadsStaleAfter),
    untaggedManifestAgeMs: config?.untaggedManifestAge === undefined ? undefined : config.untaggedManifestAge * 1000,
    ...overrides,
  };
}

/** Mirrors config.ts's defaults for callers without a configuration (tests, tools). */
const DEFAULT_GC = { interval: 3600, grace: 3600, uploadsStaleAfter: 86_400 };

export interface GcLog {
  info(details: object, message: string): void;
  error(details: object, message: string): void;
}

export class GcScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Completed runs (dry runs excluded) since start, and what they removed in all. */
  readonly totals = { runs: 0, bytesReclaimed: 0, blobsRemoved: 0, linksDropped: 0, manifestsRemoved: 0, uploadsPurged: 0 };
  last: GcReport | undefined;

  constructor(
    private readonly deps: GcDeps,
    private readonly schedule: GcSchedule,
    private readonly log: GcLog,
    private readonly onRun: (report: GcReport) => void = () => undefined,
  ) {}

  start(): void {
    if (this.schedule.intervalMs > 0) this.arm();
  }

  /** One run now, after any run in progress; a dry run changes nothing. */
  run(options: { dryRun?: boolean } = {}): Promise<GcReport> {
    const next = this.running.then(() => this.collect(options.dryRun === true));
    this.running = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private arm(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.run().then(
        () => this.arm(),
        () => this.arm(),
      );
    }, this.schedule.intervalMs);
    // A pending run never keeps the process alive.
    this.timer.unref();
  }

  private async collect(dryRun: boolean): Promise<GcReport> {
    if (this.closed) throw new Error('garbage collection stopped: the registry is closing');
    try {
      const report = await collectGarbage(this.deps, this.schedule, { dryRun });
      if (!dryRun) {
        this.totals.runs++;
        this.totals.bytesReclaimed += report.bytesReclaimed;
        this.totals.blobsRemoved += report.blobsRemoved + report.orphanFilesRemoved;
        this.totals.linksDropped += report.linksDropped;
        this.totals.manifestsRemoved += report.manifestsRemoved;
        this.totals.uploadsPurged += report.uploadsPurged;
        this.last = report;
        this.onRun(report);
      }
      const removed = report.manifestsRemoved + report.linksDropped + report.blobsRemoved + report.orphanFilesRemoved + report.uploadsPurged;
      if (dryRun || removed > 0) this.log.info({ gc: report }, dryRun ? 'garbage collection dry run' : 'garbage collected');
      return report;
    } catch (error) {
      this.log.error({ err: error }, 'garbage collection failed');
      throw error;
    }
  }
}
