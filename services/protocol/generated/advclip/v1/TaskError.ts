// Original file: proto/advclip/v1/task.proto

import type { Long } from '@grpc/proto-loader';

/**
 * The worker could not compute a task; its chunks go to other workers.
 */
export interface TaskError {
  'task_id'?: (string);
  'step'?: (number | string | Long);
  'round'?: (number);
  /**
   * An AdvclipError code (INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS, ...).
   */
  'code'?: (string);
  'message'?: (string);
}

/**
 * The worker could not compute a task; its chunks go to other workers.
 */
export interface TaskError__Output {
  'task_id': (string);
  'step': (number);
  'round': (number);
  /**
   * An AdvclipError code (INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS, ...).
   */
  'code': (string);
  'message': (string);
}
