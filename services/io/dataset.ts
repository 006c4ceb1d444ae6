/**
 * What a few-shot data set is once loaded, whichever layout it came from
 * (datasets.ts picks the loader): class names and labelled image paths per
 * split. Pixels are read later, by whoever needs them.
 */
export interface LabeledImage {
  /** absolute path of the image file, inside FewShotDataset.root */
  readonly path: string;
  /** class index into FewShotDataset.classNames */
  readonly label: number;
}

export interface FewShotDataset {
  readonly name: string;
  /** the words for each class as they go into the prompt, indexed by label */
  readonly classNames: readonly string[];
  readonly train: readonly LabeledImage[];
  readonly val?: readonly LabeledImage[];
  readonly test: readonly LabeledImage[];
  /** real path of the directory that holds every image of the data set */
  readonly root: string;
}
