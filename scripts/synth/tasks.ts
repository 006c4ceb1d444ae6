/**
 * The few-shot downstream tasks. Class names are the caption words joined by
 * underscores, so "a photo of a {name with spaces}" is a zero-shot prompt in
 * the pretraining captions' own language.
 */
import type { ColourName, ShapeName } from './attributes.ts';
import { HELD_OUT_COMBOS, SEEN_TEXTURES } from './held-out.ts';
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

const ALL_COLOURS: readonly ColourName[] = ['red', 'orange', 'yellow', 'green', 'cyan', 'blue', 'purple', 'pink', 'brown', 'white'];

const colours: TaskSpec = {
  name: 'colours',
  index: 2,
  description:
    'The colour of the main object (ten colours, jittered hues) whatever its shape, texture, size and position, on any '
    + 'background; in 60% of images a small distractor object of another colour competes for attention.',
  classes: ALL_COLOURS.map((colour): TaskClass => ({
    name: colour,
    constraints: {
      main: { colours: [colour], textures: ['solid', 'striped', 'dotted', 'checkered', 'gradient', 'ringed'], sizes: ['medium', 'large'] },
      second: { colours: ALL_COLOURS.filter((c) => c !== colour), sizes: ['small'] },
      secondProbability: 0.6,
      backgrounds: ['plain', 'striped', 'noisy', 'grid', 'gradient'],
    },
  })),
};

// index 1 was a fill-texture task, dropped: the shipped model learnt colour far better than texture
// (zero-shot at chance); its index stays retired so no seed is ever reused.
export const TASKS: readonly TaskSpec[] = [shapesColours, colours];
