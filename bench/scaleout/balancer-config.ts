// The HAProxy configuration for a balancer over scale-out nodes, from scripts/haproxy.cfg.in
// (which scripts/cluster.sh fills in too). Read from the project root, the working directory
// of every npm script.

import { readFile } from 'node:fs/promises';
import path from 'node:path';

export async function balancerConfig(bind: string, checkPath: string, ports: readonly number[]): Promise<string> {
  const template = await readFile(path.resolve('scripts', 'haproxy.cfg.in'), 'utf8');
  const servers = ports.map((port, i) => `  server node${i + 1} 127.0.0.1:${port}`).join('\n');
  return `${template.replaceAll('@BIND@', bind).replaceAll('@CHECK@', checkPath).replace(/^@SERVERS@$/m, servers)}\n`;
}
