// `stowage adopt <distribution-root>`: builds the index of a CNCF Distribution storage root in
// place (tools/adopt/), with a progress bar on a terminal and a plain line every few seconds
// otherwise, then a summary of what was adopted and what was skipped.

import { DEFAULT_STORAGE } from '../config/config.js';
import { adoptDistributionRoot, AdoptionError, type AdoptionSummary } from '../tools/adopt/adopt.js';
import { distributionTreeOf, openStorage } from '../store/open-storage.js';
import { formatDuration } from './progress.js';

export interface AdoptCommandOptions {
  again?: boolean;
  stream?: NodeJS.WriteStream;
}

/** Adopts `root`; rejects with AdoptionError when it is not a Distribution root. */
export async function runAdopt(root: string, options: AdoptCommandOptions = {}): Promise<AdoptionSummary> {
  const settings = { root, storage: DEFAULT_STORAGE };
  // Checked before the storage opens (and creates its index), so a mistyped root gets no stowage/ directory.
  const tree = distributionTreeOf(settings);
  if (!(await tree.exists())) throw new AdoptionError(`not a Distribution storage root: ${tree.layout.base} is not a directory`);
  const storage = await openStorage(settings);
  const { index } = storage;
  const bar = new CountBar(options.stream ?? process.stderr);
  try {
    const summary = await adoptDistributionRoot(index, { tree: storage.distributionTree, blobs: storage.blobs }, {
      again: options.again,
      onProgress: (done, total, repository) => bar.update(done, total, repository),
    });
    bar.end();
    return summary;
  } catch (error) {
    bar.end();
    throw error;
  } finally {
    await storage.close();
  }
}

export function formatAdoptionSummary(summary: AdoptionSummary): string {
  if (summary.alreadyAdoptedAt !== undefined) {
    return (
      `${summary.root} was adopted already (${new Date(summary.alreadyAdoptedAt).toISOString()}); nothing done.\n` +
      'Run with --again to read it again (adds what Distribution wrote since; removes nothing).\n'
    );
  }
  const lines = [
    `adopted ${summary.root} in ${formatDuration(summary.durationMs / 1000)}:`,
    `  repositories          ${summary.repositories}`,
    `  blobs linked          ${summary.blobsLinked}`,
    `  manifests             ${summary.manifests}` +
      (summary.manifestsWithMissingReferences > 0
        ? ` (${summary.manifestsWithMissingReferences} reference blobs or manifests their repository lacks; recorded as Distribution served them)`
        : ''),
    `  tags                  ${summary.tags}`,
    `  uploads in progress   ${summary.uploads}`,
    `  problems skipped      ${summary.problems}`,
  ];
  for (const { where, problem } of summary.problemList) lines.push(`    ${where}: ${problem}`);
  if (summary.problems > summary.problemList.length) {
    lines.push(`    ... and ${summary.problems - summary.problemList.length} more`);
  }
  return `${lines.join('\n')}\n`;
}

/** A bar of repositories done out of the total; plain lines every few seconds when not on a terminal. */
class CountBar {
  private readonly tty: boolean;
  private lastDraw = 0;
  private drawn = false;
  private readonly started = Date.now();

  constructor(private readonly stream: NodeJS.WriteStream) {
    this.tty = stream.isTTY === true;
  }

  update(done: number, total: number, repository: string): void {
    const now = Date.now();
    if (now - this.lastDraw < (this.tty ? 100 : 5_000) && done < total) return;
    // Not on a terminal, a quick adoption prints no progress lines at all: the summary says it.
    if (!this.tty && !this.drawn && now - this.started < 5_000) return;
    this.lastDraw = now;
    this.drawn = true;
    const fraction = total === 0 ? 1 : done / total;
    const width = 24;
    const filled = Math.round(fraction * width);
    const percent = `${(fraction * 100).toFixed(0).padStart(3)}%`;
    const count = `${done}/${total} repositories`;
    if (this.tty) {
      const name = repository.length > 40 ? `...${repository.slice(-37)}` : repository;
      this.stream.write(`\r\x1b[Kadopt [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}  ${count}  ${name}`);
    } else {
      this.stream.write(`adopt ${percent}  ${count}\n`);
    }
  }

  end(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
  }
}
