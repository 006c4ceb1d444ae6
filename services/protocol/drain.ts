/**
 * Why a coordinator drains its workers (the `reason` of the Drain message).
 * A worker exits 0 only when the run is finished; when the coordinator stops
 * before that (SIGTERM, `docker compose restart coordinator`, an error), the
 * worker exits non-zero so that its supervisor (compose `restart:
 * on-failure`, a Kubernetes Deployment) starts it again and it rejoins the
 * coordinator once that has resumed from its checkpoint.
 */
export const DrainReasons = {
  runFinished: 'run finished',
  coordinatorStopping: 'the coordinator stops before the run ends; it resumes from its checkpoint',
} as const;
