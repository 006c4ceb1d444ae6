/**
 * deploy/certs/signer.mjs and request-cert.mjs, the per-worker certificates
 * of the compose project, run here on loopback: the signer names a
 * certificate after what DNS says the caller's address is (Docker's DNS in
 * compose; the system resolver here), never after the CSR; it wants the
 * cluster token and a valid CSR; the certificate is a client certificate of
 * the deployment's CA whose SAN URI the coordinator admits by.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { reverse } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { repoRoot, skipUnless } from './tools.ts';
import { certificateIdentity, makeThrowawayCerts } from '../../../services/protocol/tls.ts';

const TOKEN = 'test-cluster-token';
/** What the signer will call a caller on 127.0.0.1: the first label of its PTR name (none: it refuses). */
const expectedName = (await reverse('127.0.0.1').catch(() => [] as string[]))[0]?.split('.')[0];

describe('deploy/certs/signer.mjs: one certificate per worker', { skip: skipUnless('openssl', 'Debian package openssl') }, () => {
  let dir: string;
  let signer: ChildProcess;
  let url: string;

  /** A P-256 key and a CSR asking for names of its own choosing (which the signer must ignore). */
  const csr = (name: string) => {
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`),
      '-subj', '/CN=someone-else', '-addext', 'subjectAltName=URI:spiffe://advclip/worker/someone-else'], { stdio: 'ignore' });
    return join(dir, `${name}.csr`);
  };
  const request = (csrFile: string, tokenFile: string, out: string) =>
    spawnSync(process.execPath, [join(repoRoot, 'deploy/certs/request-cert.mjs'), url, join(dir, 'state/ca.crt'), tokenFile, csrFile, out], { encoding: 'utf8', timeout: 60_000 });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'advclip-signer-'));
    const certs = await makeThrowawayCerts(join(dir, 'state'));
    copyFileSync(certs.server.certPath, join(dir, 'state/signer.crt'));
    copyFileSync(certs.server.keyPath, join(dir, 'state/signer.key'));
    writeFileSync(join(dir, 'state/cluster-token'), `${TOKEN}\n`);
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    writeFileSync(join(dir, 'wrong-token'), 'not-the-token\n');
    signer = spawn(process.execPath, [join(repoRoot, 'deploy/certs/signer.mjs'), join(dir, 'state'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    for await (const line of createInterface({ input: signer.stdout! })) {
      const port = /on :(\d+)$/.exec(line)?.[1];
      if (port) {
        url = `https://127.0.0.1:${port}`;
        break;
      }
    }
    assert.ok(url, 'the signer started');
    signer.stdout!.resume();
  });

  after(async () => {
    if (signer && signer.exitCode === null) {
      const exited = new Promise((resolve) => signer.once('exit', resolve));
      signer.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a wrong cluster token', () => {
    const r = request(csr('w1'), join(dir, 'wrong-token'), join(dir, 'w1.crt'));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /refused the certificate \(401\): wrong or missing cluster token/);
  });

  it('refuses what is not a CSR', () => {
    writeFileSync(join(dir, 'junk.csr'), '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n');
    const r = request(join(dir, 'junk.csr'), join(dir, 'token'), join(dir, 'junk.crt'));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /\((400|403)\)/);
  });

  it("names the certificate after the caller's DNS name, not the CSR's: a client certificate of the CA with SAN URI spiffe://advclip/worker/<name>", () => {
    const out = join(dir, 'w2.crt');
    const r = request(csr('w2'), join(dir, 'token'), out);
    if (expectedName === undefined) {
      assert.match(r.stderr, /\(403\): no DNS name/);
      return;
    }
    assert.equal(r.status, 0, r.stderr);
    const cert = new X509Certificate(readFileSync(out));
    assert.ok(cert.verify(new X509Certificate(readFileSync(join(dir, 'state/ca.crt'))).publicKey), 'signed by the CA');
    assert.equal(cert.subjectAltName, `URI:spiffe://advclip/worker/${expectedName}`, 'the CSR asked for someone-else');
    assert.equal(certificateIdentity({ subjectaltname: cert.subjectAltName, subject: { CN: expectedName } }), `spiffe://advclip/worker/${expectedName}`);
    assert.equal(cert.subject, `CN=${expectedName}`);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'client authentication only');
    assert.equal(cert.ca, false);
    const key = execFileSync('openssl', ['pkey', '-in', join(dir, 'w2.key'), '-pubout'], { encoding: 'utf8' });
    assert.equal(cert.publicKey.export({ type: 'spki', format: 'pem' }), key, 'the key the worker made, which never left it');
  });
});
