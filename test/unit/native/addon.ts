/** The native tests' common ground: the addon, or why they skip. */
import { loadNativeAddon, type NativeAddon } from '../../../services/core/native-kernels.ts';

function tryLoad(): { addon: NativeAddon | null; skip: string | false } {
  try {
    return { addon: loadNativeAddon(), skip: false };
  } catch (err) {
    const skip = `native addon unavailable: ${(err as Error).message}`;
    console.log(`# ${skip}`);
    return { addon: null, skip };
  }
}

export const { addon, skip } = tryLoad();
