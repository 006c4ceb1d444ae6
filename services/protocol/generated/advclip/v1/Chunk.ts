// Original file: proto/advclip/v1/task.proto


/**
 * A fixed run of consecutive minibatch positions. Chunks are the unit of
 * assignment and of deterministic reduction.
 */
export interface Chunk {
  /**
   * Position of the chunk in the minibatch (0-based); the reduction order.
   */
  'chunk_index'?: (number);
  /**
   * Data-set sample indices, in minibatch order (class indices for TEXT_GRAD).
   */
  'sample_indices'?: (number)[];
}

/**
 * A fixed run of consecutive minibatch positions. Chunks are the unit of
 * assignment and of deterministic reduction.
 */
export interface Chunk__Output {
  /**
   * Position of the chunk in the minibatch (0-based); the reduction order.
   */
  'chunk_index': (number);
  /**
   * Data-set sample indices, in minibatch order (class indices for TEXT_GRAD).
   */
  'sample_indices': (number)[];
}
