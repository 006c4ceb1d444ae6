/**
 * Every NATS name advclip uses: subjects, KV bucket and keys, object store
 * bucket and object names. Several clusters can share one NATS server; a
 * cluster name (default: none) keeps their names apart.
 */
import { invalidArgument } from '../core/errors.ts';

export const EventKinds = ['worker.joined', 'worker.lost', 'step', 'checkpoint'] as const;
export type EventKind = (typeof EventKinds)[number];

export interface Subjects {
  readonly cluster: string;
  /** JetStream KV bucket holding `latestAdapterKey`. */
  readonly adapterKvBucket: string;
  /** KV key whose value is JSON {version, sha256, object}. */
  readonly latestAdapterKey: string;
  /** JetStream object store bucket holding adapter blobs (safetensors). */
  readonly adapterObjectBucket: string;
  /** Object name of one adapter version. */
  adapterObject(version: number): string;
  /** The version in an object name made by adapterObject, or undefined. */
  versionOfAdapterObject(name: string): number | undefined;
  /** Core NATS subject of one event kind. */
  event(kind: EventKind): string;
  /** Wildcard matching every event subject of this cluster. */
  readonly allEvents: string;
}

/** Cluster names go into bucket names, which allow only [A-Za-z0-9_-]. */
const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const ADAPTER_OBJECT = /^adapter-(0|[1-9][0-9]{0,15})$/;

export function subjectsFor(cluster = ''): Subjects {
  if (cluster !== '' && !CLUSTER_NAME.test(cluster)) {
    throw invalidArgument(`cluster name "${cluster}" must be 1-64 characters of A-Z a-z 0-9 _ -`);
  }
  const bucketPrefix = cluster === '' ? 'advclip' : `advclip_${cluster}`;
  const subjectPrefix = cluster === '' ? 'advclip' : `advclip.${cluster}`;
  return Object.freeze({
    cluster,
    adapterKvBucket: `${bucketPrefix}_adapters`,
    latestAdapterKey: 'adapter.latest',
    adapterObjectBucket: `${bucketPrefix}_adapter_blobs`,
    adapterObject: (version: number) => `adapter-${version}`,
    versionOfAdapterObject: (name: string) => {
      const match = ADAPTER_OBJECT.exec(name);
      return match ? Number(match[1]) : undefined;
    },
    event: (kind: EventKind) => `${subjectPrefix}.events.${kind}`,
    allEvents: `${subjectPrefix}.events.>`,
  });
}
