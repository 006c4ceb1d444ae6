/**
 * Flags every cluster process shares: gRPC transport security (mTLS, or
 * plaintext only with --insecure), the cluster token, NATS credentials
 * from the environment (never argv), and the metrics endpoint.
 */
import { invalidArgument } from '../core/errors.ts';
import type { TransportSecurity } from '../protocol/tls.ts';
import type { FlagTable, FlagValues } from './args.ts';

export const tlsFlags: FlagTable = {
  'tls-ca': { type: 'string', arg: 'FILE', help: 'PEM CA the peer certificate must chain to (mTLS)' },
  'tls-cert': { type: 'string', arg: 'FILE', help: 'PEM certificate of this process (mTLS)' },
  'tls-key': { type: 'string', arg: 'FILE', help: 'PEM private key of this process (mTLS)' },
  insecure: { type: 'boolean', help: 'plaintext gRPC instead of mTLS (logs a warning)' },
  'cluster-token': { type: 'string', arg: 'TOKEN', help: 'shared secret of the cluster (env ADVCLIP_CLUSTER_TOKEN)' },
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

export const clusterTokenFrom = (flags: FlagValues): string | undefined =>
  (flags['cluster-token'] as string | undefined) ?? (process.env.ADVCLIP_CLUSTER_TOKEN || undefined);

export function natsCredentialsFromEnv(): { user?: string; password?: string } {
  const user = process.env.NATS_USER || undefined;
  const password = process.env.NATS_PASSWORD || undefined;
  return user !== undefined && password !== undefined ? { user, password } : {};
}
