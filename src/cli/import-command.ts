// `stowage import`: sends an archive to a running registry's import endpoint as a streamed
// multipart upload (the file is never read whole), or, with --root and no --url, imports it
// straight into a registry root on this machine through the same pipeline the server uses.

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { Readable } from 'node:stream';
import { importArchive, type ImportResult } from '../pipeline/import/import-archive.js';
import { ImportError } from '../pipeline/import/import-errors.js';
import { parseTarget } from '../pipeline/import/references.js';
import { HashPool } from '../hashing/hash-pool.js';
import { UploadService } from '../pipeline/upload-service.js';
import { DEFAULT_STORAGE } from '../config/config.js';
import { openStorage } from '../store/open-storage.js';
import { CommandFailed, ExitStatus } from './exit.js';
import { Progress } from './progress.js';

export const DEFAULT_IMPORT_URL = 'http://127.0.0.1:5000';
const IMPORT_PATH = '/api/v1/import';

export interface ImportCommandOptions {
  repository?: string;
  url?: string;
  root?: string;
  /** `user:password` for a registry with basic auth. */
  user?: string;
  /** A bearer token (with push on the target repositories) for a registry with token auth. */
  token?: string;
}

/** Exit status 1: the archive or the registry said no (exit.ts). */
export class ImportFailed extends CommandFailed {
  constructor(message: string) {
    super(message, ExitStatus.findings);
  }
}

/** Imports `file` ('-' for stdin); resolves with what was imported, rejects with ImportFailed. */
export async function runImport(file: string, options: ImportCommandOptions): Promise<ImportResult> {
  const size = file === '-' ? undefined : (await stat(file)).size;
  const progress = new Progress({ total: size, label: `import ${file === '-' ? 'stdin' : path.basename(file)}` });
  const source = counted(file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 1024 * 1024 }), progress);
  try {
    const result =
      options.root !== undefined && options.url === undefined
        ? await importIntoRoot(options.root, source, options.repository)
        : await importOverHttp(options.url ?? DEFAULT_IMPORT_URL, source, size, options, path.basename(file));
    progress.finish(`${result.images.length} image(s) into ${result.repositories.join(', ')}`);
    return result;
  } catch (error) {
    progress.abandon();
    throw error;
  }
}

/** Counts bytes as the consumer pulls them, so the bar shows what was actually sent. */
async function* counted(input: Readable, progress: Progress): AsyncGenerator<Buffer> {
  for await (const chunk of input) {
    progress.add((chunk as Buffer).length);
    yield chunk as Buffer;
  }
}

async function importOverHttp(
  url: string,
  source: AsyncIterable<Buffer>,
  size: number | undefined,
  options: ImportCommandOptions,
  filename: string,
): Promise<ImportResult> {
  const target = new URL(IMPORT_PATH, url.endsWith('/') ? url : `${url}/`);
  if (options.repository !== undefined) target.searchParams.set('repository', options.repository);
  const boundary = `stowage-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename.replace(/["\r\n]/g, '_')}"\r\n` +
      `Content-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const headers: Record<string, string | number> = { 'content-type': `multipart/form-data; boundary=${boundary}` };
  if (size !== undefined) headers['content-length'] = head.length + size + tail.length;
  if (options.user !== undefined) headers.authorization = `Basic ${Buffer.from(options.user).toString('base64')}`;
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;

  const request = (target.protocol === 'https:' ? https : http).request(target, { method: 'POST', headers });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
  });
  async function* body(): AsyncGenerator<Buffer> {
    yield head;
    yield* source;
    yield tail;
  }
  // The registry may answer (and refuse) before the whole archive is sent; the answer decides.
  Readable.from(body()).on('error', (error) => request.destroy(error)).pipe(request);
  let res: IncomingMessage;
  try {
    res = await response;
  } catch (error) {
    throw new ImportFailed(`cannot reach ${target.origin}: ${(error as Error).message}`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  request.destroy();
  const text = Buffer.concat(chunks).toString('utf8');
  if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) return JSON.parse(text) as ImportResult;
  throw new ImportFailed(`the registry refused the archive (${res.statusCode}): ${describeError(text)}`);
}

function describeError(text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: { code: string; message: string; detail?: unknown }[] };
    const first = body.errors?.[0];
    if (first) return `${first.code}: ${first.message}${first.detail === undefined ? '' : ` ${JSON.stringify(first.detail)}`}`;
  } catch {
    // not the API's error body
  }
  return text.slice(0, 500);
}

/**
 * Imports into a registry root directly, for a registry that is not running (say, before
 * its first start on an air-gapped host). Same pipeline, same checks, same single commit.
 */
async function importIntoRoot(root: string, source: AsyncIterable<Buffer>, repository: string | undefined): Promise<ImportResult> {
  // The storage's index re-checks content inside each commit, so a GC of a server running
  // over the same root cannot remove what this commits.
  const storage = await openStorage({ root, storage: DEFAULT_STORAGE });
  const { index, blobs } = storage;
  const pool = await HashPool.open({ threads: 2 });
  try {
    const target = repository === undefined ? undefined : parseTarget(repository, 'repository', false);
    return await importArchive({ index, blobs, uploads: new UploadService(index, blobs, pool) }, source, { target });
  } catch (error) {
    if (error instanceof ImportError) throw new ImportFailed(`the archive was refused (${error.kind}): ${error.message}`);
    throw error;
  } finally {
    await pool.close();
    await storage.close();
  }
}
