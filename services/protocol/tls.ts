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
import { AdvclipError } from '../core/errors.ts';

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
      throw new AdvclipError('NOT_FOUND', `TLS file ${path} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  }) as [Buffer, Buffer, Buffer];
}

export interface ThrowawayCerts {
  readonly caCertPath: string;
  /** For the coordinator: its certificate (SAN 127.0.0.1, ::1, localhost) and the CA. */
  readonly server: TlsFiles;
  /** For workers: a client certificate and the CA. */
  readonly client: TlsFiles;
}

const run = promisify(execFile);

/**
 * A fresh CA (valid `days`), a server and a client certificate in `dir`;
 * keys are P-256, mode 0600. The CA key stays in `dir`: delete the directory
 * when the cluster stops.
 */
export async function makeThrowawayCerts(dir: string, days = 7): Promise<ThrowawayCerts> {
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
  await issue('client', 'advclip-worker', `${leaf}extendedKeyUsage=clientAuth\n`);

  for (const key of ['ca.key', 'server.key', 'client.key']) await chmod(path(key), 0o600);
  return {
    caCertPath: path('ca.crt'),
    server: { caPath: path('ca.crt'), certPath: path('server.crt'), keyPath: path('server.key') },
    client: { caPath: path('ca.crt'), certPath: path('client.crt'), keyPath: path('client.key') },
  };
}

const randomSerial = () => [...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, '0')).join('');
