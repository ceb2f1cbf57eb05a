// A client that pushes a blob in chunks and, like docker and containerd, carries on after a
// failed request: it asks the registry where the upload stands (GET on the upload) and sends
// the rest from there. The fault tests push through the balancer with it while nodes or
// engines go down.

import { createHash } from 'node:crypto';
import { sleep } from './poll.js';

export const sha256 = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

export interface PushStats {
  /** Requests that failed (a 5xx, a connection cut) and were followed by a status query and a resume. */
  resumed: number;
  /** Bytes sent again because a chunk was cut off after the registry had made part of it durable, or none of it. */
  resent: number;
}

/** The offset a 202/204 upload response reports (Range: 0-<last>; an empty upload has none or 0-0). */
export function offsetOf(response: Response): number {
  const range = response.headers.get('range');
  const match = range ? /^0-(\d+)$/.exec(range) : null;
  if (!match) return 0;
  return Number(match[1]) + 1;
}

async function attempt(request: () => Promise<Response>): Promise<Response | Error> {
  try {
    return await request();
  } catch (error) {
    return error as Error;
  }
}

/**
 * Pushes `bytes` to `repo` through `url` in chunks of `chunk` bytes, resuming after any failed
 * request; gives up after `deadlineMs`. Returns what it had to do.
 */
export async function pushResuming(url: string, repo: string, bytes: Buffer, chunk: number, deadlineMs = 60_000): Promise<PushStats> {
  const stats: PushStats = { resumed: 0, resent: 0 };
  const until = Date.now() + deadlineMs;
  const retry = async (what: string, failure: Response | Error): Promise<void> => {
    if (Date.now() > until) throw new Error(`${what}: still failing at the deadline: ${failure instanceof Error ? failure.message : failure.status}`);
    stats.resumed++;
    await sleep(200);
  };
  let location: string | undefined;
  while (location === undefined) {
    const started = await attempt(() => fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } }));
    if (!(started instanceof Error) && started.status === 202) location = new URL(started.headers.get('location')!, url).toString();
    else await retry('POST', started);
  }
  let offset = 0;
  while (offset < bytes.length) {
    const end = Math.min(offset + chunk, bytes.length);
    const sent = await attempt(() =>
      fetch(location!, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end - 1}`, 'content-length': String(end - offset) },
        body: bytes.subarray(offset, end),
      }),
    );
    if (!(sent instanceof Error) && sent.status === 202) {
      offset = offsetOf(sent);
      continue;
    }
    await retry('PATCH', sent);
    // Where does the upload stand? Whatever the registry made durable of the cut chunk counts.
    for (;;) {
      const status = await attempt(() => fetch(location!));
      if (!(status instanceof Error) && status.status === 204) {
        const now = offsetOf(status);
        stats.resent += end - now;
        offset = now;
        break;
      }
      await retry('GET upload', status);
    }
  }
  for (;;) {
    const done = await attempt(() => fetch(`${location}${location!.includes('?') ? '&' : '?'}digest=${sha256(bytes)}`, { method: 'PUT', headers: { 'content-length': '0' } }));
    if (!(done instanceof Error) && done.status === 201) return stats;
    // A commit whose answer was lost (the node died after committing): the session is gone and the blob is there.
    if (!(done instanceof Error) && done.status === 404 && (await fetch(`${url}/v2/${repo}/blobs/${sha256(bytes)}`, { method: 'HEAD' })).status === 200) return stats;
    if (!(done instanceof Error) && done.status < 500) throw new Error(`PUT: ${done.status} ${await done.text()}`);
    await retry('PUT', done);
  }
}
