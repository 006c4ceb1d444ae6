/**
 * Class-name conventions of the eight few-shot data sets of the paper, as
 * CoOp and CLIP-LoRA build their prompts, so "a photo of a {}." gets the
 * same words here as in their code.
 *
 * CoOp's split files already carry the converted names (Caltech101's
 * "face", UCF101's "Apply_Eye_Makeup", SUN397's "outdoor apartment_building"),
 * and CoOp/CLIP-LoRA replace "_" by " " when they build prompts. The rules
 * below are idempotent, so they apply equally to a split file's names and to
 * raw folder names of an ImageFolder copy of the same data set.
 */

export const CoopDatasets = [
  'ImageNet',
  'Caltech101',
  'OxfordPets',
  'OxfordFlowers',
  'Food101',
  'SUN397',
  'DescribableTextures',
  'UCF101',
] as const;
export type CoopDataset = (typeof CoopDatasets)[number];

/** Other names people use for the same data sets (compared case-insensitively, ignoring "-" and "_"). */
const aliases: Readonly<Record<string, CoopDataset>> = {
  imagenet: 'ImageNet',
  caltech101: 'Caltech101',
  oxfordpets: 'OxfordPets',
  pets: 'OxfordPets',
  oxfordflowers: 'OxfordFlowers',
  flowers102: 'OxfordFlowers',
  food101: 'Food101',
  sun397: 'SUN397',
  describabletextures: 'DescribableTextures',
  dtd: 'DescribableTextures',
  ucf101: 'UCF101',
};

/** The known data set a name refers to, or undefined for a data set of one's own (generic rules). */
export function coopDataset(name: string): CoopDataset | undefined {
  return aliases[name.toLowerCase().replace(/[-_\s]/g, '')];
}

/** Caltech101 folders CoOp leaves out: the clutter class and the duplicate face class. */
const caltechIgnored: readonly string[] = ['BACKGROUND_Google', 'Faces_easy'];
// a Map, not an object literal: a folder named like an Object.prototype key ("toString") is a class too
const caltechRenamed: ReadonlyMap<string, string> = new Map([
  ['airplanes', 'airplane'],
  ['Faces', 'face'],
  ['Leopards', 'leopard'],
  ['Motorbikes', 'motorbike'],
]);

/** Class folders of a raw data set copy that are not classes (only Caltech101 has any). */
export function ignoredClassFolders(dataset: CoopDataset | undefined): readonly string[] {
  return dataset === 'Caltech101' ? caltechIgnored : [];
}

/** The words used in the prompt for a class, from its raw name (split-file name or folder name). */
export function className(dataset: CoopDataset | undefined, raw: string): string {
  let name = raw;
  if (dataset === 'Caltech101') name = caltechRenamed.get(name) ?? name;
  // SUN397 folders are "/b/bakery/shop": drop the letter, most general word first
  if (dataset === 'SUN397' && name.includes('/')) {
    name = name.split('/').filter(Boolean).slice(1).reverse().join(' ');
  }
  name = name.replace(/_/g, ' ');
  // UCF101 folders are CamelCase ("ApplyEyeMakeup"); CoOp splits before every capital
  if (dataset === 'UCF101') name = name.replace(/(?<=\S)(?=[A-Z])/g, ' ');
  return name;
}
