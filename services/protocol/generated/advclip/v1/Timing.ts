// Original file: proto/advclip/v1/task.proto


/**
 * Where the worker's time went, for advclip_step_seconds{phase}.
 */
export interface Timing {
  'compute_ms'?: (number | string);
  /**
   * Waiting for an adapter / delta version before computing.
   */
  'fetch_ms'?: (number | string);
  'decode_ms'?: (number | string);
  'encode_ms'?: (number | string);
  /**
   * Worker wall-clock from receiving the task to sending the result.
   */
  'total_ms'?: (number | string);
}

/**
 * Where the worker's time went, for advclip_step_seconds{phase}.
 */
export interface Timing__Output {
  'compute_ms': (number);
  /**
   * Waiting for an adapter / delta version before computing.
   */
  'fetch_ms': (number);
  'decode_ms': (number);
  'encode_ms': (number);
  /**
   * Worker wall-clock from receiving the task to sending the result.
   */
  'total_ms': (number);
}
