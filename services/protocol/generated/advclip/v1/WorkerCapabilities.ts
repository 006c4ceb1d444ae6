// Original file: proto/advclip/v1/coordinator.proto


export interface WorkerCapabilities {
  /**
   * Compute backend in use: "tensorflow-gpu", "tensorflow", "wasm", "cpu".
   */
  'backend'?: (string);
  /**
   * Device description, e.g. "cpu" or "cuda:0 NVIDIA A100".
   */
  'device'?: (string);
  /**
   * Cores (or parallel lanes) the worker will use.
   */
  'cores'?: (number);
  /**
   * SHA-256 (hex) of the frozen CLIP weights the worker loaded; must equal
   * the coordinator's.
   */
  'model_sha256'?: (string);
  /**
   * Human-readable name (host/pod name), shown in metrics and logs.
   */
  'worker_name'?: (string);
  /**
   * advclip version of the worker.
   */
  'version'?: (string);
  /**
   * The RunSpec version (run.proto) the worker reads; the coordinator admits
   * only its own (0: a worker that predates the RunSpec message).
   */
  'run_spec_version'?: (number);
}

export interface WorkerCapabilities__Output {
  /**
   * Compute backend in use: "tensorflow-gpu", "tensorflow", "wasm", "cpu".
   */
  'backend': (string);
  /**
   * Device description, e.g. "cpu" or "cuda:0 NVIDIA A100".
   */
  'device': (string);
  /**
   * Cores (or parallel lanes) the worker will use.
   */
  'cores': (number);
  /**
   * SHA-256 (hex) of the frozen CLIP weights the worker loaded; must equal
   * the coordinator's.
   */
  'model_sha256': (string);
  /**
   * Human-readable name (host/pod name), shown in metrics and logs.
   */
  'worker_name': (string);
  /**
   * advclip version of the worker.
   */
  'version': (string);
  /**
   * The RunSpec version (run.proto) the worker reads; the coordinator admits
   * only its own (0: a worker that predates the RunSpec message).
   */
  'run_spec_version': (number);
}
