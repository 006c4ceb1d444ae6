// Original file: proto/advclip/v1/coordinator.proto


export interface RunRequest {
  'run_id'?: (string);
}

export interface RunRequest__Output {
  'run_id': (string);
}
