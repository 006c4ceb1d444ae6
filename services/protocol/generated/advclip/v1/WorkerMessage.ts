// Original file: proto/advclip/v1/coordinator.proto

import type { Hello as _advclip_v1_Hello, Hello__Output as _advclip_v1_Hello__Output } from '../../advclip/v1/Hello.ts';
import type { Heartbeat as _advclip_v1_Heartbeat, Heartbeat__Output as _advclip_v1_Heartbeat__Output } from '../../advclip/v1/Heartbeat.ts';
import type { TaskResult as _advclip_v1_TaskResult, TaskResult__Output as _advclip_v1_TaskResult__Output } from '../../advclip/v1/TaskResult.ts';
import type { TaskError as _advclip_v1_TaskError, TaskError__Output as _advclip_v1_TaskError__Output } from '../../advclip/v1/TaskError.ts';

export interface WorkerMessage {
  'hello'?: (_advclip_v1_Hello | null);
  'heartbeat'?: (_advclip_v1_Heartbeat | null);
  'result'?: (_advclip_v1_TaskResult | null);
  'error'?: (_advclip_v1_TaskError | null);
  'body'?: "hello"|"heartbeat"|"result"|"error";
}

export interface WorkerMessage__Output {
  'hello'?: (_advclip_v1_Hello__Output | null);
  'heartbeat'?: (_advclip_v1_Heartbeat__Output | null);
  'result'?: (_advclip_v1_TaskResult__Output | null);
  'error'?: (_advclip_v1_TaskError__Output | null);
  'body'?: "hello"|"heartbeat"|"result"|"error";
}
