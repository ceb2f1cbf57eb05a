// Human-readable log lines for a terminal: `12:34:56.789 INFO  message  key=value ...`.
// pino-pretty would do this too, but it brings a dozen packages and a worker-thread
// transport into production installs for what is a few lines of formatting; this stream
// sits where pino's destination goes and rewrites each JSON line as it is written.

const LEVELS: Record<number, [name: string, color: string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m'],
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** Fields every line has, shown in the prefix or not at all. */
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

export function prettyStream(target: { write(line: string): unknown }, color: boolean): { write(line: string): void } {
  return {
    write(line: string) {
      target.write(formatLine(line, color));
    },
  };
}

export function formatLine(line: string, color: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const [name, tint] = LEVELS[record.level as number] ?? [String(record.level), ''];
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 23) : '';
  const level = color ? `${tint}${name}${RESET}` : name;
  let out = `${time} ${level} ${String(record.msg ?? '')}`;
  let err: string | undefined;
  for (const [key, value] of Object.entries(record)) {
    if (HIDDEN.has(key)) continue;
    if (key === 'err' && value && typeof value === 'object' && 'stack' in value) {
      err = String((value as { stack: unknown }).stack);
      continue;
    }
    const text = typeof value === 'string' && !/[\s"=]/.test(value) ? value : JSON.stringify(value);
    out += color ? ` ${DIM}${key}=${RESET}${text}` : ` ${key}=${text}`;
  }
  if (err) out += `\n  ${err.replace(/\n/g, '\n  ')}`;
  return `${out}\n`;
}
