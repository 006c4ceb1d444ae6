/** The part of madge 8's API the import test uses (it ships no types). */
declare module 'madge' {
  interface MadgeResult {
    /** file → the local files it imports, paths relative to baseDir */
    obj(): Record<string, string[]>;
    /** each circle as the files along it */
    circular(): string[][];
  }
  interface MadgeConfig {
    baseDir?: string;
    fileExtensions?: string[];
    tsConfig?: string;
    excludeRegExp?: RegExp[];
  }
  export default function madge(path: string | string[], config?: MadgeConfig): Promise<MadgeResult>;
}
