// `stowage gc`: asks a running registry to collect garbage now (POST /api/v1/gc), or, with
// --root and no --url, collects in a storage root directly. The second is safe beside a
// server over the same root (every decision is re-checked in an index transaction), but
// then leaves upload sessions to that server, which knows which ones are in use.

import http from 'node:http';
import https from 'node:https';
import { collectGarbage, type GcReport, type UploadExpirer } from '../gc/collector.js';
import { gcSchedule } from '../gc/scheduler.js';
import { loadConfig } from '../config/load.js';
import { openStorage } from '../store/open-storage.js';
import { CommandFailed } from './exit.js';
import { formatBytes } from './progress.js';

export const DEFAULT_GC_URL = 'http://127.0.0.1:5000';
const GC_PATH = '/api/v1/gc';

export interface GcCommandOptions {
  dryRun?: boolean;
  url?: string;
  root?: string;
  /** With --root: stowage.yml to read gc settings from (else STOWAGE_CONFIG or ./stowage.yml). */
  config?: string;
  /** With --root: the grace period in seconds, over the configuration's. */
  grace?: string;
  /** `user:password` for a registry with basic auth. */
  user?: string;
  /** A bearer token (with registry:catalog:*) for a registry with token auth. */
  token?: string;
}

export class GcFailed extends CommandFailed {}

export async function runGc(options: GcCommandOptions): Promise<GcReport> {
  if (options.root !== undefined && options.url === undefined) return gcInRoot(options.root, options);
  return gcOverHttp(options.url ?? DEFAULT_GC_URL, options);
}

async function gcOverHttp(url: string, options: GcCommandOptions): Promise<GcReport> {
  const target = new URL(GC_PATH, url.endsWith('/') ? url : `${url}/`);
  if (options.dryRun) target.searchParams.set('dryRun', 'true');
  const headers: Record<string, string> = {};
  if (options.user !== undefined) headers.authorization = `Basic ${Buffer.from(options.user).toString('base64')}`;
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const request = (target.protocol === 'https:' ? https : http).request(target, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    request.on('error', (error) => reject(new GcFailed(`cannot reach ${target.origin}: ${error.message}`)));
    request.end();
  });
  if (status === 200) return JSON.parse(text) as GcReport;
  throw new GcFailed(`the registry refused (${status}): ${describeError(text)}`);
}

async function gcInRoot(root: string, options: GcCommandOptions): Promise<GcReport> {
  const config = loadConfig({ configFile: options.config });
  const grace = options.grace === undefined ? undefined : Number(options.grace);
  if (grace !== undefined && (!Number.isSafeInteger(grace) || grace < 0)) throw new GcFailed(`--grace: expected seconds, got ${JSON.stringify(options.grace)}`);
  const storage = await openStorage({ root, storage: config.storage }, { mustExist: true });
  const { index, blobs } = storage;
  const server = await storage.liveServer();
  const uploads: UploadExpirer = {
    async expireIdle(repo, id) {
      if (server !== undefined) return false;
      await index.deleteUpload(id);
      await blobs.removeUpload(repo, id);
      return true;
    },
  };
  try {
    const schedule = gcSchedule(config.gc, grace === undefined ? {} : { graceMs: grace * 1000 });
    return await collectGarbage({ index, blobs, uploads }, schedule, { dryRun: options.dryRun });
  } finally {
    await storage.close();
  }
}

function describeError(text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: { code: string; message: string }[] };
    const first = body.errors?.[0];
    if (first) return `${first.code}: ${first.message}`;
  } catch {
    // not the API's error body
  }
  return text.slice(0, 500);
}

export function formatGcReport(report: GcReport): string {
  const verb = report.dryRun ? 'would remove' : 'removed';
  return [
    `${report.dryRun ? 'dry run: ' : ''}${verb} ${report.blobsRemoved} blob(s) and ${report.orphanFilesRemoved} orphan file(s), ${formatBytes(report.bytesReclaimed)}`,
    `${verb} ${report.linksDropped} unused repository link(s), ${report.manifestsRemoved} untagged manifest(s)`,
    `${verb} ${report.uploadsPurged} stale upload(s) and ${report.uploadDirsRemoved} leftover upload directory(ies)`,
    `took ${report.durationMs} ms`,
    '',
  ].join('\n');
}
