// Original file: proto/advclip/v1/task.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Everything a worker needs to derive the same random numbers as a single
 * process: augmentation, dropout masks and PGD starts are functions of
 * (seed, step, round, sample index | class index), never of worker identity.
 */
export interface Seeds {
  'seed'?: (number | string | Long);
}

/**
 * Everything a worker needs to derive the same random numbers as a single
 * process: augmentation, dropout masks and PGD starts are functions of
 * (seed, step, round, sample index | class index), never of worker identity.
 */
export interface Seeds__Output {
  'seed': (number);
}
