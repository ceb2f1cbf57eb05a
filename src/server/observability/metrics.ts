// Every Prometheus metric Stowage exports, in one registry per running server (so two
// servers in one process, as in the tests, never share counters). The hot path touches
// this module once per request (observeRequest) and once per upload request
// (uploadBytesReceived); everything describing state (pool, index, disk) is read only when
// /metrics is scraped, through the sources given to the constructor.
//
// Other parts of the server report through the methods here, never through prom-client
// directly: garbage collection calls gcRun() after each run.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the scrape reads from the hash pool. */
export interface PoolSource {
  readonly queueSize: number;
  readonly utilization: number;
  readonly threadCount: number;
  readonly completedTasks: number;
}

/** What the scrape reads from the index: entry counts by kind and the bytes its pages use. */
export interface IndexSource {
  stats(): Promise<{ sizeBytes: number; entries: Record<string, number> }>;
}

/** What the scrape reads of the storage's space (storage.ts' capacity). */
export type CapacitySource = () => Promise<{ freeBytes: number; totalBytes: number } | undefined>;

export interface MetricsSources {
  pool?: PoolSource;
  index?: IndexSource;
  /** Free and total space where blobs go. */
  capacity?: CapacitySource;
}

export interface GcRunDetails {
  blobsRemoved?: number;
  manifestsRemoved?: number;
  uploadsPurged?: number;
  durationSeconds?: number;
}

/** Route labels: the endpoint kind, never the path (repository names would explode cardinality). */
export type RouteLabel = string;

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly duration: Histogram<'route' | 'method' | 'status'>;
  private readonly bytesIn: Counter;
  private readonly bytesOut: Counter;
  private readonly uploadsInFlight: Gauge;
  private readonly gcRuns: Counter;
  private readonly gcBytes: Counter;
  private readonly gcRemoved: Counter<'kind'>;
  private readonly gcDuration: Histogram;
  private readonly gcLast: Gauge;

  constructor(sources: MetricsSources = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'stowage_' });

    this.requests = new Counter({
      name: 'stowage_http_requests_total',
      help: 'HTTP requests, by endpoint kind, method and status (499: the client went away before the response was complete)',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'stowage_http_request_duration_seconds',
      help: 'Time from receiving a request to finishing its response, by endpoint kind, method and status (completed responses)',
      labelNames: ['route', 'method', 'status'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.bytesIn = new Counter({
      name: 'stowage_upload_bytes_received_total',
      help: 'Blob bytes received by uploads and made durable (monolithic, chunked and streamed)',
      registers,
    });
    this.bytesOut = new Counter({
      name: 'stowage_blob_bytes_served_total',
      help: 'Blob bytes sent in completed GET responses (whole blobs and ranges)',
      registers,
    });
    this.uploadsInFlight = new Gauge({
      name: 'stowage_uploads_in_progress',
      help: 'Upload requests currently streaming blob data (POST, PATCH and PUT on upload endpoints)',
      registers,
    });

    if (sources.pool) this.registerPool(sources.pool);
    if (sources.index) this.registerIndex(sources.index);
    if (sources.capacity) this.registerStorage(sources.capacity);

    this.gcRuns = new Counter({ name: 'stowage_gc_runs_total', help: 'Garbage collection runs completed', registers });
    this.gcBytes = new Counter({
      name: 'stowage_gc_bytes_reclaimed_total',
      help: 'Bytes freed on disk by garbage collection',
      registers,
    });
    this.gcRemoved = new Counter({
      name: 'stowage_gc_removed_total',
      help: 'Items removed by garbage collection, by kind (blob, manifest, upload)',
      labelNames: ['kind'],
      registers,
    });
    this.gcDuration = new Histogram({
      name: 'stowage_gc_duration_seconds',
      help: 'Duration of garbage collection runs',
      buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800],
      registers,
    });
    this.gcLast = new Gauge({
      name: 'stowage_gc_last_run_timestamp_seconds',
      help: 'When the last garbage collection run finished (Unix time)',
      registers,
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Once per request, when its response has finished. */
  observeRequest(route: RouteLabel, method: string, status: number, seconds: number): void {
    const labels = { route, method, status: String(status) };
    this.requests.inc(labels);
    this.duration.observe(labels, seconds);
  }

  /** A request the client abandoned before its response finished: counted, not timed. */
  observeAbort(route: RouteLabel, method: string, status: number): void {
    this.requests.inc({ route, method, status: String(status) });
  }

  uploadBytesReceived(bytes: number): void {
    if (bytes > 0) this.bytesIn.inc(bytes);
  }

  blobBytesServed(bytes: number): void {
    if (bytes > 0) this.bytesOut.inc(bytes);
  }

  uploadStarted(): void {
    this.uploadsInFlight.inc();
  }

  uploadEnded(): void {
    this.uploadsInFlight.dec();
  }

  /** Called by garbage collection after each run, dry runs excluded. */
  gcRun(bytesReclaimed: number, details: GcRunDetails = {}): void {
    this.gcRuns.inc();
    if (bytesReclaimed > 0) this.gcBytes.inc(bytesReclaimed);
    if (details.blobsRemoved) this.gcRemoved.inc({ kind: 'blob' }, details.blobsRemoved);
    if (details.manifestsRemoved) this.gcRemoved.inc({ kind: 'manifest' }, details.manifestsRemoved);
    if (details.uploadsPurged) this.gcRemoved.inc({ kind: 'upload' }, details.uploadsPurged);
    if (details.durationSeconds !== undefined) this.gcDuration.observe(details.durationSeconds);
    this.gcLast.setToCurrentTime();
  }

  private registerPool(pool: PoolSource): void {
    const registers = [this.registry];
    new Gauge({
      name: 'stowage_hash_pool_queue_size',
      help: 'Hash tasks waiting for a worker thread',
      registers,
      collect() {
        this.set(pool.queueSize);
      },
    });
    new Gauge({
      name: 'stowage_hash_pool_utilization',
      help: 'Share of the hash workers\' capacity used since the pool started (0 to 1)',
      registers,
      collect() {
        this.set(pool.utilization);
      },
    });
    new Gauge({
      name: 'stowage_hash_pool_threads',
      help: 'Hash worker threads running',
      registers,
      collect() {
        this.set(pool.threadCount);
      },
    });
    // The pool keeps the running total; each scrape copies it into the counter.
    new Counter({
      name: 'stowage_hash_pool_tasks_completed_total',
      help: 'Hash tasks the workers have completed',
      registers,
      collect() {
        this.reset();
        this.inc(pool.completedTasks);
      },
    });
  }

  private registerIndex(index: IndexSource): void {
    const registers = [this.registry];
    // stats() is cheap (LMDB: its environment statistics, no scan), so each gauge asks afresh.
    new Gauge({
      name: 'stowage_index_size_bytes',
      help: 'Bytes used by the index\'s pages',
      registers,
      async collect() {
        this.set((await index.stats()).sizeBytes);
      },
    });
    new Gauge({
      name: 'stowage_index_entries',
      help: 'Entries in the index, by kind (repositories, manifests, tags, blobs, links, uploads)',
      labelNames: ['kind'],
      registers,
      async collect() {
        for (const [kind, count] of Object.entries((await index.stats()).entries)) this.set({ kind }, count);
      },
    });
  }

  private registerStorage(read: CapacitySource): void {
    const registers = [this.registry];
    new Gauge({
      name: 'stowage_storage_free_bytes',
      help: 'Bytes available to Stowage on the storage root\'s filesystem',
      registers,
      async collect() {
        const stats = await read();
        if (stats) this.set(stats.freeBytes);
      },
    });
    new Gauge({
      name: 'stowage_storage_size_bytes',
      help: 'Total size of the storage root\'s filesystem',
      registers,
      async collect() {
        const stats = await read();
        if (stats) this.set(stats.totalBytes);
      },
    });
  }
}
