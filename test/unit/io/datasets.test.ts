import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { AdvclipError } from '../../../services/core/errors.ts';
import { loadDataset } from '../../../services/io/datasets.ts';
import type { FewShotDataset } from '../../../services/io/dataset.ts';

let tmp: string;
before(async () => {
  tmp = await realpath(await mkdtemp(join(tmpdir(), 'advclip-datasets-')));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
/** A fresh directory per case, so cases cannot see each other's files. */
async function fresh(name: string): Promise<string> {
  const dir = join(tmp, `${name}-${counter++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Writes a small real image (PNG or JPEG by extension) at root/relPath. */
async function image(root: string, relPath: string): Promise<void> {
  const path = join(root, relPath);
  await mkdir(dirname(path), { recursive: true });
  const img = sharp({ create: { width: 4, height: 3, channels: 3, background: { r: 10, g: 120, b: 240 } } });
  await (/\.jpe?g$/i.test(path) ? img.jpeg() : img.png()).toFile(path);
}

async function images(root: string, relPaths: readonly string[]): Promise<void> {
  for (const p of relPaths) await image(root, p);
}

const isError = (code: string, ...texts: string[]) => (e: unknown) =>
  e instanceof AdvclipError && e.code === code && texts.every((t) => e.message.includes(t));

const relative = (ds: FewShotDataset, split: 'train' | 'test' | 'val') =>
  (ds[split] ?? []).map(({ path, label }) => [path.slice(ds.root.length + 1), label]);

describe('ImageFolder layout', () => {
  test('class names from sorted folders with _ → space, labels by folder, files sorted by name', async () => {
    const root = await fresh('folder');
    await images(root, [
      'train/dog/b.jpg',
      'train/dog/a.png',
      'train/cat_face/z.JPEG',
      'train/cat_face/m.jpeg',
      'test/dog/t1.png',
      'test/cat_face/t0.png',
    ]);
    await writeFile(join(root, 'train/dog/notes.txt'), 'not an image');
    await image(root, 'train/dog/.hidden.png');
    const ds = await loadDataset({ root });
    assert.deepEqual(ds.classNames, ['cat face', 'dog']);
    assert.equal(ds.root, root);
    assert.deepEqual(relative(ds, 'train'), [
      ['train/cat_face/m.jpeg', 0],
      ['train/cat_face/z.JPEG', 0],
      ['train/dog/a.png', 1],
      ['train/dog/b.jpg', 1],
    ]);
    assert.deepEqual(relative(ds, 'test'), [
      ['test/cat_face/t0.png', 0],
      ['test/dog/t1.png', 1],
    ]);
    assert.equal(ds.val, undefined);
  });

  test('val/ is the test set when there is no test/, and a separate split when there is', async () => {
    const onlyVal = await fresh('val');
    await images(onlyVal, ['train/a/1.png', 'val/a/2.png']);
    const ds = await loadDataset({ root: onlyVal });
    assert.deepEqual(relative(ds, 'test'), [['val/a/2.png', 0]]);
    assert.equal(ds.val, undefined);

    const both = await fresh('both');
    await images(both, ['train/a/1.png', 'val/a/2.png', 'test/a/3.png']);
    const ds2 = await loadDataset({ root: both });
    assert.deepEqual(relative(ds2, 'val'), [['val/a/2.png', 0]]);
    assert.deepEqual(relative(ds2, 'test'), [['test/a/3.png', 0]]);
  });

  test('CoOp ImageNet: images/train, images/val and classnames.txt mapping folder → name', async () => {
    const root = await fresh('imagenet');
    await images(root, ['images/train/n02/x.JPEG', 'images/train/n01/y.JPEG', 'images/val/n01/v.JPEG', 'images/val/n02/w.JPEG']);
    await writeFile(join(root, 'classnames.txt'), 'n01 tench\nn02 great white shark\n\n');
    const ds = await loadDataset({ root, name: 'ImageNet' });
    assert.deepEqual(ds.classNames, ['tench', 'great white shark']);
    assert.equal(ds.root, join(root, 'images'));
    assert.deepEqual(relative(ds, 'test'), [
      ['val/n01/v.JPEG', 0],
      ['val/n02/w.JPEG', 1],
    ]);

    await writeFile(join(root, 'classnames.txt'), 'n01 tench\n');
    await assert.rejects(loadDataset({ root }), isError('INVALID_ARGUMENT', 'classnames.txt', '"n02"'));
  });

  test('Caltech101 folders: BACKGROUND_Google and Faces_easy left out, Faces → face as CoOp', async () => {
    const root = await fresh('caltech');
    const classes = ['BACKGROUND_Google', 'Faces', 'Faces_easy', 'Leopards', 'accordion'];
    await images(root, classes.flatMap((c) => [`train/${c}/1.jpg`, `test/${c}/2.jpg`]));
    const ds = await loadDataset({ root, name: 'caltech-101' });
    assert.deepEqual(ds.classNames, ['face', 'leopard', 'accordion']);
    assert.equal(ds.name, 'caltech-101');
    assert.ok(ds.train.every(({ path }) => !/BACKGROUND|Faces_easy/.test(path)));
  });

  test('train and test with different classes fail naming the folder and the class', async () => {
    const root = await fresh('mismatch');
    await images(root, ['train/a/1.png', 'train/b/1.png', 'test/a/1.png', 'test/c/1.png']);
    await assert.rejects(loadDataset({ root }), isError('INVALID_ARGUMENT', join(root, 'test'), '"b"', '"c"'));
  });

  test('an empty class folder fails naming it', async () => {
    const root = await fresh('empty');
    await images(root, ['train/a/1.png', 'test/a/1.png', 'test/b/1.png']);
    await mkdir(join(root, 'train/b'));
    await writeFile(join(root, 'train/b/readme.txt'), 'no images here');
    await assert.rejects(loadDataset({ root }), isError('INVALID_ARGUMENT', join(root, 'train/b'), 'no images'));
  });

  test('a missing root is NOT_FOUND; a root with no layout says what was expected', async () => {
    const missing = join(tmp, 'does-not-exist');
    await assert.rejects(loadDataset({ root: missing }), isError('NOT_FOUND', missing));
    const bare = await fresh('bare');
    await assert.rejects(loadDataset({ root: bare }), isError('NOT_FOUND', bare, 'train/<class>/'));
    const trainOnly = await fresh('train-only');
    await images(trainOnly, ['train/a/1.png']);
    await assert.rejects(loadDataset({ root: trainOnly }), isError('INVALID_ARGUMENT', 'neither test/ nor val/'));
  });
});

type Row = [string, number, string];
/** CoOp's data root with oxford_pets/images/… and its split file; returns the paths. */
async function petsLayout(split?: { train?: Row[]; val?: Row[]; test?: Row[] }) {
  const dataRoot = await fresh('coop');
  const datasetDir = join(dataRoot, 'oxford_pets');
  const imageDir = join(datasetDir, 'images');
  await images(imageDir, ['abyssinian_1.jpg', 'abyssinian_2.jpg', 'american_bulldog_1.jpg', 'american_bulldog_2.png']);
  const splitFile = join(datasetDir, 'split_zhou_OxfordPets.json');
  const body = {
    train: [
      ['abyssinian_1.jpg', 0, 'abyssinian'],
      ['american_bulldog_1.jpg', 1, 'american_bulldog'],
    ],
    val: [['abyssinian_2.jpg', 0, 'abyssinian']],
    test: [['american_bulldog_2.png', 1, 'american_bulldog']],
    ...split,
  };
  await writeFile(splitFile, JSON.stringify(body));
  return { dataRoot, datasetDir, imageDir, splitFile };
}

describe('CoOp split-file layout', () => {
  test('reads train/val/test with labels and CoOp class names, from any of the three roots', async () => {
    const { dataRoot, datasetDir, imageDir, splitFile } = await petsLayout();
    for (const root of [dataRoot, datasetDir, imageDir]) {
      const ds = await loadDataset({ root, splitFile });
      assert.equal(ds.name, 'OxfordPets');
      assert.equal(ds.root, imageDir, `root ${root}`);
      assert.deepEqual(ds.classNames, ['abyssinian', 'american bulldog']);
      assert.deepEqual(relative(ds, 'train'), [
        ['abyssinian_1.jpg', 0],
        ['american_bulldog_1.jpg', 1],
      ]);
      assert.deepEqual(relative(ds, 'val'), [['abyssinian_2.jpg', 0]]);
      assert.deepEqual(relative(ds, 'test'), [['american_bulldog_2.png', 1]]);
    }
  });

  test('without --split-file, the one split_zhou_*.json in the root is used', async () => {
    const { datasetDir, imageDir } = await petsLayout();
    const ds = await loadDataset({ root: datasetDir });
    assert.equal(ds.name, 'OxfordPets');
    assert.equal(ds.root, imageDir);
    assert.equal(ds.test.length, 1);
  });

  test('UCF101 and SUN397 names as CoOp gives them, generic names for an unknown data set', async () => {
    const root = await fresh('ucf');
    await images(root, ['a.jpg', 'b.jpg']);
    const splitFile = join(root, 'split_zhou_UCF101.json');
    const rows: Row[] = [
      ['a.jpg', 0, 'Apply_Eye_Makeup'],
      ['b.jpg', 1, 'YoYo'],
    ];
    await writeFile(splitFile, JSON.stringify({ train: rows, test: rows }));
    assert.deepEqual((await loadDataset({ root, splitFile })).classNames, ['Apply Eye Makeup', 'Yo Yo']);
    assert.deepEqual((await loadDataset({ root, splitFile, name: 'mine' })).classNames, ['Apply Eye Makeup', 'YoYo']);
  });

  test('a label out of range fails naming the split file and the entry', async () => {
    const { dataRoot, splitFile } = await petsLayout({ test: [['american_bulldog_2.png', 2, 'x']] });
    await assert.rejects(loadDataset({ root: dataRoot, splitFile }), isError('INVALID_ARGUMENT', splitFile, 'test[0]', 'label 2', 'out of range'));
    const neg = await petsLayout({ train: [['abyssinian_1.jpg', -1, 'abyssinian']] });
    await assert.rejects(loadDataset({ root: neg.dataRoot, splitFile: neg.splitFile }), isError('INVALID_ARGUMENT', 'train[0]', 'label -1'));
    const gap = await petsLayout({ train: [['abyssinian_1.jpg', 1, 'abyssinian'], ['abyssinian_2.jpg', 1, 'abyssinian']] });
    await assert.rejects(loadDataset({ root: gap.dataRoot, splitFile: gap.splitFile }), isError('INVALID_ARGUMENT', 'class 0 has no train image'));
  });

  test('a class name that disagrees with its label fails', async () => {
    const { dataRoot, splitFile } = await petsLayout({ test: [['american_bulldog_2.png', 1, 'beagle']] });
    await assert.rejects(loadDataset({ root: dataRoot, splitFile }), isError('INVALID_ARGUMENT', 'test[0]', '"beagle"', '"american_bulldog"'));
  });

  test('paths escaping the image directory are rejected: .., absolute, symlink out', async () => {
    const outsideFile = join(tmp, 'secret.png');
    await image(tmp, 'secret.png');
    for (const relPath of ['../../secret.png', '../images/../../../secret.png', outsideFile, '']) {
      const { dataRoot, splitFile } = await petsLayout({ test: [[relPath, 1, 'american_bulldog']] });
      await assert.rejects(
        loadDataset({ root: dataRoot, splitFile }),
        isError('INVALID_ARGUMENT', 'outside the data root', 'test[0]'),
        `path ${JSON.stringify(relPath)}`,
      );
    }
    const { dataRoot, imageDir, splitFile } = await petsLayout({ test: [['link.png', 1, 'american_bulldog']] });
    await symlink(outsideFile, join(imageDir, 'link.png'));
    await assert.rejects(loadDataset({ root: dataRoot, splitFile }), isError('INVALID_ARGUMENT', 'outside the data root', '"link.png"'));
  });

  test('a symlink inside the image directory is followed to its real path', async () => {
    const { dataRoot, imageDir, splitFile } = await petsLayout({ test: [['sub/alias.jpg', 1, 'american_bulldog']] });
    await mkdir(join(imageDir, 'sub'));
    await symlink(join(imageDir, 'american_bulldog_1.jpg'), join(imageDir, 'sub/alias.jpg'));
    const ds = await loadDataset({ root: dataRoot, splitFile });
    assert.equal(ds.test[0].path, join(imageDir, 'american_bulldog_1.jpg'));
  });

  test('a listed image that does not exist is NOT_FOUND naming it', async () => {
    const { dataRoot, splitFile } = await petsLayout({ test: [['gone.jpg', 1, 'american_bulldog']] });
    await assert.rejects(loadDataset({ root: dataRoot, splitFile }), isError('NOT_FOUND', 'gone.jpg', 'test[0]'));
  });

  test('unreadable split files: missing is NOT_FOUND, bad JSON or bad rows are DATA_LOSS, all naming the file', async () => {
    const { dataRoot, datasetDir } = await petsLayout();
    const missing = join(datasetDir, 'split_zhou_Nope.json');
    await assert.rejects(loadDataset({ root: dataRoot, splitFile: missing }), isError('NOT_FOUND', missing));
    const cases: [string, string][] = [
      ['{"train": [', 'not valid JSON'],
      ['[1, 2]', 'expected an object'],
      ['{"train": [], "val": []}', '"test"'],
      ['{"train": [["a.jpg", "0", "x"]], "test": []}', 'train[0]'],
    ];
    for (const [i, [text, why]] of cases.entries()) {
      const file = join(datasetDir, `split_zhou_Bad${i}.json`);
      await writeFile(file, text);
      await assert.rejects(loadDataset({ root: dataRoot, splitFile: file, name: 'OxfordPets' }), isError('DATA_LOSS', file, why));
    }
  });
});
