/**
 * Compiling the command line's bundle (dist/bin/ckpt-cli.js) with the code
 * cache the build trained (ckpt-cli.cache): used by the executable
 * (cli/loader.ts), and by scripts/train-code-cache.mjs to check that the
 * cache it made is one V8 takes.
 *
 * The cache file is the bundle's build id (32 hex digits, from the bundle's
 * first line) then V8's cached data. V8 checks its version, its flags and the
 * source's length, not the source: the id ties the cache to this very bundle.
 */
import vm from 'node:vm';

export type CacheUse = 'used' | 'rejected' | 'none';

const BUILD_LINE = /^\/\/ ckpt build ([0-9a-f]{32})\n/;
const ID_BYTES = 32;

export function buildIdOf(source: string): string | undefined {
  return BUILD_LINE.exec(source)?.[1];
}

/** The bundle compiled as a CommonJS module's function, with the cache if it is this bundle's. */
export function compileCli(source: string, filename: string, cacheFile: Buffer | undefined): { script: vm.Script; cache: CacheUse } {
  const id = buildIdOf(source);
  const cachedData = id !== undefined && cacheFile?.subarray(0, ID_BYTES).toString('latin1') === id ? cacheFile.subarray(ID_BYTES) : undefined;
  const wrapper = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new vm.Script(wrapper, { filename, cachedData });
  return { script, cache: cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'used' };
}

/** The cache file's contents for `source` (which has a build id), from what `script` has compiled so far. */
export function cacheFileOf(source: string, script: vm.Script): Buffer {
  const id = buildIdOf(source);
  if (id === undefined) throw new Error('the CLI bundle has no build id on its first line');
  return Buffer.concat([Buffer.from(id, 'latin1'), script.createCachedData()]);
}
