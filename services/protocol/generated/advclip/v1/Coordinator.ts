// Original file: proto/advclip/v1/coordinator.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AdapterBlob as _advclip_v1_AdapterBlob, AdapterBlob__Output as _advclip_v1_AdapterBlob__Output } from '../../advclip/v1/AdapterBlob.ts';
import type { AdapterRequest as _advclip_v1_AdapterRequest, AdapterRequest__Output as _advclip_v1_AdapterRequest__Output } from '../../advclip/v1/AdapterRequest.ts';
import type { CoordinatorMessage as _advclip_v1_CoordinatorMessage, CoordinatorMessage__Output as _advclip_v1_CoordinatorMessage__Output } from '../../advclip/v1/CoordinatorMessage.ts';
import type { RegisterReply as _advclip_v1_RegisterReply, RegisterReply__Output as _advclip_v1_RegisterReply__Output } from '../../advclip/v1/RegisterReply.ts';
import type { RegisterRequest as _advclip_v1_RegisterRequest, RegisterRequest__Output as _advclip_v1_RegisterRequest__Output } from '../../advclip/v1/RegisterRequest.ts';
import type { RunRequest as _advclip_v1_RunRequest, RunRequest__Output as _advclip_v1_RunRequest__Output } from '../../advclip/v1/RunRequest.ts';
import type { RunSpec as _advclip_v1_RunSpec, RunSpec__Output as _advclip_v1_RunSpec__Output } from '../../advclip/v1/RunSpec.ts';
import type { WorkerMessage as _advclip_v1_WorkerMessage, WorkerMessage__Output as _advclip_v1_WorkerMessage__Output } from '../../advclip/v1/WorkerMessage.ts';

export interface CoordinatorClient extends grpc.Client {
  /**
   * An adapter version as a safetensors blob (the no-NATS fallback).
   */
  GetAdapter(argument: _advclip_v1_AdapterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_AdapterBlob__Output>): grpc.ClientUnaryCall;
  GetAdapter(argument: _advclip_v1_AdapterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_advclip_v1_AdapterBlob__Output>): grpc.ClientUnaryCall;
  GetAdapter(argument: _advclip_v1_AdapterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_AdapterBlob__Output>): grpc.ClientUnaryCall;
  GetAdapter(argument: _advclip_v1_AdapterRequest, callback: grpc.requestCallback<_advclip_v1_AdapterBlob__Output>): grpc.ClientUnaryCall;
  /**
   * An adapter version as a safetensors blob (the no-NATS fallback).
   */
  getAdapter(argument: _advclip_v1_AdapterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_AdapterBlob__Output>): grpc.ClientUnaryCall;
  getAdapter(argument: _advclip_v1_AdapterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_advclip_v1_AdapterBlob__Output>): grpc.ClientUnaryCall;
  getAdapter(argument: _advclip_v1_AdapterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_AdapterBlob__Output>): grpc.ClientUnaryCall;
  getAdapter(argument: _advclip_v1_AdapterRequest, callback: grpc.requestCallback<_advclip_v1_AdapterBlob__Output>): grpc.ClientUnaryCall;
  
  /**
   * The RunSpec of a run a Task names (Task.run_id) that the worker does not
   * hold yet: a sweep's coordinator serves many runs from one pool.
   */
  GetRun(argument: _advclip_v1_RunRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_RunSpec__Output>): grpc.ClientUnaryCall;
  GetRun(argument: _advclip_v1_RunRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_advclip_v1_RunSpec__Output>): grpc.ClientUnaryCall;
  GetRun(argument: _advclip_v1_RunRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_RunSpec__Output>): grpc.ClientUnaryCall;
  GetRun(argument: _advclip_v1_RunRequest, callback: grpc.requestCallback<_advclip_v1_RunSpec__Output>): grpc.ClientUnaryCall;
  /**
   * The RunSpec of a run a Task names (Task.run_id) that the worker does not
   * hold yet: a sweep's coordinator serves many runs from one pool.
   */
  getRun(argument: _advclip_v1_RunRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_RunSpec__Output>): grpc.ClientUnaryCall;
  getRun(argument: _advclip_v1_RunRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_advclip_v1_RunSpec__Output>): grpc.ClientUnaryCall;
  getRun(argument: _advclip_v1_RunRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_RunSpec__Output>): grpc.ClientUnaryCall;
  getRun(argument: _advclip_v1_RunRequest, callback: grpc.requestCallback<_advclip_v1_RunSpec__Output>): grpc.ClientUnaryCall;
  
  /**
   * Admission: checks the cluster token and the model hash.
   */
  Register(argument: _advclip_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  Register(argument: _advclip_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_advclip_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  Register(argument: _advclip_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  Register(argument: _advclip_v1_RegisterRequest, callback: grpc.requestCallback<_advclip_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  /**
   * Admission: checks the cluster token and the model hash.
   */
  register(argument: _advclip_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  register(argument: _advclip_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_advclip_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  register(argument: _advclip_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_advclip_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  register(argument: _advclip_v1_RegisterRequest, callback: grpc.requestCallback<_advclip_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * The work channel, opened by the worker after Register. The first
   * WorkerMessage must be a Hello.
   */
  Work(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_advclip_v1_WorkerMessage, _advclip_v1_CoordinatorMessage__Output>;
  Work(options?: grpc.CallOptions): grpc.ClientDuplexStream<_advclip_v1_WorkerMessage, _advclip_v1_CoordinatorMessage__Output>;
  /**
   * The work channel, opened by the worker after Register. The first
   * WorkerMessage must be a Hello.
   */
  work(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_advclip_v1_WorkerMessage, _advclip_v1_CoordinatorMessage__Output>;
  work(options?: grpc.CallOptions): grpc.ClientDuplexStream<_advclip_v1_WorkerMessage, _advclip_v1_CoordinatorMessage__Output>;
  
}

export interface CoordinatorHandlers extends grpc.UntypedServiceImplementation {
  /**
   * An adapter version as a safetensors blob (the no-NATS fallback).
   */
  GetAdapter: grpc.handleUnaryCall<_advclip_v1_AdapterRequest__Output, _advclip_v1_AdapterBlob>;
  
  /**
   * The RunSpec of a run a Task names (Task.run_id) that the worker does not
   * hold yet: a sweep's coordinator serves many runs from one pool.
   */
  GetRun: grpc.handleUnaryCall<_advclip_v1_RunRequest__Output, _advclip_v1_RunSpec>;
  
  /**
   * Admission: checks the cluster token and the model hash.
   */
  Register: grpc.handleUnaryCall<_advclip_v1_RegisterRequest__Output, _advclip_v1_RegisterReply>;
  
  /**
   * The work channel, opened by the worker after Register. The first
   * WorkerMessage must be a Hello.
   */
  Work: grpc.handleBidiStreamingCall<_advclip_v1_WorkerMessage__Output, _advclip_v1_CoordinatorMessage>;
  
}

export interface CoordinatorDefinition extends grpc.ServiceDefinition {
  GetAdapter: MethodDefinition<_advclip_v1_AdapterRequest, _advclip_v1_AdapterBlob, _advclip_v1_AdapterRequest__Output, _advclip_v1_AdapterBlob__Output>
  GetRun: MethodDefinition<_advclip_v1_RunRequest, _advclip_v1_RunSpec, _advclip_v1_RunRequest__Output, _advclip_v1_RunSpec__Output>
  Register: MethodDefinition<_advclip_v1_RegisterRequest, _advclip_v1_RegisterReply, _advclip_v1_RegisterRequest__Output, _advclip_v1_RegisterReply__Output>
  Work: MethodDefinition<_advclip_v1_WorkerMessage, _advclip_v1_CoordinatorMessage, _advclip_v1_WorkerMessage__Output, _advclip_v1_CoordinatorMessage__Output>
}
