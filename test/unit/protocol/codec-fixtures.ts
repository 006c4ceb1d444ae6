/** The task codec tests' common ground: a small run's shapes, an envelope, float filler, and the Work stream's own serializers. */
import { coordinatorService } from '../../../services/protocol/proto-loader.ts';
import type { RoundShapes } from '../../../services/protocol/task-codec.ts';

export const shapes: RoundShapes = {
  delta: [2, 2, 3],
  textFeatures: [3, 4],
  vision: new Map([['v.A', [1, 2]], ['v.B', [2, 1]]]),
  text: new Map([['t.A', [1, 2]], ['t.B', [2, 1]]]),
};
export const envelope = { taskId: '3.1.7', adapterVersion: 4, adapterSha256: 'a'.repeat(64), seed: 1, deadlineMs: 1000 };
/** n floats v, v + 1, … */
export const f = (n: number, v = 0.5) => Float32Array.from({ length: n }, (_, i) => v + i);
export const work = coordinatorService().Work;
