/**
 * SIGINT, SIGTERM and SIGHUP to a running `ckpt dump` or `ckpt restore` stop it
 * cleanly (src/cli/engine-run.ts, src/fault.ts checkAbort): one line naming the
 * signal, exit status 128+N, and
 *  - dump: the process runs on untraced and intact (same maps and signal state:
 *    no scratch mapping left), no DIR and no DIR.partial;
 *  - restore: nothing of it left running, the image byte for byte the same.
 * The signal is sent as soon as ckpt -vv reports a step (so at a known moment):
 * early (freeze), in the remote-call window, and before the page copy of a
 * 64 MiB process (the copy checks between batches). ckpt waits PAUSE_MS after
 * each step it reports (CKPT_STEP_PAUSE_MS, src/fault.ts), so that the signal
 * lands before its next check even when what follows takes a few ms (a
 * restore's last steps after its pages took ~6 ms, less than this test takes
 * to see the line and send the signal).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  assertPass, ckptBackground, cleanup, dumpOk, killAll, makeWorkDir, requestCheck, restoreDetachedOk, startProgram,
  waitGone, waitReady, type BackgroundCkpt,
} from './lib/index.js';
import { addressSpaceAndFds, diffDigests, leftovers, problemsOf, signalState, treeDigest, uniqueBinary } from './lib/safety.js';
import { waitFor } from './lib/wait.js';

after(cleanup);
const SLOW = { timeout: 60_000 };
const PAUSE = { CKPT_STEP_PAUSE_MS: '300' };
const SIGNO = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type Sig = keyof typeof SIGNO;

interface Program { dir: string; pid: number; comm: string }

async function startChecked(name: string): Promise<Program> {
  const binary = uniqueBinary(name);
  const dir = makeWorkDir(name);
  const { pid } = startProgram(binary, [dir]);
  await waitReady(dir, { pid });
  assertPass(await requestCheck(dir));
  return { dir, pid, comm: basename(binary) };
}

/** Sends `sig` to the background ckpt as soon as its -vv output reports `step`. */
async function signalAt(bg: BackgroundCkpt, step: string, sig: Sig): Promise<void> {
  let err = '';
  bg.child.stderr!.on('data', (s: string) => (err += s));
  await waitFor(`ckpt to report ${step}`, () => (new RegExp(`: ${step} \\d`).test(err) ? true : undefined), 30_000, 1);
  process.kill(bg.pid, sig);
}

function assertInterrupted(r: { status: number | null; stderr: string }, sig: Sig, what: string): void {
  assert.equal(r.status, 128 + SIGNO[sig], `${what}: exit status ${r.status}, stderr ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l && !/^ckpt: (dump|restore): \S+ [\d.]+ ms$/.test(l));
  assert.equal(lines.length, 1, `${what}: not one line: ${JSON.stringify(lines)}`);
  assert.match(lines[0], new RegExp(`^ckpt: interrupted by ${sig}: `), what);
}

describe('a signal to ckpt dump: it stops, puts the process back, leaves no image', () => {
  let p: Program;
  let layout = '';
  let signals = '';
  before(async () => {
    p = await startChecked('mem');
    layout = addressSpaceAndFds(p.pid);
    signals = signalState(p.pid);
  });
  after(() => killAll());

  const moments: [string, Sig, string[]][] = [
    ['freeze', 'SIGINT', []], ['collect', 'SIGTERM', []], ['select', 'SIGINT', []], ['select', 'SIGHUP', ['-R']],
    ['fork', 'SIGTERM', ['-R']], ['select', 'SIGINT', ['--compress', 'lz4']],
  ];
  for (const [step, sig, flags] of moments) {
    test(`${sig} after the ${step} step of ckpt dump ${flags.join(' ')}`.trimEnd(), SLOW, async () => {
      const image = join(makeWorkDir('img'), 'image');
      const bg = ckptBackground(['dump', '-vv', '-t', String(p.pid), '-D', image, ...flags], PAUSE);
      await signalAt(bg, step, sig);
      const r = await bg.exited;
      assertInterrupted(r, sig, `dump, ${sig} after ${step}`);
      assert.ok(!existsSync(image) && !existsSync(`${image}.partial`), 'an image or DIR.partial was left');
      assert.equal(signalState(p.pid), signals, 'the signal state changed');
      assert.equal(addressSpaceAndFds(p.pid), layout, 'the maps or fds changed');
      assert.deepEqual(await problemsOf(p.pid, p.dir), []);
    });
  }
});

describe('a signal to ckpt restore: it stops, kills what it made, leaves the image as it was', () => {
  let p: Program;
  let image = '';
  let digest = new Map<string, string>();
  before(async () => {
    p = await startChecked('mem');
    image = join(makeWorkDir('img'), 'image');
    await dumpOk(p.pid, image);
    digest = treeDigest(image);
  });
  after(() => killAll());

  for (const [step, sig] of [['load', 'SIGINT'], ['clone', 'SIGTERM'], ['pages', 'SIGHUP']] as [string, Sig][]) {
    test(`${sig} after the ${step} step of ckpt restore`, SLOW, async () => {
      await waitGone(p.pid);
      const bg = ckptBackground(['restore', '-d', '-vv', '-D', image], PAUSE);
      await signalAt(bg, step, sig);
      const r = await bg.exited;
      assertInterrupted(r, sig, `restore, ${sig} after ${step}`);
      await waitGone(p.pid);
      assert.deepEqual(await leftovers({ args: [p.dir, image], comms: [p.comm] }), []);
      assert.deepEqual(diffDigests(digest, treeDigest(image)), []);
    });
  }

  test('the image restores and PASSes afterwards', SLOW, async () => {
    assert.equal(restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid')), p.pid);
    assertPass(await requestCheck(p.dir, { timeoutMs: 60_000 }));
  });
});
