#!/usr/bin/env node
/**
 * The `signer` service of docker-compose.yml: issues one client certificate
 * per worker container, so each worker has its own identity while all
 * replicas of `--scale worker=N` share one service definition.
 *
 * A worker makes its key in its own tmpfs (deploy/certs/worker-entrypoint.sh)
 * and POSTs a CSR here over TLS (this server's certificate is from the
 * deployment's CA), with the cluster token as a bearer token. The signer,
 * not the worker, picks the name: the container name Docker's DNS gives the
 * caller's address (reverse lookup), e.g. advclip-worker-3 →
 *   SAN URI spiffe://advclip/worker/advclip-worker-3
 * so a token holder cannot mint another worker's identity, and a restarted
 * container keeps its identity (quarantine and the coordinator's
 * --allow-identities/--deny-identities bind to it). Names in the CSR are
 * ignored. The CA key stays in the init volume, which this service mounts
 * read-only; it is never sent anywhere.
 *
 *   node signer.mjs STATE_DIR [PORT]
 *   STATE_DIR: ca.crt ca.key signer.crt signer.key cluster-token (compose-init.sh)
 *   POST /v1/worker-certificate  (Authorization: Bearer TOKEN, body: PEM CSR) → PEM certificate
 *   GET  /healthz
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { reverse } from 'node:dns/promises';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const [state = '/state', port = '8443'] = process.argv.slice(2);
const IDENTITY_PREFIX = 'spiffe://advclip/worker/';
const DAYS = Number(process.env.ADVCLIP_WORKER_CERT_DAYS || 30);
const MAX_CSR_BYTES = 16 * 1024;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

const file = (name) => readFileSync(join(state, name));
const tokenDigest = createHash('sha256').update(file('cluster-token').toString('utf8').replace(/\r?\n$/, '')).digest();
const log = (message) => process.stdout.write(`signer: ${message}\n`);

class Refusal extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function authorize(header) {
  const given = /^Bearer (.+)$/.exec(header ?? '')?.[1];
  if (!given || !timingSafeEqual(createHash('sha256').update(given).digest(), tokenDigest)) throw new Refusal(401, 'wrong or missing cluster token');
}

/** The caller's container name, from Docker's DNS: the first label of its address's PTR record. */
async function callerName(address) {
  const ip = address.replace(/^::ffff:/, '');
  const names = await reverse(ip).catch((err) => {
    throw new Refusal(403, `no DNS name for ${ip} (${err.code ?? err.message}): certificates are only issued to containers on the compose network`);
  });
  const name = names[0]?.split('.')[0];
  if (!name || !NAME.test(name)) throw new Refusal(403, `${ip} resolves to ${JSON.stringify(names)}, not a container name`);
  return name;
}

async function sign(csrPem, name) {
  const dir = await mkdtemp(join(tmpdir(), 'signer-'));
  try {
    const csr = join(dir, 'worker.csr');
    await writeFile(csr, csrPem);
    await run('openssl', ['req', '-verify', '-noout', '-in', csr]).catch((err) => {
      throw new Refusal(400, `not a valid, self-signed CSR: ${(err.stderr ?? err.message).trim().split('\n')[0]}`);
    });
    // -subj and -extfile replace whatever the CSR asked for: the name is ours to give.
    await writeFile(
      join(dir, 'ext'),
      ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth', `subjectAltName=URI:${IDENTITY_PREFIX}${name}`, ''].join('\n'),
    );
    await run('openssl', [
      'x509', '-req', '-in', csr, '-CA', join(state, 'ca.crt'), '-CAkey', join(state, 'ca.key'),
      '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', String(DAYS), '-sha256',
      '-subj', `/CN=${name}`, '-extfile', join(dir, 'ext'), '-out', join(dir, 'worker.crt'),
    ]);
    return await readFile(join(dir, 'worker.crt'), 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_CSR_BYTES) throw new Refusal(413, `a CSR is at most ${MAX_CSR_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const server = createServer({ cert: file('signer.crt'), key: file('signer.key') }, async (req, res) => {
  const reply = (status, text) => res.writeHead(status, { 'content-type': 'text/plain' }).end(text);
  if (req.method === 'GET' && req.url === '/healthz') return reply(200, 'ok\n');
  if (req.method !== 'POST' || req.url !== '/v1/worker-certificate') return reply(404, 'POST /v1/worker-certificate\n');
  const from = req.socket.remoteAddress ?? '?';
  try {
    authorize(req.headers.authorization);
    const name = await callerName(from);
    const cert = await sign(await readBody(req), name);
    log(`issued ${IDENTITY_PREFIX}${name} to ${from} (${DAYS} days)`);
    reply(200, cert);
  } catch (err) {
    const status = err instanceof Refusal ? err.status : 500;
    log(`refused ${from}: ${err.message}`);
    reply(status, `${err.message}\n`);
  }
});
server.listen(Number(port), '0.0.0.0', () => log(`issuing worker certificates (${IDENTITY_PREFIX}<container name>) on :${server.address().port}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => server.close(() => process.exit(0)));
