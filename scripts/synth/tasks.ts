/**
 * The few-shot downstream tasks. Class names are the caption words joined by
 * underscores, so "a photo of a {name with spaces}" is a zero-shot prompt in
 * the pretraining captions' own language.
 */
import type { ColourName, ShapeName, TextureName } from './attributes.ts';
import { HELD_OUT_COMBOS, HELD_OUT_TEXTURES, SEEN_TEXTURES } from './held-out.ts';
import type { SceneConstraints } from './scene.ts';

export interface TaskClass {
  /** directory name: words joined by underscores */
  readonly name: string;
  readonly constraints: SceneConstraints;
  /** why zero-shot may struggle with it, if it is held out of pretraining */
  readonly heldOut?: string;
}

export interface TaskSpec {
  readonly name: string;
  /** fixed forever: it is part of every image seed of the task */
  readonly index: number;
  readonly description: string;
  readonly classes: readonly TaskClass[];
}

const TASK_COLOURS: readonly ColourName[] = ['red', 'orange', 'pink', 'purple', 'blue'];
const TASK_SHAPES: readonly ShapeName[] = ['star', 'heart'];

const shapesColours: TaskSpec = {
  name: 'shapes-colours',
  index: 0,
  description:
    'Fine-grained colour × shape: {red, orange, pink, purple, blue} × {star, heart}, with neighbouring hues, '
    + 'seen fill textures, any size, position and background, and in 30% of images a distractor object '
    + 'whose colour and shape are outside the class set.',
  classes: TASK_SHAPES.flatMap((shape) => TASK_COLOURS.map((colour): TaskClass => {
    const heldOut = HELD_OUT_COMBOS.some((c) => c.colour === colour && c.shape === shape);
    return {
      name: `${colour}_${shape}`,
      heldOut: heldOut ? `no ${colour} ${shape} is ever drawn in pretraining` : undefined,
      constraints: {
        main: { shapes: [shape], colours: [colour], textures: ['solid', 'striped', 'dotted', 'gradient'] },
        second: {
          shapes: ['circle', 'square', 'triangle', 'cross', 'diamond', 'hexagon', 'pentagon'],
          colours: ['yellow', 'green', 'cyan', 'brown', 'white'],
          textures: SEEN_TEXTURES,
        },
        secondProbability: 0.3,
        backgrounds: ['plain', 'striped', 'noisy', 'grid', 'gradient'],
      },
    };
  })),
};

const textures: TaskSpec = {
  name: 'textures',
  index: 1,
  description:
    'The fill texture of one large shape (circle, square, triangle, heart, hexagon or pentagon, any colour) '
    + 'on a plain or gradient background; four of the ten textures never appear in pretraining.',
  classes: (['solid', 'striped', 'dotted', 'checkered', 'gradient', 'ringed', ...HELD_OUT_TEXTURES] as TextureName[])
    .map((texture): TaskClass => ({
      name: `${texture}_shape`,
      heldOut: HELD_OUT_TEXTURES.includes(texture) ? `"${texture}" is never drawn or captioned in pretraining` : undefined,
      constraints: {
        main: {
          shapes: ['circle', 'square', 'triangle', 'heart', 'hexagon', 'pentagon'],
          textures: [texture],
          sizes: ['large'],
        },
        secondProbability: 0,
        backgrounds: ['plain', 'gradient'],
      },
    })),
};

export const TASKS: readonly TaskSpec[] = [shapesColours, textures];
