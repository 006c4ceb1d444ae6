/**
 * Writes the few-shot tasks in ImageFolder layout,
 * <out>/<task>/{train,test}/<class>/NNNN.png, every image from a task seed
 * (disjoint from pretraining's by held-out.ts):
 *   npx tsx scripts/synth/make-tasks.ts [--out data] [--train 20] [--test 30] [--size 64] [--tasks shapes-colours,colours]
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { SPLITS, taskSeed, type Split } from './held-out.ts';
import { renderScene } from './render.ts';
import { createRng } from './rng.ts';
import { sampleScene } from './scene.ts';
import { TASKS, type TaskSpec } from './tasks.ts';

export interface MakeTasksOptions {
  readonly out: string;
  readonly perClass: Readonly<Record<Split, number>>;
  readonly size: number;
  readonly tasks: readonly TaskSpec[];
}

export const DEFAULT_MAKE_TASKS_OPTIONS: MakeTasksOptions = {
  out: 'data', perClass: { train: 20, test: 30 }, size: 64, tasks: TASKS,
};

export interface WrittenTask {
  readonly name: string;
  readonly classes: readonly string[];
  readonly images: Readonly<Record<Split, number>>;
}

/** Replaces each task's directory under `out` with freshly rendered images. */
export async function makeTasks(options: MakeTasksOptions = DEFAULT_MAKE_TASKS_OPTIONS): Promise<WrittenTask[]> {
  const written: WrittenTask[] = [];
  for (const task of options.tasks) {
    const taskDir = join(options.out, task.name);
    rmSync(taskDir, { recursive: true, force: true });
    for (const split of SPLITS) {
      for (const [classIndex, cls] of task.classes.entries()) {
        const dir = join(taskDir, split, cls.name);
        mkdirSync(dir, { recursive: true });
        for (let i = 0; i < options.perClass[split]; i++) {
          const rng = createRng(taskSeed(task.index, split, classIndex, i));
          const pixels = renderScene(sampleScene(rng, cls.constraints), options.size);
          await sharp(pixels, { raw: { width: options.size, height: options.size, channels: 3 } })
            .png({ compressionLevel: 9, adaptiveFiltering: true })
            .toFile(join(dir, `${String(i).padStart(4, '0')}.png`));
        }
      }
    }
    written.push({ name: task.name, classes: task.classes.map((c) => c.name), images: { ...options.perClass } });
  }
  return written;
}

async function main(): Promise<void> {
  const d = DEFAULT_MAKE_TASKS_OPTIONS;
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: d.out },
      train: { type: 'string', default: String(d.perClass.train) },
      test: { type: 'string', default: String(d.perClass.test) },
      size: { type: 'string', default: String(d.size) },
      tasks: { type: 'string', default: d.tasks.map((t) => t.name).join(',') },
    },
  });
  const names = values.tasks.split(',');
  const unknown = names.filter((n) => !TASKS.some((t) => t.name === n));
  if (unknown.length > 0) throw new Error(`make-tasks: unknown task(s) ${unknown.join(', ')}; known: ${TASKS.map((t) => t.name).join(', ')}`);
  const written = await makeTasks({
    out: values.out,
    perClass: { train: Number(values.train), test: Number(values.test) },
    size: Number(values.size),
    tasks: TASKS.filter((t) => names.includes(t.name)),
  });
  for (const task of written) console.log(JSON.stringify({ event: 'task_written', out: values.out, ...task }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
