/**
 * A worker process of the broadcast benchmark (bench/broadcast.ts): holds
 * adapter versions from NATS exactly as a worker does (AdapterHolder over
 * AdapterSubscriber: watch `adapter.latest`, take the blob inline or fetch
 * it from the object store, verify the SHA-256, decode against the run's
 * sites) and tells its parent over IPC each version it holds. No compute,
 * no gRPC.
 *
 *   node --import tsx bench/broadcast-worker.ts --nats URL --cluster NAME --arch vit-b-32 --seed 1   (forked, with IPC)
 */
import { parseArgs } from 'node:util';
import { defaultLoraConfig, initLora } from '../services/core/lora.ts';
import { archConfig } from '../services/core/presets.ts';
import { AdapterSubscriber } from '../services/protocol/adapter-store.ts';
import { connectNats, isNatsUnavailable } from '../services/protocol/nats-connection.ts';
import { AdapterHolder } from '../services/worker/adapter-holder.ts';

const { values } = parseArgs({ options: { nats: { type: 'string' }, cluster: { type: 'string' }, arch: { type: 'string' }, seed: { type: 'string' } } });
if (!process.send) throw new Error('bench/broadcast-worker.ts runs forked by bench/broadcast.ts (it reports over IPC)');
const send = process.send.bind(process);

const link = await connectNats({ servers: values.nats!, cluster: values.cluster, name: `bench-broadcast-worker-${process.pid}` });
if (isNatsUnavailable(link)) throw link.error;
const subscriber = await AdapterSubscriber.open(link, { log: (m) => process.stderr.write(`${m}\n`) });
const holder = new AdapterHolder({
  initial: initLora(archConfig(values.arch!), defaultLoraConfig, Number(values.seed)),
  subscriber,
  getAdapter: () => Promise.reject(new Error('the broadcast benchmark has no gRPC')),
  onHeld: (version, via) => send({ held: version, via }),
  warn: (m) => process.stderr.write(`${m}\n`),
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  holder.dispose();
  await subscriber.close();
  await link.close();
  process.exit(0);
};
process.on('message', (m) => void (m === 'stop' && stop()));
process.on('disconnect', () => void stop());
send({ ready: true });
