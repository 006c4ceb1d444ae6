/**
 * A cluster with a real nats-server on loopback (the compose file's image
 * where a Docker engine is, else Debian's binary: test/helpers/services.ts):
 * adapter versions seen on NATS are consecutive and verify, a worker started
 * late holds the latest version within moments; /metrics scraped during the
 * run carries the coordinator's metrics with sane values; a long-running
 * worker keeps numTensors flat.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { connectNats, isNatsUnavailable, type NatsLink } from '../../services/protocol/nats-connection.ts';
import { AdapterSubscriber } from '../../services/protocol/adapter-store.ts';
import { parseExposition, type MetricFamily } from '../../services/protocol/exposition.ts';
import type { Worker } from '../../services/worker/worker.ts';
import { natsSkip, startNats, type NatsService } from '../helpers/services.ts';
import { runCluster, scratch, startWorker, TINY, trainReference } from './cluster-harness.ts';

let nats: NatsService;
const skip = await natsSkip();
let link: NatsLink;
let observer: AdapterSubscriber;
const seen: number[] = [];
const tmp = scratch();

before(async () => {
  if (skip) return;
  nats = await startNats();
  const l = await connectNats({ servers: nats.url, name: 'test-observer' });
  if (isNatsUnavailable(l)) throw l.error;
  link = l;
  observer = await AdapterSubscriber.open(link);
  observer.onVersion((a) => seen.push(a.version));
});

after(async () => {
  await observer?.close();
  await link?.close();
  await nats?.close();
  tmp.done();
});

const value = (families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number => {
  const f = families.get(name.replace(/_(count|sum|bucket)$/, ''));
  assert.ok(f, `${name} is exported`);
  const s = f.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  assert.ok(s, `${name}${JSON.stringify(labels)} has a sample`);
  return s.value;
};

test('versions on NATS are consecutive and verified; a late worker catches up; /metrics is sane; numTensors flat; result unchanged', { skip }, async (t) => {
  t.diagnostic(`nats-server runs as a ${nats.backend}`);
  const args = [...TINY, '--iters', '9', '--nats', nats.url];
  const reference = await trainReference(TINY.concat(['--iters', '9']), `${tmp.dir}/reference`);
  let late: Worker | null = null;
  let catchUp: { behind: number; ms: number } | null = null;
  let scraped = '';
  const tensors: number[] = [];
  const run = await runCluster(args, `${tmp.dir}/cluster`, {
    workers: 1,
    onStep: async (_r, state, coordinator) => {
      tensors.push(tf.memory().numTensors);
      if (state.step === 4) {
        const res = await fetch(`http://127.0.0.1:${coordinator.metricsPort}/metrics`);
        scraped = await res.text();
        const ready = await fetch(`http://127.0.0.1:${coordinator.metricsPort}/readyz`);
        assert.equal(ready.status, 200);
        assert.deepEqual(await ready.json(), { ready: true, state: 'ready' });
      }
      if (state.step === 7) {
        const started = performance.now();
        late = await startWorker(coordinator, 'late');
        const target = coordinator.adapterVersion;
        // no clock in the verdict: wait for the version (the test's timeout bounds a worker that never catches up)
        while (late.adapterVersion < target) await new Promise((r) => setTimeout(r, 5));
        catchUp = { behind: target - late.adapterVersion, ms: performance.now() - started };
        while (coordinator.registry.live().length < 2) await coordinator.registry.nextEvent();
      }
    },
  });
  const w = late as Worker | null;
  try {
    assert.ok(run.adapter.equals(reference), 'the NATS run ends with the adapter of advclip train');

    // every version the coordinator published, in order, each verified by its SHA-256 on download
    assert.deepEqual(seen, Array.from({ length: 9 }, (_, i) => i + 1));

    assert.ok(catchUp, 'the late worker started');
    assert.equal((catchUp as { behind: number }).behind, 0, 'the late worker holds the latest version');
    assert.ok(w && w.tasksDone > 0, 'the late worker computed tasks');

    const m = parseExposition(scraped);
    assert.equal(value(m, 'advclip_step'), 4);
    assert.equal(value(m, 'advclip_workers'), 1);
    assert.equal(value(m, 'advclip_adapter_version'), 4);
    assert.equal(value(m, 'advclip_waiting_for_workers'), 0);
    assert.ok(Math.abs(value(m, 'advclip_epsilon') - 1 / 255) < 1e-12);
    for (const kind of ['clean', 'adv']) {
      const loss = value(m, 'advclip_loss', { kind });
      assert.ok(loss > 0 && loss < 10, `loss ${kind} = ${loss}`);
    }
    for (const param of ['A', 'B', 'delta']) assert.ok(value(m, 'advclip_grad_norm', { param }) >= 0);
    assert.ok(value(m, 'advclip_grad_norm', { param: 'B' }) > 0);
    const linf = value(m, 'advclip_delta_linf');
    assert.ok(linf > 0 && linf <= 1 / 255 + 1e-9, `‖δ‖∞ = ${linf}`);
    for (const phase of ['compute', 'network', 'wait', 'update']) {
      assert.equal(value(m, 'advclip_step_seconds_count', { phase }), 4, `phase ${phase} observed each step`);
      assert.ok(value(m, 'advclip_step_seconds_sum', { phase }) >= 0);
    }
    assert.ok(value(m, 'advclip_step_seconds_sum', { phase: 'compute' }) > 0);
    const samples = m.get('advclip_worker_samples_total')!.samples.filter((s) => s.name === 'advclip_worker_samples_total');
    assert.equal(samples.length, 1);
    // 4 steps × 8 samples × (2 δ rounds + 1 LoRA round)
    assert.equal(samples[0].value, 4 * 8 * 3);
    assert.ok(m.has('advclip_rejected_results_total'));

    // one in-process worker, 4 tasks per step: tensors live after steps 1..7 (28 tasks) stay flat
    assert.equal(tensors.length, 9);
    assert.deepEqual(tensors.slice(0, 7), Array(7).fill(tensors[0]), `numTensors per step: ${tensors.join(',')}`);
  } finally {
    await w?.close();
  }
});
