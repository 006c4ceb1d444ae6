/**
 * Cluster events on core NATS subjects (fire and forget, JSON): a worker
 * joined or was lost, a step finished, a checkpoint was written.
 */
import { EventKinds, type EventKind } from './subjects.ts';
import type { NatsLink } from './nats-connection.ts';

export interface EventPayloads {
  'worker.joined': { worker_id: string; worker_name: string };
  'worker.lost': { worker_id: string; reason: string };
  step: { step: number; adapter_version: number };
  checkpoint: { step: number; path: string };
}

/** What subscribers receive: the payload plus the kind and the send time. */
export type ClusterEvent<K extends EventKind = EventKind> = EventPayloads[K] &
  Record<string, unknown> & { kind: K; at_unix_ms: number };

export function publishEvent<K extends EventKind>(
  link: NatsLink,
  kind: K,
  payload: EventPayloads[K] & Record<string, unknown>,
): void {
  const event = { ...payload, kind, at_unix_ms: Date.now() };
  link.nc.publish(link.subjects.event(kind), JSON.stringify(event));
}

/** Delivers every event of the link's cluster; malformed ones are skipped. */
export function subscribeEvents(link: NatsLink, onEvent: (event: ClusterEvent) => void): { close(): void } {
  const subscription = link.nc.subscribe(link.subjects.allEvents, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const event = msg.json<ClusterEvent>();
        if ((EventKinds as readonly string[]).includes(event.kind)) onEvent(event);
      } catch {
        // not JSON: not one of ours
      }
    },
  });
  return { close: () => subscription.unsubscribe() };
}
