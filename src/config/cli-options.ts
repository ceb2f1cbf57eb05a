// The `serve` flags that set configuration keys. Each flag overrides its STOWAGE_* variable,
// which overrides stowage.yml; none has a default here, so an unset flag leaves the lower
// layers alone (the defaults live in config.ts).

import type { Command } from 'commander';
import type { StowageConfig } from './config.js';
import { loadConfig } from './load.js';

const FLAGS: { flag: string; property: string; key: string; help: string }[] = [
  { flag: '--listen <host:port>', property: 'listen', key: 'listen', help: 'address to listen on (default 127.0.0.1:5000)' },
  { flag: '--listen-plain <host:port>', property: 'listenPlain', key: 'listenPlain', help: 'extra plain-HTTP listener on a loopback address, beside TLS' },
  { flag: '--root <dir>', property: 'root', key: 'root', help: 'storage root (default ./data)' },
  { flag: '--log-level <level>', property: 'logLevel', key: 'log.level', help: 'fatal, error, warn, info, debug, trace or silent' },
  { flag: '--log-format <format>', property: 'logFormat', key: 'log.format', help: 'auto (pretty on a terminal, else JSON), json or pretty' },
  // Both forms, so that commander gives accessLog no default and the lower layers still apply.
  { flag: '--access-log', property: 'accessLog', key: 'log.accessLog', help: 'log one line per request (default)' },
  { flag: '--no-access-log', property: 'accessLog', key: 'log.accessLog', help: 'no per-request log lines' },
  { flag: '--tls-cert <file>', property: 'tlsCert', key: 'tls.cert', help: 'PEM certificate (chain) for TLS' },
  { flag: '--tls-key <file>', property: 'tlsKey', key: 'tls.key', help: 'PEM private key for TLS' },
  { flag: '--tls-client-ca <file>', property: 'tlsClientCa', key: 'tls.clientCa', help: 'PEM CA bundle: require client certificates it signed (mutual TLS)' },
  { flag: '--auth <mode>', property: 'auth', key: 'auth.mode', help: 'none, basic or token' },
  { flag: '--htpasswd <file>', property: 'htpasswd', key: 'auth.htpasswd', help: 'htpasswd file with bcrypt entries' },
  { flag: '--token-realm <url>', property: 'tokenRealm', key: 'auth.token.realm', help: 'Bearer realm URL to advertise (default this server\'s /auth/token)' },
  { flag: '--token-service <name>', property: 'tokenService', key: 'auth.token.service', help: 'token service / audience (default stowage)' },
  { flag: '--token-key <file>', property: 'tokenKey', key: 'auth.token.key', help: 'PEM private key that signs tokens' },
  { flag: '--adopt', property: 'adopt', key: 'adopt', help: 'adopt the root as a Distribution storage root first, unless already adopted (README, "Adopting a Distribution root")' },
  { flag: '--sparse-manifests', property: 'sparseManifests', key: 'manifests.sparse', help: 'accept manifests whose blobs or child manifests the repository lacks (README, "Sparse manifests")' },
  // Limits (README, "Configuration"); every one also has its STOWAGE_LIMITS_* variable.
  { flag: '--max-header-bytes <n>', property: 'maxHeaderBytes', key: 'limits.maxHeaderBytes', help: 'largest request head in bytes (default 16384)' },
  { flag: '--max-headers <n>', property: 'maxHeaders', key: 'limits.maxHeaders', help: 'most request headers (default 100)' },
  { flag: '--headers-timeout <s>', property: 'headersTimeout', key: 'limits.headersTimeout', help: 'seconds to send request headers (default 30)' },
  { flag: '--request-timeout <s>', property: 'requestTimeout', key: 'limits.requestTimeout', help: 'seconds to send a manifest body (default 300)' },
  { flag: '--idle-timeout <s>', property: 'idleTimeout', key: 'limits.idleTimeout', help: 'seconds a connection may stall mid-request (default 120)' },
  { flag: '--max-manifest-bytes <n>', property: 'maxManifestBytes', key: 'limits.maxManifestBytes', help: 'largest manifest in bytes, at least 4194304 (default)' },
  { flag: '--max-uploads <n>', property: 'maxUploads', key: 'limits.maxUploads', help: 'upload sessions in progress (default 1000)' },
  { flag: '--upload-lifetime <s>', property: 'uploadLifetime', key: 'limits.uploadLifetime', help: 'seconds an upload session may live (default 86400)' },
];

export function addConfigOptions(command: Command): Command {
  command.option('--config <file>', 'YAML configuration file (env STOWAGE_CONFIG; default ./stowage.yml if present)');
  for (const { flag, help } of FLAGS) command.option(flag, help);
  return command;
}

/** The configuration from flags, environment and file; throws ConfigError naming a bad key. */
export function configFromOptions(options: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): StowageConfig {
  const flags: Record<string, { value: unknown; flag: string }> = {};
  for (const { flag, property, key } of FLAGS) {
    if (options[property] !== undefined) flags[key] = { value: options[property], flag: flag.split(' ')[0] };
  }
  return loadConfig({ configFile: options.config as string | undefined, flags, env });
}
