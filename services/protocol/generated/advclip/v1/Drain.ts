// Original file: proto/advclip/v1/coordinator.proto


/**
 * The coordinator is draining: finish the tasks in flight, take no more.
 */
export interface Drain {
  'reason'?: (string);
}

/**
 * The coordinator is draining: finish the tasks in flight, take no more.
 */
export interface Drain__Output {
  'reason': (string);
}
