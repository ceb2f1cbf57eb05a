// Reads an archive as it streams in: gzip or not (told by the magic bytes, not the name),
// then tar entries one at a time in archive order. Nothing is buffered beyond the stream's
// own high-water marks: each entry's body must be consumed (or is drained) before the
// next entry is read.

import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type Extract, type Header } from 'tar-stream';
import { ImportError } from './import-errors.js';

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface ArchiveEntry {
  /** Normalised: no leading "./" or "/", no "." or empty components; never contains "..". */
  path: string;
  type: EntryType;
  /** The link's target as written in the archive, for symlinks and hard links. */
  linkTarget?: string;
  size: number;
  body: AsyncIterable<Buffer>;
}

const GZIP_MAGIC = [0x1f, 0x8b];

type TarEntry = Extract extends AsyncIterable<infer E> ? E : never;

/** Yields the tar entries of `source`, refusing unsafe names and unreadable archives. */
export async function* readArchive(source: AsyncIterable<Uint8Array>): AsyncGenerator<ArchiveEntry> {
  const extract = tarExtract();
  void feed(decompressed(source), extract);
  const entries = extract[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<TarEntry>;
      try {
        next = await entries.next();
      } catch (error) {
        throw unreadable(error);
      }
      if (next.done) return;
      const entry = next.value;
      const { header } = entry;
      yield {
        path: normalizeEntryPath(header.name),
        type: entryType(header.type),
        linkTarget: header.linkname ?? undefined,
        size: header.size ?? 0,
        body: unreadableOnError(entry),
      };
      // Whatever the consumer left unread is skipped, so the next header can be reached.
      try {
        for await (const _ of entry) void _;
      } catch (error) {
        throw unreadable(error);
      }
    }
  } finally {
    await entries.return?.();
  }
}

/**
 * The path an entry names, made canonical. Absolute paths and ".." components are refused
 * outright, whatever the entry's type: an importer never writes by entry name, but an
 * archive that tries to escape its root is not one to trust with anything else.
 */
export function normalizeEntryPath(name: string): string {
  if (name.startsWith('/') || name.includes('\\') || name.includes('\0')) {
    throw new ImportError('archive', `archive entry ${JSON.stringify(name)} has an absolute or unsafe path`, { entry: name });
  }
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) {
    throw new ImportError('archive', `archive entry ${JSON.stringify(name)} escapes the archive root`, { entry: name });
  }
  return parts.join('/');
}

function entryType(type: Header['type'] | undefined): EntryType {
  switch (type) {
    case 'file':
    case 'contiguous-file':
    case undefined:
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'hardlink';
    default:
      return 'other';
  }
}

/** The bytes of `source`, gunzipped when they start with the gzip magic. */
async function* decompressed(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let headLength = 0;
  while (headLength < GZIP_MAGIC.length) {
    const next = await iterator.next();
    if (next.done) break;
    head.push(next.value);
    headLength += next.value.length;
  }
  const first = Buffer.concat(head);
  async function* replay(): AsyncGenerator<Uint8Array> {
    if (first.length > 0) yield first;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  if (first[0] !== GZIP_MAGIC[0] || first[1] !== GZIP_MAGIC[1]) {
    yield* replay();
    return;
  }
  const gunzip = createGunzip();
  pipeline(Readable.from(replay(), { objectMode: false }), gunzip, () => undefined);
  for await (const chunk of gunzip) yield chunk as Buffer;
}

/** Writes `source` into the tar parser with backpressure; any failure destroys the parser, which the reader sees. */
async function feed(source: AsyncIterable<Uint8Array>, extract: Extract): Promise<void> {
  try {
    for await (const chunk of source) {
      if (extract.destroyed) return;
      if (!extract.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            extract.off('drain', done);
            extract.off('close', done);
            resolve();
          };
          extract.on('drain', done);
          extract.on('close', done);
        });
      }
    }
    extract.end(undefined);
  } catch (error) {
    extract.destroy(error as Error);
  }
}

async function* unreadableOnError(entry: TarEntry): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of entry) yield chunk as Buffer;
  } catch (error) {
    throw unreadable(error);
  }
}

function unreadable(error: unknown): ImportError {
  if (error instanceof ImportError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new ImportError('archive', `the archive is not a complete, readable tar: ${reason}`, { reason });
}
