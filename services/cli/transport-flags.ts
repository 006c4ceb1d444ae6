/**
 * Flags every cluster process shares: gRPC transport security (mTLS, or
 * plaintext only with --insecure), the cluster token, NATS credentials
 * from the environment (never argv), and the metrics endpoint.
 */
import { readFileSync } from 'node:fs';
import { invalidArgument } from '../core/errors.ts';
import type { NatsTls } from '../protocol/nats-connection.ts';
import type { TransportSecurity } from '../protocol/tls.ts';
import type { FlagTable, FlagValues } from './args.ts';

export const tlsFlags: FlagTable = {
  'tls-ca': { type: 'string', arg: 'FILE', help: 'PEM CA the peer certificate must chain to (mTLS)' },
  'tls-cert': { type: 'string', arg: 'FILE', help: 'PEM certificate of this process (mTLS)' },
  'tls-key': { type: 'string', arg: 'FILE', help: 'PEM private key of this process (mTLS)' },
  insecure: { type: 'boolean', help: 'plaintext gRPC instead of mTLS (logs a warning)' },
  'cluster-token': { type: 'string', arg: 'TOKEN', help: 'shared secret of the cluster (env ADVCLIP_CLUSTER_TOKEN)' },
  'cluster-token-file': { type: 'string', arg: 'FILE', help: 'file holding the shared secret of the cluster (env ADVCLIP_CLUSTER_TOKEN_FILE); keeps it out of argv and env' },
};

/** TLS to NATS (the server's CA, an optional client certificate); a tls:// URL alone verifies with the system CAs. */
export const natsTlsFlags: FlagTable = {
  'nats-ca': { type: 'string', arg: 'FILE', help: 'PEM CA the NATS server certificate must chain to; makes the NATS connection TLS (env ADVCLIP_NATS_CA)' },
  'nats-cert': { type: 'string', arg: 'FILE', help: 'PEM client certificate for NATS, with --nats-key (env ADVCLIP_NATS_CERT)' },
  'nats-key': { type: 'string', arg: 'FILE', help: 'PEM private key of --nats-cert (env ADVCLIP_NATS_KEY)' },
};

export const metricsFlags: FlagTable = {
  'metrics-port': { type: 'int', default: 9464, help: 'port of /metrics, /healthz, /readyz (0: any free port)' },
  'metrics-host': { type: 'string', default: '127.0.0.1', arg: 'HOST', help: 'interface of the metrics endpoint (0.0.0.0 in containers)' },
};

export function securityFrom(flags: FlagValues): TransportSecurity {
  const files = [flags['tls-ca'], flags['tls-cert'], flags['tls-key']];
  const given = files.filter((f) => typeof f === 'string').length;
  if (flags.insecure === true) {
    if (given > 0) throw invalidArgument('give --tls-ca/--tls-cert/--tls-key or --insecure, not both');
    return { mode: 'insecure' };
  }
  if (given !== 3) throw invalidArgument('gRPC needs mTLS: give --tls-ca, --tls-cert and --tls-key (or --insecure for plaintext)');
  return { mode: 'mtls', caPath: files[0] as string, certPath: files[1] as string, keyPath: files[2] as string };
}

/** A secret kept in a file (a mounted Docker or Kubernetes secret): its content without the final newline. */
function readSecretFile(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw invalidArgument(`${what} ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw invalidArgument(`${what} ${path}: the file is empty`);
  return secret;
}

export function clusterTokenFrom(flags: FlagValues): string | undefined {
  const file = (flags['cluster-token-file'] as string | undefined) ?? (process.env.ADVCLIP_CLUSTER_TOKEN_FILE || undefined);
  if (flags['cluster-token'] !== undefined && file !== undefined) throw invalidArgument('give --cluster-token or --cluster-token-file, not both');
  if (file !== undefined) return readSecretFile(file, '--cluster-token-file');
  return (flags['cluster-token'] as string | undefined) ?? (process.env.ADVCLIP_CLUSTER_TOKEN || undefined);
}

/** --nats-ca/--nats-cert/--nats-key (or ADVCLIP_NATS_CA/_CERT/_KEY); absent when none is given. */
export function natsTlsFrom(flags: FlagValues): NatsTls | undefined {
  const pick = (flag: string, env: string) => (flags[flag] as string | undefined) ?? (process.env[env] || undefined);
  const tls = { caFile: pick('nats-ca', 'ADVCLIP_NATS_CA'), certFile: pick('nats-cert', 'ADVCLIP_NATS_CERT'), keyFile: pick('nats-key', 'ADVCLIP_NATS_KEY') };
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) throw invalidArgument('give --nats-cert and --nats-key together (or neither)');
  return Object.values(tls).some((v) => v !== undefined) ? tls : undefined;
}

/** NATS_USER with NATS_PASSWORD, or with NATS_PASSWORD_FILE (a mounted secret, so `docker inspect` does not show it). */
export function natsCredentialsFromEnv(): { user?: string; password?: string } {
  const user = process.env.NATS_USER || undefined;
  const passwordFile = process.env.NATS_PASSWORD_FILE || undefined;
  const password = process.env.NATS_PASSWORD || (passwordFile !== undefined ? readSecretFile(passwordFile, 'NATS_PASSWORD_FILE') : undefined);
  return user !== undefined && password !== undefined ? { user, password } : {};
}
