/**
 * gRPC transport security: mutual TLS (the server requires a client
 * certificate signed by the cluster CA), or plaintext only when asked for
 * explicitly, with a warning. makeThrowawayCerts makes a loopback CA and
 * certificates with openssl so `advclip cluster` runs with mTLS too.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { AdvclipError, unreadableFile } from '../core/errors.ts';

export interface TlsFiles {
  /** PEM CA certificate the peer's certificate must chain to. */
  readonly caPath: string;
  /** PEM certificate and key of this end. */
  readonly certPath: string;
  readonly keyPath: string;
}

export type TransportSecurity = ({ readonly mode: 'mtls' } & TlsFiles) | { readonly mode: 'insecure' };

export type LogFn = (message: string) => void;

const INSECURE_WARNING = 'gRPC runs WITHOUT TLS (--insecure): any host that can reach the port can join or read tensors';

/** Server credentials; mTLS requires and verifies client certificates. */
export function serverCredentials(security: TransportSecurity, log: LogFn): ServerCredentials {
  if (security.mode === 'insecure') {
    log(INSECURE_WARNING);
    return ServerCredentials.createInsecure();
  }
  const [ca, cert, key] = readPems(security);
  return ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true);
}

/** Channel credentials; mTLS presents this end's certificate and verifies the server's. */
export function channelCredentials(security: TransportSecurity, log: LogFn): ChannelCredentials {
  if (security.mode === 'insecure') {
    log(INSECURE_WARNING);
    return credentials.createInsecure();
  }
  const [ca, cert, key] = readPems(security);
  return credentials.createSsl(ca, key, cert);
}

function readPems(files: TlsFiles): [Buffer, Buffer, Buffer] {
  return [files.caPath, files.certPath, files.keyPath].map((path) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw unreadableFile(`TLS file ${path} cannot be read`, err);
    }
  }) as [Buffer, Buffer, Buffer];
}

/** The SAN URI a worker certificate of makeThrowawayCerts carries: its identity. */
export const workerIdentityUri = (name: string): string => `urn:advclip:worker:${name}`;

/**
 * What a client certificate says its holder is: its first SAN URI (a
 * SPIFFE ID, a URN), else its subject CN; null without either. Quarantine
 * and the allow-list bind to it, so a worker keeps it across registrations.
 */
export function certificateIdentity(cert: { readonly subject?: { readonly CN?: string | string[] }; readonly subjectaltname?: string } | null | undefined): string | null {
  const uri = cert?.subjectaltname
    ?.split(',')
    .map((s) => s.trim())
    .find((s) => s.startsWith('URI:'));
  if (uri) return uri.slice('URI:'.length);
  const cn = cert?.subject?.CN;
  const first = Array.isArray(cn) ? cn[0] : cn;
  return first ? first : null;
}

export interface ThrowawayCerts {
  readonly caCertPath: string;
  /** For the coordinator: its certificate (SAN 127.0.0.1, ::1, localhost) and the CA. */
  readonly server: TlsFiles;
  /** For workers: one client certificate each (CN worker-i, SAN URI workerIdentityUri), and the CA. */
  readonly workers: readonly TlsFiles[];
  /** the first worker's */
  readonly client: TlsFiles;
}

const run = promisify(execFile);

/**
 * A fresh CA (valid `days`), a server certificate and one client
 * certificate per worker (`workers`, named worker-1…) in `dir`; keys are
 * P-256, mode 0600. The CA key stays in `dir`: delete the directory when
 * the cluster stops.
 */
export async function makeThrowawayCerts(dir: string, days = 7, workers = 1): Promise<ThrowawayCerts> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = (name: string) => join(dir, name);
  const openssl = async (...args: string[]) => {
    try {
      await run('openssl', args, { cwd: dir });
    } catch (err) {
      const detail = (err as { stderr?: string }).stderr ?? (err as Error).message;
      throw new AdvclipError('UNAVAILABLE', `openssl ${args[0]} failed (is openssl installed?): ${detail}`, { cause: err });
    }
  };
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  await openssl('req', '-x509', ...newKey, '-keyout', path('ca.key'), '-out', path('ca.crt'),
    '-days', String(days), '-subj', '/CN=advclip throwaway CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');

  const issue = async (name: string, commonName: string, extensions: string) => {
    await writeFile(path(`${name}.ext`), extensions);
    await openssl('req', ...newKey, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`), '-subj', `/CN=${commonName}`);
    await openssl('x509', '-req', '-in', path(`${name}.csr`), '-CA', path('ca.crt'), '-CAkey', path('ca.key'),
      '-set_serial', `0x${randomSerial()}`, '-days', String(days), '-out', path(`${name}.crt`), '-extfile', path(`${name}.ext`));
  };
  const leaf = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n';
  await issue('server', 'localhost', `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n`);
  const names = Array.from({ length: Math.max(1, workers) }, (_, i) => `worker-${i + 1}`);
  for (const name of names) await issue(name, name, `${leaf}extendedKeyUsage=clientAuth\nsubjectAltName=URI:${workerIdentityUri(name)}\n`);

  for (const key of ['ca.key', 'server.key', ...names.map((n) => `${n}.key`)]) await chmod(path(key), 0o600);
  const clients = names.map((n) => ({ caPath: path('ca.crt'), certPath: path(`${n}.crt`), keyPath: path(`${n}.key`) }));
  return { caCertPath: path('ca.crt'), server: { caPath: path('ca.crt'), certPath: path('server.crt'), keyPath: path('server.key') }, workers: clients, client: clients[0] };
}

const randomSerial = () => [...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, '0')).join('');
