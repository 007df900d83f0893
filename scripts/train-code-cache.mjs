#!/usr/bin/env node
// Train the CLI's V8 code caches (dist/bin/ckpt-cli*.cache, read by
// src/cli/loader.ts, named by src/cli/code-cache.ts): run the commands a user
// runs most on a real process, a `sleep` of ours, each run adding what it
// compiled to its command's cache (`dump`, `restore`), and the dumps and
// `show` to the cache the other commands share. Best effort: where ptrace is
// not allowed the commands fail, the caches hold less, and the CLI compiles
// the rest at each start as it would without a cache.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compileCli, cacheFileName, OWN_CACHE_COMMANDS } from '../dist/src/cli/code-cache.js';

const ckpt = path.resolve('dist/bin/ckpt.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-train-'));
const failed = [];

/** ckpt ARGS, adding to the command's own cache (`own`) or to the shared one. */
function run(cache, ...args) {
  const env = { ...process.env, CKPT_TRAIN_CODE_CACHE: cache === 'own' ? '1' : 'shared' };
  const r = spawnSync(process.execPath, [ckpt, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) failed.push(`ckpt ${args[0]}: ${(r.stderr || `exit ${r.status}`).trim().split('\n')[0]}`);
  return r.status === 0;
}

// Its own session, our child: it is reaped the moment it dies, so its pid is free for the
// restore. bash closes the fds that the build inherited, which ckpt could not dump.
const CLOSE_FDS = 'for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null; exec sleep 600';
const sleeper = spawn('bash', ['-c', CLOSE_FDS], { detached: true, stdio: 'ignore' });
let gone = false;
const exited = new Promise((resolve) => sleeper.on('exit', () => { gone = true; resolve(); }));
const within = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());
/** The restored sleep (or what a failed restore left of it): by pid, and only if that pid is still it. */
const isOurSleep = (pid) => {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1') === 'sleep\x00600\x00'; } catch { return false; }
};
// A dump -R of at least 16 MiB takes the path of the copy-on-write snapshot (src/dump/snapshot.ts):
// a bash that holds 24 MB in a variable, waiting to read a FIFO it holds open itself.
const fifo = path.join(work, 'fifo');
const BIG = `${CLOSE_FDS.replace(/; exec sleep 600$/, '')}; x=$(head -c 24000000 /dev/zero | tr '\\0' a); exec 3<>"$1"; echo ready; exec >/dev/null; read -t 600 -u 3`;
let big;
try {
  await new Promise((resolve, reject) => { sleeper.on('spawn', resolve); sleeper.on('error', reject); });
  const pid = String(sleeper.pid);
  if (spawnSync('mkfifo', [fifo]).status === 0) {
    big = spawn('bash', ['-c', BIG, 'bash', fifo], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const ready = await Promise.race([new Promise((resolve) => big.stdout.once('data', () => resolve(true))), within(10_000)]);
    if (ready) for (const cache of ['own', 'shared']) run(cache, 'dump', '-R', '-t', String(big.pid), '-D', path.join(work, `big-${cache}`), '-v');
    else failed.push('the 24 MB bash did not start');
  }
  for (const cache of ['own', 'shared']) run(cache, 'dump', '-R', '-t', pid, '-D', path.join(work, `left-${cache}`), '-v');
  run('shared', 'show', '-D', path.join(work, 'left-own'));
  if (run('own', 'dump', '-t', pid, '-D', path.join(work, 'image'), '-v')) {
    await Promise.race([exited, within(10_000)]);
    if (gone) run('own', 'restore', '-D', path.join(work, 'image'), '-d', '-v');
    else failed.push('the dumped sleep did not exit');
  }
} catch (e) {
  failed.push(e.message);
} finally {
  // Ours: the sleeper while it is our unreaped child; after that, only a pid that is still our sleep.
  // The big bash is our child until we reap it: its pid cannot be another's before.
  big?.kill('SIGKILL');
  if (!gone) sleeper.kill('SIGKILL');
  else if (isOurSleep(sleeper.pid)) process.kill(sleeper.pid, 'SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
}

// A cache V8 refuses is worse than none: it is read at every start for nothing. (A flag set
// while training, as a worker's --expose-gc, would make it one.)
const source = fs.readFileSync('dist/bin/ckpt-cli.js');
const sizes = [];
for (const name of [...OWN_CACHE_COMMANDS, undefined].map(cacheFileName)) {
  const cacheFile = `dist/bin/${name}`;
  const cached = fs.existsSync(cacheFile) ? fs.readFileSync(cacheFile) : undefined;
  const { cache } = compileCli(source, path.resolve('dist/bin/ckpt-cli.js'), cached);
  if (cache !== 'used') {
    fs.rmSync(cacheFile, { force: true });
    console.error(`train-code-cache: V8 ${cache === 'none' ? `got no ${name}` : `refuses the ${name} it made`}: ckpt compiles that code at each start`);
  } else {
    sizes.push(`${name} ${cached.length >> 10} KiB`);
  }
}
if (failed.length) console.error(`train-code-cache: ${failed.join('; ')}: the code caches (${sizes.join(', ')}) cover less, and ckpt starts slower`);
