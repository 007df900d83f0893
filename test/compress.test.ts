/**
 * dump --compress zstd|lz4: page data in compressed 8 MiB chunks, restored
 * by ckpt itself (decompress, check the CRCs, process_vm_writev).
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  appendingPython,
  assertCleanError,
  assertConsecutive,
  assertPass,
  assertSuccess,
  ckpt,
  cleanup,
  dumpOk,
  isRunning,
  killAll,
  makeWorkDir,
  readAppendedLines,
  readCounter,
  reportedCounter,
  requestCheck,
  restoreInBackground,
  waitFor,
  waitGone,
  whileRunning,
  startChecked,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };
const AFTER_RESTORE = { timeoutMs: 60_000 };

const pagesSize = (image: string) => statSync(join(image, 'pages.img')).size;

describe('dump --compress', () => {
  for (const codec of ['zstd', 'lz4']) {
    test(`mem.c dumped with --compress ${codec} restores and PASSes`, SLOW, async () => {
      const { dir, pid } = await startChecked('mem');
      const image = makeWorkDir('img');
      await dumpOk(pid, image, '--compress', codec);
      const saved = readCounter(dir);
      // 64 MiB of random pages and more: several chunks, written by the worker.
      assert.ok(pagesSize(image) > 64 * 1024 * 1024, `pages.img of ${pagesSize(image)} bytes`);
      const show = ckpt(['show', '-D', image]);
      assert.equal(show.status, 0, show.stderr);

      const restore = restoreInBackground(image);
      const report = await whileRunning(restore, requestCheck(dir, AFTER_RESTORE));
      assertPass(report);
      assert.ok(reportedCounter(report) >= saved, `counter went back: ${saved} at dump, then ${report}`);
      process.kill(pid, 'SIGKILL');
      await restore.exited;
      await waitGone(pid);
    });
  }

  test('an unmodified python3 makes a smaller pages.img compressed than plain, and carries on', SLOW, async () => {
    // Two alike pythons: one dumped plain, one compressed.
    const other = makeWorkDir('py');
    const { pid: otherPid } = appendingPython(other);
    const dir = makeWorkDir('py');
    const { pid } = appendingPython(dir);
    for (const d of [other, dir]) await waitFor('python3 to write 10 lines', () => (readAppendedLines(d).length >= 10 ? true : undefined), 10_000);
    const plain = makeWorkDir('img');
    await dumpOk(otherPid, plain);
    const packed = makeWorkDir('img');
    await dumpOk(pid, packed, '--compress', 'zstd');
    const [a, b] = [pagesSize(plain), pagesSize(packed)];
    assert.ok(b < a, `compressed pages.img ${b} bytes, plain ${a}`);
    const atDump = readAppendedLines(dir);

    const restore = restoreInBackground(packed);
    const grown = await whileRunning(restore, waitFor('python3 to append 10 more lines',
      () => { const l = readAppendedLines(dir); return l.length >= atDump.length + 10 ? l : undefined; }, 30_000));
    assertConsecutive(grown);
    process.kill(pid, 'SIGKILL');
    await restore.exited;
    await waitGone(pid);
  });

  test('ckpt mem and show --cmdline read a compressed image as they read a plain one', SLOW, async () => {
    const { pid } = await startChecked('inspect-secret', ['--marker']);
    const plain = join(makeWorkDir('img'), 'plain');
    const packed = join(makeWorkDir('img'), 'zstd');
    await dumpOk(pid, plain, '-R');
    await dumpOk(pid, packed, '-R', '--compress', 'zstd');
    const search = (image: string) => {
      const r = ckpt(['mem', '-D', image, '--pid', String(pid), '--search', `ckpt-secret-${pid}`, '--json']);
      assertSuccess(r, 'ckpt mem --search');
      return (JSON.parse(r.stdout) as { matches: { addr: string }[] }).matches.map((m) => m.addr);
    };
    const found = search(packed);
    assert.ok(found.length > 0, 'the secret was not found in the compressed image');
    assert.deepEqual(found, search(plain));
    const cmdline = (image: string) => ckpt(['show', '-D', image, '--cmdline']).stdout;
    assert.match(cmdline(packed), /--marker/);
    assert.equal(cmdline(packed), cmdline(plain));
  });

  test('a corrupted compressed chunk is refused with one line, and nothing is left running', SLOW, async () => {
    const { pid } = await startChecked('mem');
    const image = makeWorkDir('img');
    await dumpOk(pid, image, '--compress', 'zstd');
    // Damage the middle of the first chunk (it starts after the 4096-byte header page).
    const fd = openSync(join(image, 'pages.img'), 'r+');
    try {
      const at = 4096 + 1024 * 1024;
      const b = Buffer.alloc(64);
      readSync(fd, b, 0, b.length, at);
      for (let i = 0; i < b.length; i++) b[i] ^= 0x5a;
      writeSync(fd, b, 0, b.length, at);
    } finally {
      closeSync(fd);
    }
    const r = ckpt(['restore', '-D', image]);
    assertCleanError(r, /bad image .*pages\.img: .*offset \d+/);
    assert.equal(isRunning(pid), false, `pid ${pid} runs after a refused restore`);
  });
});
