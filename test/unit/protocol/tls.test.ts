import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Server, type ChannelCredentials } from '@grpc/grpc-js';
import { AdvclipError } from '../../../services/core/errors.ts';
import { fromGrpcError } from '../../../services/protocol/grpc-status.ts';
import { grpcChannelOptions, grpcServerOptions } from '../../../services/protocol/grpc-options.ts';
import { coordinatorClient, coordinatorService } from '../../../services/protocol/proto-loader.ts';
import type { CoordinatorHandlers } from '../../../services/protocol/generated/advclip/v1/Coordinator.ts';
import type { AdapterBlob__Output } from '../../../services/protocol/generated/advclip/v1/AdapterBlob.ts';
import {
  certificateIdentity,
  channelCredentials,
  makeThrowawayCerts,
  workerIdentityUri,
  serverCredentials,
  type ThrowawayCerts,
} from '../../../services/protocol/tls.ts';

let dir: string;
let certs: ThrowawayCerts;
let otherCerts: ThrowawayCerts;
let server: Server;
let address: string;
const noLog = () => undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'advclip-tls-'));
  [certs, otherCerts] = await Promise.all([makeThrowawayCerts(join(dir, 'a')), makeThrowawayCerts(join(dir, 'b'))]);
  server = new Server(grpcServerOptions());
  const handlers: Partial<CoordinatorHandlers> = {
    GetAdapter: (call, callback) => callback(null, { version: call.request.version, sha256: 'ok', safetensors: Buffer.from([1, 2, 3]) }),
  };
  server.addService(coordinatorService(), handlers as CoordinatorHandlers); // the others answer UNIMPLEMENTED
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', serverCredentials({ mode: 'mtls', ...certs.server }, noLog), (err, p) => (err ? reject(err) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
});

after(() => {
  server?.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

function getAdapter(creds: ChannelCredentials): Promise<AdapterBlob__Output> {
  const client = coordinatorClient(address, creds, grpcChannelOptions());
  return new Promise<AdapterBlob__Output>((resolve, reject) =>
    client.GetAdapter({ version: 5 }, { deadline: Date.now() + 5_000 }, (err, reply) =>
      err ? reject(fromGrpcError(err, 'GetAdapter')) : resolve(reply!),
    ),
  ).finally(() => client.close());
}

test('throwaway certificates: CA, server SAN 127.0.0.1/localhost, client for clientAuth, keys 0600', () => {
  const text = (path: string) => execFileSync('openssl', ['x509', '-in', path, '-noout', '-text'], { encoding: 'utf8' });
  assert.match(text(certs.caCertPath), /CA:TRUE/);
  const serverText = text(certs.server.certPath);
  assert.match(serverText, /IP Address:127\.0\.0\.1/);
  assert.match(serverText, /DNS:localhost/);
  assert.match(serverText, /TLS Web Server Authentication/);
  assert.match(text(certs.client.certPath), /TLS Web Client Authentication/);
  execFileSync('openssl', ['verify', '-CAfile', certs.caCertPath, certs.server.certPath, certs.client.certPath]);
  for (const key of [certs.server.keyPath, certs.client.keyPath]) assert.equal(statSync(key).mode & 0o777, 0o600);
});

test('mTLS: a client with a certificate from the cluster CA gets an answer', async () => {
  const reply = await getAdapter(channelCredentials({ mode: 'mtls', ...certs.client }, noLog));
  assert.equal(reply.version, 5);
  assert.deepEqual([...reply.safetensors], [1, 2, 3]);
});

test('mTLS: a client without a certificate is refused', async () => {
  const noClientCert = credentials.createSsl(readFileSync(certs.caCertPath));
  await assert.rejects(getAdapter(noClientCert), (e: unknown) => e instanceof AdvclipError && e.code === 'UNAVAILABLE');
});

test('mTLS: a client certificate from another CA is refused', async () => {
  const foreign = channelCredentials({ mode: 'mtls', caPath: certs.caCertPath, certPath: otherCerts.client.certPath, keyPath: otherCerts.client.keyPath }, noLog);
  await assert.rejects(getAdapter(foreign), (e: unknown) => e instanceof AdvclipError && e.code === 'UNAVAILABLE');
});

test('mTLS: a server the client CA did not sign is refused by the client', async () => {
  const trustsOtherCa = channelCredentials({ mode: 'mtls', ...otherCerts.client }, noLog);
  await assert.rejects(getAdapter(trustsOtherCa), (e: unknown) => e instanceof AdvclipError && e.code === 'UNAVAILABLE');
});

test('insecure credentials are only made with a logged warning', () => {
  const lines: string[] = [];
  serverCredentials({ mode: 'insecure' }, (l) => lines.push(l));
  channelCredentials({ mode: 'insecure' }, (l) => lines.push(l));
  assert.equal(lines.length, 2);
  for (const line of lines) assert.match(line, /WITHOUT TLS/);
});

test('missing certificate files are NOT_FOUND naming the path', () => {
  assert.throws(
    () => channelCredentials({ mode: 'mtls', caPath: '/nonexistent/ca.crt', certPath: 'x', keyPath: 'y' }, noLog),
    (e: unknown) => e instanceof AdvclipError && e.code === 'NOT_FOUND' && e.message.includes('/nonexistent/ca.crt'),
  );
});

test('throwaway certificates: one per worker, each naming its own identity (SAN URI), which certificateIdentity reads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advclip-tls-ids-'));
  try {
    const certs = await makeThrowawayCerts(dir, 1, 3);
    assert.equal(certs.workers.length, 3);
    assert.deepEqual(certs.client, certs.workers[0]);
    const ids = certs.workers.map((w) => {
      const x = new X509Certificate(readFileSync(w.certPath));
      assert.ok(x.verify(new X509Certificate(readFileSync(certs.caCertPath)).publicKey), 'signed by the CA');
      return certificateIdentity({ subject: { CN: /CN=([^\n]+)/.exec(x.subject)![1] }, subjectaltname: x.subjectAltName });
    });
    assert.deepEqual(ids, [1, 2, 3].map((i) => workerIdentityUri(`worker-${i}`)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('certificateIdentity: the first SAN URI, else the subject CN, else none', () => {
  assert.equal(certificateIdentity({ subject: { CN: 'gpu-7' }, subjectaltname: 'DNS:gpu-7.local, URI:spiffe://lab/worker/7, URI:urn:x' }), 'spiffe://lab/worker/7');
  assert.equal(certificateIdentity({ subject: { CN: 'gpu-7' }, subjectaltname: 'DNS:gpu-7.local' }), 'gpu-7');
  assert.equal(certificateIdentity({ subject: { CN: ['a', 'b'] } }), 'a');
  assert.equal(certificateIdentity({ subject: {} }), null);
  assert.equal(certificateIdentity(undefined), null);
});
