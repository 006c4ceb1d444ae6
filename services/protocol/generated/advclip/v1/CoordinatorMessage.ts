// Original file: proto/advclip/v1/coordinator.proto

import type { Task as _advclip_v1_Task, Task__Output as _advclip_v1_Task__Output } from '../../advclip/v1/Task.ts';
import type { Drain as _advclip_v1_Drain, Drain__Output as _advclip_v1_Drain__Output } from '../../advclip/v1/Drain.ts';
import type { AdapterVersion as _advclip_v1_AdapterVersion, AdapterVersion__Output as _advclip_v1_AdapterVersion__Output } from '../../advclip/v1/AdapterVersion.ts';

export interface CoordinatorMessage {
  'task'?: (_advclip_v1_Task | null);
  'drain'?: (_advclip_v1_Drain | null);
  'adapter_version'?: (_advclip_v1_AdapterVersion | null);
  'body'?: "task"|"drain"|"adapter_version";
}

export interface CoordinatorMessage__Output {
  'task'?: (_advclip_v1_Task__Output | null);
  'drain'?: (_advclip_v1_Drain__Output | null);
  'adapter_version'?: (_advclip_v1_AdapterVersion__Output | null);
  'body'?: "task"|"drain"|"adapter_version";
}
