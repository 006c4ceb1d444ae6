/**
 * `advclip adapter pull`: the adapter a cluster run published, read back from
 * the NATS adapter store (adapter.latest and its history) and written as a
 * PEFT adapter directory. The way out of a Kubernetes or compose run whose
 * coordinator PVC or volume you do not want to mount.
 */
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { failedPrecondition, invalidArgument } from '../core/errors.ts';
import { loraConfigOfBlob } from '../protocol/adapter-blob.ts';
import { AdapterSubscriber } from '../protocol/adapter-store.ts';
import { connectNats, isNatsUnavailable } from '../protocol/nats-connection.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, adapterConfigJson } from '../io/peft.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import type { Logger } from '../protocol/log.ts';
import { natsCredentialsFromEnv, natsTlsFlags, natsTlsFrom } from './transport-flags.ts';

export const adapterCommand: CommandSpec = {
  name: 'adapter',
  summary: 'Fetch a trained adapter from a cluster (advclip adapter pull)',
  usage: 'advclip adapter pull --nats URL [--nats-ca F] --out DIR [--version N] [--base-model NAME] [--force] [--json]   (NATS_USER/NATS_PASSWORD from the environment)',
  subcommands: ['pull'],
  flags: {
    nats: { type: 'string', arg: 'URL', required: true, help: 'NATS server of the run, e.g. tls://advclip-nats:4222' },
    ...natsTlsFlags,
    out: { type: 'string', arg: 'DIR', required: true, help: 'PEFT adapter directory to write' },
    version: { type: 'int', arg: 'N', help: 'adapter version (default: the newest; older ones while NATS still keeps them)' },
    'base-model': { type: 'string', arg: 'NAME', default: '', help: "adapter_config.json's base_model_name_or_path (e.g. openai/clip-vit-base-patch32)" },
    force: { type: 'boolean', help: 'replace an adapter already in --out' },
    json: { type: 'boolean', help: 'print one JSON object on stdout' },
  },
};

export async function runAdapter(flags: FlagValues, argv: readonly string[], log: Logger): Promise<void> {
  const sub = argv.find((a) => !a.startsWith('-') && adapterCommand.subcommands!.includes(a));
  if (sub !== 'pull') throw invalidArgument('advclip adapter: give a sub-command: pull (see advclip adapter --help)');
  const version = flags.version as number | undefined;
  if (version !== undefined && version < 1) throw invalidArgument(`--version must be ≥ 1, got ${version}`);
  const out = flags.out as string;
  if (!flags.force && (await exists(join(out, ADAPTER_WEIGHTS_FILE)))) {
    throw failedPrecondition(`${out}: already holds ${ADAPTER_WEIGHTS_FILE}; pass --force to replace it`);
  }
  const url = flags.nats as string;
  const link = await connectNats({ servers: url, name: 'advclip-adapter-pull', ...natsCredentialsFromEnv(), tls: natsTlsFrom(flags) });
  if (isNatsUnavailable(link)) throw link.error;
  let subscriber: AdapterSubscriber | undefined;
  try {
    subscriber = await AdapterSubscriber.open(link, { log: (m) => log.debug(m) });
    const adapter = await subscriber.read(version);
    const source = `adapter version ${adapter.version} from ${url}`;
    const config = loraConfigOfBlob(adapter.bytes, source);
    await mkdir(out, { recursive: true });
    await writeAtomic(join(out, ADAPTER_WEIGHTS_FILE), adapter.bytes);
    await writeAtomic(join(out, ADAPTER_CONFIG_FILE), JSON.stringify(adapterConfigJson(config, flags['base-model'] as string), null, 2) + '\n');
    const result = { out, version: adapter.version, sha256: adapter.sha256, bytes: adapter.bytes.byteLength, rank: config.rank };
    log.info('adapter pulled', result);
    if (flags.json) process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await subscriber?.close();
    await link.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** A reader never sees half a file: write beside it, then rename. */
async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
