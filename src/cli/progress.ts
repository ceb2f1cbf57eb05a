// Progress of a long transfer on stderr: a redrawn bar with bytes, rate and ETA on a
// terminal, a plain line every few seconds otherwise (logs, CI), and a last line at the end.

export interface ProgressOptions {
  /** Total bytes, when known (a file); undefined for a stream (stdin). */
  total?: number;
  label: string;
  stream?: NodeJS.WriteStream;
  /** Minimum time between plain lines when not on a terminal. */
  plainEveryMs?: number;
}

const BAR_WIDTH = 24;
const REDRAW_EVERY_MS = 100;

export class Progress {
  private done = 0;
  private readonly started = Date.now();
  /** A first line only after a while: a quick import shows just its last one. */
  private lastDraw = Date.now();
  private drawn = false;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
  }

  add(bytes: number): void {
    this.done += bytes;
    const now = Date.now();
    const every = this.tty ? REDRAW_EVERY_MS : (this.options.plainEveryMs ?? 5_000);
    if (now - this.lastDraw < every) return;
    this.lastDraw = now;
    this.drawn = true;
    this.draw(false);
  }

  finish(note: string): void {
    this.draw(true);
    this.stream.write(`${this.options.label}: ${note}\n`);
  }

  /** Ends a redrawn line so that what follows starts on its own. */
  abandon(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
  }

  private draw(final: boolean): void {
    const line = this.line();
    if (this.tty) this.stream.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
    else this.stream.write(`${line}\n`);
  }

  private line(): string {
    const { total, label } = this.options;
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    const rate = this.done / seconds;
    const parts = [label];
    if (total !== undefined && total > 0) {
      const fraction = Math.min(this.done / total, 1);
      const filled = Math.round(fraction * BAR_WIDTH);
      if (this.tty) parts.push(`[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`);
      parts.push(`${(fraction * 100).toFixed(0).padStart(3)}%`, `${formatBytes(this.done)} / ${formatBytes(total)}`);
    } else {
      parts.push(formatBytes(this.done));
    }
    parts.push(`${formatBytes(rate)}/s`);
    if (total !== undefined && rate > 0 && this.done < total) parts.push(`ETA ${formatDuration((total - this.done) / rate)}`);
    return parts.join('  ');
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
