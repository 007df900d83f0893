/**
 * The ckpt executable (dist/bin/ckpt.js, CommonJS, behind the sh prelude that
 * scripts/bundle.mjs puts first). It compiles the command line's bundle
 * (dist/bin/ckpt-cli.js) with the V8 code cache the build trained
 * (cli/code-cache.ts, scripts/train-code-cache.mjs): the bytecode of every
 * function a dump or a restore runs, which node would otherwise compile anew
 * in each process, one function at a time as each is first called. Without a
 * cache of this bundle's, or one V8 refuses (another V8, other flags), the
 * bundle compiles as any script does.
 *
 * With CKPT_TRAIN_CODE_CACHE=1 (the build's training runs) the cache is
 * written again at exit, holding what this process compiled as well; with
 * CKPT_TRAIN_CODE_CACHE=shared, the cache of the commands without one of
 * their own is, whatever the command.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { compileCli, cacheFileOf, cacheFileName } from './code-cache.js';
import type { LoaderMarks } from './startup.js';
import { uptimeMs } from '../clock.js';

const start = uptimeMs();
const dir = fileURLToPath(new URL('.', import.meta.url));
const bundle = `${dir}ckpt-cli.js`;
const training = process.env.CKPT_TRAIN_CODE_CACHE;
const cacheFile = `${dir}${cacheFileName(training === 'shared' ? undefined : process.argv[2])}`;

const source = fs.readFileSync(bundle);
let cached: Buffer | undefined;
try { cached = fs.readFileSync(cacheFile); } catch { /* none: compile */ }
const { script, cache } = compileCli(source, bundle, cached);
const marks: LoaderMarks = { start, cache };
(globalThis as { [k: symbol]: unknown })[Symbol.for('ckpt.loader')] = marks;

if (training === '1' || training === 'shared') {
  delete process.env.CKPT_TRAIN_CODE_CACHE;
  process.on('exit', () => {
    const tmp = `${cacheFile}.${process.pid}`;
    fs.writeFileSync(tmp, cacheFileOf(source, script));
    fs.renameSync(tmp, cacheFile);
  });
}

const cli = { exports: {} };
(script.runInThisContext() as (...args: unknown[]) => void)(cli.exports, createRequire(bundle), cli, bundle, dir);
