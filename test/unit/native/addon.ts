/** The native tests' common ground: the addon, or why they skip; running with its kernels installed. */
import { installNativeKernels, loadNativeAddon, type NativeAddon } from '../../../services/core/native-kernels.ts';
import { missing } from '../../helpers/requires.ts';

function tryLoad(): { addon: NativeAddon | null; skip: string | false } {
  try {
    return { addon: loadNativeAddon(), skip: false };
  } catch (err) {
    const skip = missing('the native addon', (err as Error).message, 'apt-get install libdnnl-dev, then node scripts/build-native.mjs --strict');
    return { addon: null, skip };
  }
}

export const { addon, skip } = tryLoad();

/** f with the native kernels installed on the wasm backend; wasm's own are put back after, even when f throws. */
export function withNative<T>(f: () => T): T {
  const restore = installNativeKernels(addon!);
  try {
    return f();
  } finally {
    restore();
  }
}

/** The same for an async f (the kernels stay installed until it settles). */
export async function withNativeAsync<T>(f: () => Promise<T>): Promise<T> {
  const restore = installNativeKernels(addon!);
  try {
    return await f();
  } finally {
    restore();
  }
}

/** f on wasm's own kernels, then with the native ones (the same inputs). */
export const onBoth = <T>(f: () => T): { wasm: T; native: T } => ({ wasm: f(), native: withNative(f) });
