/**
 * Per-worker identity under mTLS: each worker presents its own client
 * certificate (makeThrowawayCerts issues one per worker); a quarantined
 * identity is refused when it registers again, under any name, while
 * another certificate of the same CA is admitted and trains.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../services/core/backend.ts';
import { parseFlags } from '../../services/cli/args.ts';
import { coordinatorCommand, coordinatorRunFrom } from '../../services/cli/coordinator.ts';
import type { Coordinator } from '../../services/coordinator/coordinator.ts';
import { makeThrowawayCerts, workerIdentityUri, type TlsFiles } from '../../services/protocol/tls.ts';
import { serveTraining } from '../../services/run/serve.ts';
import { workerSetupFrom } from '../../services/run/worker-setup.ts';
import { Worker } from '../../services/worker/worker.ts';
import { quiet, scratch, TINY } from './cluster-harness.ts';

const tmp = scratch();
after(() => tmp.done());

async function startWorker(c: Coordinator, name: string, files: TlsFiles): Promise<Worker> {
  const backend = await initBackend();
  return Worker.start({
    coordinator: c.address.replace(/^127\.0\.0\.1:/, 'localhost:'),
    security: { mode: 'mtls', ...files },
    name,
    capabilities: { backend: backend.name, device: 'cpu', cores: 1, modelSha256: '', version: 'test' },
    prepare: workerSetupFrom({}, backend, quiet),
    metrics: { port: 0 },
    connectTimeoutMs: 5_000,
    log: quiet,
  });
}

test('a quarantined certificate identity stays out when it registers again under another name; one revoked in the deny-list mid-run is refused; another trains', async () => {
  const certs = await makeThrowawayCerts(join(tmp.dir, 'certs'), 1, 3);
  const denyFile = join(tmp.dir, 'revoked.txt');
  writeFileSync(denyFile, '# revoked worker identities\n');
  const tls = ['--tls-ca', certs.server.caPath, '--tls-cert', certs.server.certPath, '--tls-key', certs.server.keyPath];
  const flags = parseFlags(coordinatorCommand, [...TINY, '--iters', '1', '--out', join(tmp.dir, 'out'), '--listen', '127.0.0.1:0', '--metrics-port', '0', ...tls, '--deny-identities', denyFile]);
  const workers: Worker[] = [];
  let refused: Error | null = null;
  let revoked: Error | null = null;
  const attempt = (c: Coordinator, name: string, files: TlsFiles) =>
    startWorker(c, name, files).then(
      (w) => (workers.push(w), null),
      (e: Error) => e,
    );
  try {
    await serveTraining(coordinatorRunFrom(flags), quiet, {
      onListening: async (c) => {
        const first = await startWorker(c, 'a', certs.workers[0]);
        workers.push(first);
        while (c.registry.live().length < 1) await c.registry.nextEvent();
        c.registry.quarantine(first.id, 'test: wrong results');
        assert.deepEqual([...c.registry.quarantined.keys()], [workerIdentityUri('worker-1')]);
        refused = await attempt(c, 'b-renamed', certs.workers[0]);
        writeFileSync(denyFile, `${workerIdentityUri('worker-3')}\n`);
        utimesSync(denyFile, new Date(Date.now() + 60_000), new Date(Date.now() + 60_000));
        revoked = await attempt(c, 'd', certs.workers[2]);
        workers.push(await startWorker(c, 'c', certs.workers[1]));
        while (c.registry.live().length < 1) await c.registry.nextEvent();
      },
    });
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
  assert.match(String(refused), /worker identity "urn:advclip:worker:worker-1" is quarantined \(test: wrong results\): not admitted/);
  assert.match(String(revoked), /worker identity "urn:advclip:worker:worker-3" is revoked \(listed in .*revoked\.txt\): not admitted/);
});
