import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { className, coopDataset, CoopDatasets, ignoredClassFolders } from '../../../services/io/class-names.ts';

describe('coopDataset', () => {
  test('knows the eight data sets by CoOp split-file name and common aliases', () => {
    for (const name of CoopDatasets) assert.equal(coopDataset(name), name);
    assert.equal(coopDataset('DTD'), 'DescribableTextures');
    assert.equal(coopDataset('flowers102'), 'OxfordFlowers');
    assert.equal(coopDataset('caltech-101'), 'Caltech101');
    assert.equal(coopDataset('oxford_pets'), 'OxfordPets');
    assert.equal(coopDataset('food-101'), 'Food101');
    assert.equal(coopDataset('shapes'), undefined);
  });
});

describe('className', () => {
  test('every data set: "_" becomes a space', () => {
    assert.equal(className(undefined, 'cat_face'), 'cat face');
    assert.equal(className('OxfordPets', 'american_pit_bull_terrier'), 'american pit bull terrier');
    assert.equal(className('Food101', 'apple_pie'), 'apple pie');
  });

  test('Caltech101: CoOp renames, and drops two folders', () => {
    assert.equal(className('Caltech101', 'Faces'), 'face');
    assert.equal(className('Caltech101', 'airplanes'), 'airplane');
    assert.equal(className('Caltech101', 'Motorbikes'), 'motorbike');
    assert.equal(className('Caltech101', 'Leopards'), 'leopard');
    assert.equal(className('Caltech101', 'dalmatian'), 'dalmatian');
    assert.deepEqual(ignoredClassFolders('Caltech101'), ['BACKGROUND_Google', 'Faces_easy']);
    assert.deepEqual(ignoredClassFolders('OxfordPets'), []);
    assert.equal(className('OxfordPets', 'Faces'), 'Faces');
  });

  test('UCF101: CamelCase folders split as CoOp does; split-file names unchanged', () => {
    assert.equal(className('UCF101', 'ApplyEyeMakeup'), 'Apply Eye Makeup');
    assert.equal(className('UCF101', 'Apply_Eye_Makeup'), 'Apply Eye Makeup');
    assert.equal(className('UCF101', 'YoYo'), 'Yo Yo');
  });

  test('SUN397: raw "/b/bakery/shop" folders become CoOp\'s "shop bakery"', () => {
    assert.equal(className('SUN397', '/b/bakery/shop'), 'shop bakery');
    assert.equal(className('SUN397', '/a/apartment_building/outdoor'), 'outdoor apartment building');
    assert.equal(className('SUN397', 'outdoor apartment_building'), 'outdoor apartment building');
  });

  test('idempotent, so split-file names (already converted) are safe to convert again', () => {
    fc.assert(
      fc.property(fc.constantFrom(undefined, ...CoopDatasets), fc.string(), (dataset, raw) => {
        const once = className(dataset, raw);
        assert.equal(className(dataset, once), once);
      }),
      { numRuns: 500 },
    );
  });
});
