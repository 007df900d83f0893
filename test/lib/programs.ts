import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROGRAMS_DIR } from './paths.js';

const BIN_ROOT = join(tmpdir(), 'ckpt-test-bin');
const CFLAGS = ['-O1', '-g', '-Wall'];
const built = new Map<string, string>();

/**
 * Compiles test/programs/NAME.c and returns the binary's path. The binary is
 * named NAME (so its comm is NAME) inside a directory keyed by the flags and
 * the mtimes of the source and of every header, so it is rebuilt only when
 * something changed.
 */
export function compile(name: string, extraFlags: string[] = []): string {
  const source = join(PROGRAMS_DIR, `${name}.c`);
  if (!existsSync(source)) throw new Error(`no test program ${source}`);
  const headers = readdirSync(PROGRAMS_DIR).filter((f) => f.endsWith('.h')).map((f) => join(PROGRAMS_DIR, f));
  const key = createHash('sha256')
    .update(JSON.stringify([name, CFLAGS, extraFlags, ...[source, ...headers].map((f) => [f, statSync(f).mtimeMs])]))
    .digest('hex')
    .slice(0, 16);

  const cached = built.get(key);
  if (cached) return cached;
  const dir = join(BIN_ROOT, key);
  const binary = join(dir, name);
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true });
    const partial = `${binary}.${process.pid}.partial`;
    const cc = spawnSync('cc', [...CFLAGS, ...extraFlags, '-o', partial, source], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc ${name}.c failed (${cc.status ?? cc.error}):\n${cc.stderr}`);
    renameSync(partial, binary); // atomic: a concurrent test run never runs a half-written binary
  }
  built.set(key, binary);
  return binary;
}
