// HOST:PORT addresses, as `listen` and `listenPlain` take them.

import net from 'node:net';

export function parseHostPort(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new Error(`expected HOST:PORT, got ${JSON.stringify(value)}`);
  return { host: match[1] ?? match[2], port };
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}
