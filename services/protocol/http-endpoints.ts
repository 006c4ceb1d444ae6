/**
 * The HTTP side of every advclip process: `/metrics` for Prometheus,
 * `/healthz` (liveness: 200 while the process can answer) and `/readyz`
 * (readiness: 200 only in a state that takes work, else 503).
 *
 * Bodies carry the lifecycle state and nothing else, so nothing secret can
 * leak through a probe. Binds to 127.0.0.1 unless told otherwise; containers
 * pass 0.0.0.0.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export const LifecycleStates = ['starting', 'ready', 'draining', 'stopped'] as const;
export type LifecycleState = (typeof LifecycleStates)[number];

export interface Readiness {
  readonly ready: boolean;
  readonly state: LifecycleState;
}

export interface HttpEndpointsOptions {
  /** Interface to bind; default 127.0.0.1. */
  readonly host?: string;
  /** 0 picks any free port; the bound port is in the result. */
  readonly port: number;
  readonly registry: Registry;
  /** Asked on every /readyz request. */
  readonly readiness: () => Readiness;
}

export interface HttpEndpoints {
  readonly host: string;
  readonly port: number;
  /** Stops listening and drops open keep-alive connections. */
  close(): Promise<void>;
}

export const HttpPaths = { metrics: '/metrics', healthz: '/healthz', readyz: '/readyz' } as const;

export async function startHttpEndpoints(options: HttpEndpointsOptions): Promise<HttpEndpoints> {
  const host = options.host ?? '127.0.0.1';
  const { registry, readiness } = options;

  const server = createServer((req, res) => {
    route(req, res, registry, readiness).catch((err: unknown) => {
      send(res, 500, 'text/plain; charset=utf-8', `internal error: ${(err as Error).message}\n`);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const port = (server.address() as AddressInfo).port;
  return {
    host,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  registry: Registry,
  readiness: () => Readiness,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  switch (path) {
    case HttpPaths.metrics:
      return send(res, 200, registry.contentType, await registry.metrics());
    case HttpPaths.healthz:
      return send(res, 200, 'application/json', JSON.stringify({ status: 'ok' }));
    case HttpPaths.readyz: {
      const { ready, state } = readiness();
      return send(res, ready ? 200 : 503, 'application/json', JSON.stringify({ ready, state }));
    }
    default:
      return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
