#!/usr/bin/env node
/**
 * A worker's side of deploy/certs/signer.mjs: POSTs CSR_FILE to the signer
 * over TLS (verified against CA_FILE) with the cluster token, and writes the
 * certificate it gets to OUT_FILE. Retries while the signer is not up yet
 * (up to 2 minutes); a refusal (wrong token, bad CSR, unknown caller) fails at once.
 *
 *   node request-cert.mjs SIGNER_URL CA_FILE TOKEN_FILE CSR_FILE OUT_FILE
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';

const [url, caFile, tokenFile, csrFile, outFile] = process.argv.slice(2);
if (!outFile) {
  process.stderr.write('usage: node request-cert.mjs SIGNER_URL CA_FILE TOKEN_FILE CSR_FILE OUT_FILE\n');
  process.exit(2);
}
const ca = readFileSync(caFile);
const token = readFileSync(tokenFile, 'utf8').replace(/\r?\n$/, '');
const csr = readFileSync(csrFile);

const post = () =>
  new Promise((resolve, reject) => {
    const req = request(`${url}/v1/worker-certificate`, { method: 'POST', ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/pkcs10' }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(csr);
  });

const deadline = Date.now() + 120_000;
for (;;) {
  let answer;
  try {
    answer = await post();
  } catch (err) {
    if (Date.now() > deadline) throw new Error(`the signer at ${url} is not reachable: ${err.message}`);
    await new Promise((r) => setTimeout(r, 1_000));
    continue;
  }
  if (answer.status !== 200) {
    process.stderr.write(`the signer at ${url} refused the certificate (${answer.status}): ${answer.body}`);
    process.exit(1);
  }
  writeFileSync(outFile, answer.body, { mode: 0o644 });
  break;
}
