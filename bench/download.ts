// Downloads for the pull workloads and the send ceiling. A Node client parsing the response
// tops out near the rate a server can send, so pulls go through curl (discarding to
// /dev/null) when it is installed, and through node:http otherwise.

import { execFile, spawnSync } from 'node:child_process';
import { expectStatus, request } from './http.js';

const hasCurl = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;

export const downloadClient = hasCurl ? 'curl' : 'node:http';

/** GETs `url` (bytes [start, end) of it with a range) and returns the body bytes received. */
export async function download(url: string, range?: { start: number; end: number }): Promise<number> {
  const expected = range ? 206 : 200;
  if (!hasCurl) {
    const res = await request({ method: 'GET', url, headers: range ? { range: `bytes=${range.start}-${range.end - 1}` } : {} });
    return expectStatus(res, [expected], `GET ${url}`).bytes;
  }
  const args = ['-sS', '-o', '/dev/null', '--max-time', '180', '-w', '%{http_code} %{size_download}'];
  if (range) args.push('-r', `${range.start}-${range.end - 1}`);
  const out = await new Promise<string>((resolve, reject) =>
    execFile('curl', [...args, url], (error, stdout) => (error ? reject(error) : resolve(stdout))),
  );
  const [status, bytes] = out.trim().split(' ').map(Number);
  if (status !== expected) throw new Error(`GET ${url}: HTTP ${status}`);
  return bytes;
}

/**
 * GETs every range of `url` with at most `parallel` in flight and returns the bytes received.
 * One curl process for all of them (--parallel), so process start-up is not what is measured.
 */
export async function downloadRanges(url: string, ranges: { start: number; end: number }[], parallel: number): Promise<number> {
  if (!hasCurl) {
    let total = 0;
    const queue = [...ranges];
    const lane = async () => {
      for (let range = queue.shift(); range; range = queue.shift()) total += await download(url, range);
    };
    await Promise.all(Array.from({ length: parallel }, lane));
    return total;
  }
  const args = ['-sS', '--no-progress-meter', '--parallel', '--parallel-max', String(parallel)];
  ranges.forEach((range, i) => {
    if (i > 0) args.push('-:');
    args.push('-r', `${range.start}-${range.end - 1}`, '-o', '/dev/null', '--max-time', '180', '-w', '%{http_code} %{size_download}\\n', url);
  });
  const out = await new Promise<string>((resolve, reject) =>
    execFile('curl', args, { maxBuffer: 1 << 20 }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
  );
  const lines = out.trim().split('\n');
  if (lines.length !== ranges.length) throw new Error(`curl reported ${lines.length} transfers, expected ${ranges.length}`);
  let total = 0;
  for (const line of lines) {
    const [status, bytes] = line.split(' ').map(Number);
    if (status !== 206) throw new Error(`GET ${url} with a range: HTTP ${status}`);
    total += bytes;
  }
  return total;
}
