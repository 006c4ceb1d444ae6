// Original file: proto/advclip/v1/run.proto

import type { TrainSpec as _advclip_v1_TrainSpec, TrainSpec__Output as _advclip_v1_TrainSpec__Output } from '../../advclip/v1/TrainSpec.ts';
import type { EvaluationSpec as _advclip_v1_EvaluationSpec, EvaluationSpec__Output as _advclip_v1_EvaluationSpec__Output } from '../../advclip/v1/EvaluationSpec.ts';

export interface RunSpec {
  /**
   * The coordinator's RUN_SPEC_VERSION; a worker of another version refuses
   * the run (0: a coordinator that predates this field).
   */
  'spec_version'?: (number);
  /**
   * CLIPModel directory, absolute on the coordinator; a worker may use its own.
   */
  'model'?: (string);
  /**
   * SHA-256 (hex) of the model's weights; a worker with other weights refuses the run.
   */
  'model_sha256'?: (string);
  /**
   * Data set directory, absolute on the coordinator; a worker may use its own.
   */
  'data_root'?: (string);
  /**
   * CoOp split_zhou_<Name>.json; empty: none.
   */
  'split_file'?: (string);
  /**
   * CoOp data set name for its class-name rules; empty: from the folder.
   */
  'dataset_name'?: (string);
  /**
   * SHA-256 (hex) of the K-shot training set (file hashes and labels).
   */
  'train_set_sha256'?: (string);
  /**
   * Class prompt template, "{}" standing for the class name.
   */
  'template'?: (string);
  /**
   * Training images per class.
   */
  'shots'?: (number);
  'train'?: (_advclip_v1_TrainSpec | null);
  'evaluation'?: (_advclip_v1_EvaluationSpec | null);
}

export interface RunSpec__Output {
  /**
   * The coordinator's RUN_SPEC_VERSION; a worker of another version refuses
   * the run (0: a coordinator that predates this field).
   */
  'spec_version': (number);
  /**
   * CLIPModel directory, absolute on the coordinator; a worker may use its own.
   */
  'model': (string);
  /**
   * SHA-256 (hex) of the model's weights; a worker with other weights refuses the run.
   */
  'model_sha256': (string);
  /**
   * Data set directory, absolute on the coordinator; a worker may use its own.
   */
  'data_root': (string);
  /**
   * CoOp split_zhou_<Name>.json; empty: none.
   */
  'split_file': (string);
  /**
   * CoOp data set name for its class-name rules; empty: from the folder.
   */
  'dataset_name': (string);
  /**
   * SHA-256 (hex) of the K-shot training set (file hashes and labels).
   */
  'train_set_sha256': (string);
  /**
   * Class prompt template, "{}" standing for the class name.
   */
  'template': (string);
  /**
   * Training images per class.
   */
  'shots': (number);
  'train': (_advclip_v1_TrainSpec__Output | null);
  'evaluation': (_advclip_v1_EvaluationSpec__Output | null);
}
