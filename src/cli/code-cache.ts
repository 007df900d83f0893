/**
 * Compiling the command line's bundle (dist/bin/ckpt-cli.js) with the code
 * cache the build trained: used by the executable (cli/loader.ts), and by
 * scripts/train-code-cache.mjs to check that the caches it made are ones V8
 * takes.
 *
 * `dump` and `restore` have a cache each (ckpt-cli.dump.cache,
 * ckpt-cli.restore.cache), holding only the code that command runs; every
 * other command shares ckpt-cli.cache. V8 deserializes the whole of a cache
 * before the first line runs: a dump's start read the restore's code too,
 * ~1 ms of a ~4 ms load.
 *
 * V8 checks its own version tag, its flags and the source's length, but not
 * the source's text nor its data's integrity: corrupt data can crash it, and
 * node patch releases may share a version tag yet not a heap layout. So the
 * cache file starts with a line saying what it was made for, and its data is
 * offered to V8 only if all of it matches: the node version and arch, the CRC
 * of the bundle's text and the CRC of the data itself. Other V8 flags are
 * left to V8's own check, which refuses the data (cachedDataRejected): asking
 * for its tag here would load node:v8, 1-4 ms of every command.
 */
import vm from 'node:vm';
import { crc32 } from 'node:zlib';

export type CacheUse = 'used' | 'rejected' | 'none';

/** The commands that have a code cache of their own. */
export const OWN_CACHE_COMMANDS = ['dump', 'restore'];

/** The name of the cache file (beside the bundle) for `command`, the CLI's first argument. */
export function cacheFileName(command: string | undefined): string {
  return command !== undefined && OWN_CACHE_COMMANDS.includes(command) ? `ckpt-cli.${command}.cache` : 'ckpt-cli.cache';
}

interface Header { node: string; arch: string; source: number; data: number }

const wrap = (source: string) => `(function (exports, require, module, __filename, __dirname) {${source}\n})`;

// The CRCs are taken of bytes: of a string, zlib's crc32 encodes it first (~0.7 ms for the
// bundle here, against ~0.2 for its bytes), and the value is the same.
function headerFor(source: Buffer, data: Uint8Array): Header {
  return { node: process.version, arch: process.arch, source: crc32(source), data: crc32(data) };
}

/** The data of `file` if it was made for `source` by this node, intact; undefined otherwise. */
function dataFor(source: Buffer, file: Buffer | undefined): Buffer | undefined {
  if (!file) return undefined;
  const nl = file.indexOf(10);
  if (nl < 0 || nl > 512) return undefined;
  let h: Partial<Header>;
  try { h = JSON.parse(file.subarray(0, nl).toString('latin1')) as Partial<Header>; } catch { return undefined; }
  const data = file.subarray(nl + 1);
  const want = headerFor(source, data);
  const same = h.node === want.node && h.arch === want.arch && h.source === want.source && h.data === want.data;
  return same ? data : undefined;
}

/**
 * The bundle (`source`, its file's bytes) compiled as a CommonJS module's
 * function, with the cache if it was made for it. The file is read as bytes
 * and decoded here: readFileSync(file, 'utf8') took ~0.6 ms more for the bundle.
 */
export function compileCli(source: Buffer, filename: string, cacheFile: Buffer | undefined): { script: vm.Script; cache: CacheUse } {
  const cachedData = dataFor(source, cacheFile);
  const script = new vm.Script(wrap(source.toString('utf8')), { filename, cachedData });
  return { script, cache: cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'used' };
}

/** The cache file's contents for `source` (the bundle's bytes), from what `script` has compiled so far. */
export function cacheFileOf(source: Buffer, script: vm.Script): Buffer {
  const data = script.createCachedData();
  return Buffer.concat([Buffer.from(`${JSON.stringify(headerFor(source, data))}\n`, 'latin1'), data]);
}
