/**
 * The coordinator's gRPC service: Register admits a worker (cluster token,
 * model hash) and hands it the run's RunSpec; Work carries tasks one
 * way and heartbeats, results and errors the other; GetAdapter serves kept
 * adapter versions (the path without NATS).
 */
import { timingSafeEqual } from 'node:crypto';
import { Server, status, type ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { AdvclipError, failedPrecondition, notFound } from '../core/errors.ts';
import type { CoordinatorHandlers } from '../protocol/generated/advclip/v1/Coordinator.ts';
import type { CoordinatorMessage } from '../protocol/generated/advclip/v1/CoordinatorMessage.ts';
import type { WorkerMessage__Output } from '../protocol/generated/advclip/v1/WorkerMessage.ts';
import { grpcServerOptions } from '../protocol/grpc-options.ts';
import { toGrpcError } from '../protocol/grpc-status.ts';
import { coordinatorService } from '../protocol/proto-loader.ts';
import { certificateIdentity } from '../protocol/tls.ts';
import type { RunSpec } from '../protocol/generated/advclip/v1/RunSpec.ts';
import { meteredServerService, type WireMessage } from '../protocol/wire-meter.ts';
import type { AdapterVersions } from './adapter-versions.ts';
import { RegisterLimiter, type Admission } from './admission.ts';
import type { RemoteExecutor } from './remote-executor.ts';
import type { WorkerRegistry, WorkerSession } from './worker-registry.ts';

/**
 * The runs of a sweep's coordinator (advclip sweep), beside or instead of
 * its own: each Task names its run (run_id), a worker fetches a RunSpec it
 * does not hold with GetRun, adapter versions are per run, and a task id
 * starts with `RUN/` so its result goes to that run's executor.
 */
export interface ServedRuns {
  runSpec(runId: string): RunSpec | undefined;
  versions(runId: string): Pick<AdapterVersions, 'get' | 'latest'> | undefined;
  /** the executor waiting for the task, by its id */
  executorOf(taskId: string): Pick<RemoteExecutor, 'onResult' | 'onError'> | undefined;
}

export interface CoordinatorServerOptions {
  /** HOST:PORT; port 0 picks a free one */
  readonly listen: string;
  /** mTLS or insecure (protocol/tls.ts serverCredentials), made before anything else starts */
  readonly credentials: ServerCredentials;
  /** when set, Register must present it */
  readonly clusterToken: string | undefined;
  /** the largest gRPC message sent or accepted (task-codec.ts maxMessageBytes; default grpc-options.ts's) */
  readonly maxMessageBytes?: number;
  /** allow- and deny-lists of worker identities (absent: any the CA signed) */
  readonly admission?: Admission;
  /** the run every admitted worker computes for (its model_sha256 admits workers) */
  readonly runSpec: RunSpec;
  readonly natsUrl: string;
  readonly natsCluster: string;
  readonly heartbeatIntervalMs: number;
  readonly registry: WorkerRegistry;
  readonly versions: Pick<AdapterVersions, 'get' | 'latest'>;
  readonly executor: Pick<RemoteExecutor, 'onResult' | 'onError'>;
  /** a sweep: workers are told multi_run, with no run of their own; tasks name their runs */
  readonly runs?: ServedRuns;
  /** every message sent or received, with its size */
  readonly onWire: (message: WireMessage) => void;
  readonly warn: (message: string) => void;
}

export interface CoordinatorServer {
  /** HOST:PORT actually bound */
  readonly address: string;
  /** Stops taking calls; open streams are cancelled after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

const sameSecret = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * Who a registering worker is: under mTLS its certificate's identity (SAN
 * URI, else subject CN; certificateIdentity), which it cannot change by
 * registering again; without TLS only the name it claims.
 */
function identityOf(auth: { readonly transportSecurityType?: string; readonly sslPeerCertificate?: Parameters<typeof certificateIdentity>[0] }, name: string): string {
  if (auth.transportSecurityType !== 'ssl') return name || 'worker';
  const identity = certificateIdentity(auth.sslPeerCertificate);
  if (!identity) throw failedPrecondition('the client certificate has neither a SAN URI nor a subject CN: no identity to admit');
  return identity;
}

const admitted = (identity: string, admission: Admission | undefined): string => {
  admission?.check(identity);
  return identity;
};

export async function startCoordinatorServer(o: CoordinatorServerOptions): Promise<CoordinatorServer> {
  const server = new Server(grpcServerOptions({ maxMessageBytes: o.maxMessageBytes }));
  const registers = new RegisterLimiter();
  const handlers: CoordinatorHandlers = {
    Register(call, callback) {
      const caps = call.request.capabilities;
      try {
        if (!caps) throw failedPrecondition('Register without capabilities');
        const identity = identityOf(call.getAuthContext(), caps.worker_name);
        // per worker: the replicas of one process share its certificate's identity, each registering once
        registers.attempt(identity === caps.worker_name ? identity : `${identity} / ${caps.worker_name}`);
        if (o.clusterToken !== undefined && !sameSecret(call.request.cluster_token, o.clusterToken)) {
          throw failedPrecondition('wrong cluster token: not admitted');
        }
        const specVersion = o.runSpec.spec_version ?? 0;
        if (caps.run_spec_version !== specVersion) {
          throw failedPrecondition(
            `RegisterRequest.capabilities.run_spec_version is ${caps.run_spec_version}, the coordinator's run is RunSpec version ${specVersion}: not admitted (run the same advclip version on the coordinator and the workers)`,
          );
        }
        const modelSha256 = o.runSpec.model_sha256 ?? '';
        // a sweep's runs may use different models: the worker checks each run's hashes when it prepares it
        if (!o.runs && caps.model_sha256 && caps.model_sha256 !== modelSha256) {
          throw failedPrecondition(`the worker's model (sha256 ${caps.model_sha256.slice(0, 12)}…) is not the coordinator's (${modelSha256.slice(0, 12)}…): not admitted`);
        }
        callback(null, {
          worker_id: o.registry.admit(caps, admitted(identity, o.admission)),
          heartbeat_interval_ms: o.heartbeatIntervalMs,
          ...(o.runs ? { multi_run: true } : { run_spec: o.runSpec }),
          nats_url: o.natsUrl,
          nats_cluster: o.natsCluster,
          adapter_version: o.runs ? 0 : o.versions.latest?.version ?? 0,
        });
      } catch (err) {
        callback(toGrpcError(err));
      }
    },
    Work(call) {
      serveWork(call, o);
    },
    GetAdapter(call, callback) {
      const runId = call.request.run_id;
      const versions = runId ? o.runs?.versions(runId) : o.versions;
      if (!versions) {
        callback(toGrpcError(notFound(`run "${runId}" is not served here`)));
        return;
      }
      const blob = versions.get(call.request.version);
      if (!blob) {
        callback(toGrpcError(notFound(`adapter version ${call.request.version}${runId ? ` of run ${runId}` : ''} is not kept (newest: ${versions.latest?.version ?? 'none'})`)));
        return;
      }
      callback(null, { version: blob.version, sha256: blob.sha256, safetensors: Buffer.from(blob.bytes.buffer, blob.bytes.byteOffset, blob.bytes.byteLength) });
    },
    GetRun(call, callback) {
      const spec = o.runs?.runSpec(call.request.run_id);
      if (!spec) callback(toGrpcError(notFound(`run "${call.request.run_id}" is not served here`)));
      else callback(null, spec);
    },
  };
  server.addService(meteredServerService(coordinatorService(), o.onWire), handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(o.listen, o.credentials, (err, p) =>
      err ? reject(new AdvclipError('UNAVAILABLE', `cannot listen on ${o.listen}: ${err.message}`)) : resolve(p),
    ),
  );
  const host = o.listen.slice(0, o.listen.lastIndexOf(':'));
  return {
    address: `${host}:${port}`,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

/** The executor a result belongs to: a sweep run's by its task id, else the coordinator's own (which refuses an unknown id as stale). */
const executorOf = (o: CoordinatorServerOptions, taskId: string) => o.runs?.executorOf(taskId) ?? o.executor;

type WorkCall = ServerDuplexStream<WorkerMessage__Output, CoordinatorMessage>;

function serveWork(call: WorkCall, o: CoordinatorServerOptions): void {
  let session: WorkerSession | null = null;
  let closed = false;
  const fail = (err: unknown) => {
    if (closed) return;
    closed = true;
    const { code, details } = toGrpcError(err);
    call.emit('error', { code: code ?? status.INTERNAL, details });
  };
  call.on('data', (message: WorkerMessage__Output) => {
    try {
      if (!session) {
        if (message.body !== 'hello' || !message.hello) throw failedPrecondition('the first message on Work must be a Hello');
        session = o.registry.join(
          message.hello.worker_id,
          message.hello.adapter_version,
          (m) => {
            if (!closed) call.write(m);
          },
          () => {
            if (closed) return;
            closed = true;
            call.end();
          },
        );
        return;
      }
      o.registry.touch(session.id);
      switch (message.body) {
        case 'heartbeat':
          o.registry.touch(session.id, message.heartbeat?.adapter_version);
          break;
        case 'result':
          if (message.result) executorOf(o, message.result.task_id).onResult(session.id, message.result);
          break;
        case 'error':
          if (message.error) executorOf(o, message.error.task_id).onError(session.id, message.error);
          break;
        default:
          throw failedPrecondition(`unexpected ${message.body ?? 'empty'} message on an open Work stream`);
      }
    } catch (err) {
      // the status first: losing the session ends the stream, which would answer OK
      fail(err);
      if (session) o.registry.lose(session.id, (err as Error).message);
    }
  });
  const lost = (reason: string) => {
    if (session) o.registry.lose(session.id, reason);
  };
  call.on('end', () => {
    lost('the worker closed its stream');
    if (!closed) {
      closed = true;
      call.end();
    }
  });
  call.on('cancelled', () => {
    closed = true;
    lost('the stream was cancelled');
  });
  call.on('error', (err) => {
    closed = true;
    lost(`stream error: ${err.message}`);
  });
}
