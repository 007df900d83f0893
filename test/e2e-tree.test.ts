/**
 * Process trees: children and grandchildren with their pids and parents,
 * sessions and groups (an extra session, a group whose leader is gone, an
 * orphaned group), a zombie, a stopped child, a child with its own exit
 * signal, threads, memory shared MAP_SHARED and copy-on-write, a pipe with
 * bytes in flight between two processes.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  assertPass, cleanup, dumpAndRestore, dumpOk, killAll, makeWorkDir, reportedCounter, requestCheck, restoreInBackground, startChecked,
  startProgram, track, waitCounterAbove, waitFor, waitGone, whileRunning,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };
const AFTER_RESTORE = { timeoutMs: 60_000 };

interface Node { pid: number; ppid: number; pgid: number; sid: number; state: string; threads: number[] }

/** The tree under `root` as /proc shows it: pid, parent, group, session, state, tids. */
function readTree(root: number): Node[] {
  const out: Node[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const threads = readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
    out.push({ pid, state: f[0], ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]), threads });
    if (f[0] === 'Z') continue;
    for (const tid of threads) {
      const kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (kids) queue.push(...kids.split(' ').map(Number));
    }
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** Proportional set size of the tree's live processes, KiB: copy-on-write sharing counted once. */
function pss(tree: Node[]): number {
  return tree.filter((n) => n.state !== 'Z').reduce((sum, n) => {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${n.pid}/smaps_rollup`, 'utf8'));
    return sum + Number(m?.[1] ?? 0);
  }, 0);
}

describe('process trees', () => {
  test('tree.c: 3 levels, sessions, groups, zombie, stopped child, SIGUSR1 exit signal, threads, shared and copy-on-write memory, a pipe in flight', SLOW, async () => {
    const cowMib = 16;
    const { dir, pid } = await startChecked('tree', [String(cowMib)], ['-pthread']);
    const before = readTree(pid);
    for (const n of before) track(n.pid, 'tree');
    assert.equal(before.length, 8, `the tree: ${JSON.stringify(before)}`);
    assert.ok(before.some((n) => n.state === 'Z'), 'no zombie');
    assert.ok(before.some((n) => n.state === 'T'), 'no stopped child');
    assert.ok(before.some((n) => n.threads.length === 4), 'no process with 4 threads');
    assert.ok(new Set(before.map((n) => n.sid)).size >= 2, 'no second session');
    const pssBefore = pss(before);
    const report = await requestCheck(dir);
    assertPass(report);

    const image = makeWorkDir('img');
    const t0 = performance.now();
    await dumpOk(pid, image);
    const dumpMs = performance.now() - t0;
    const pagesBytes = statSync(join(image, 'pages.img')).size;
    for (const n of before) await waitGone(n.pid);
    const t1 = performance.now();
    const restore = restoreInBackground(image);
    const afterReport = await whileRunning(restore, requestCheck(dir, AFTER_RESTORE));
    const restoreMs = performance.now() - t1;
    assertPass(afterReport);
    const restored = readTree(pid);
    const shape = (t: Node[]) => t.map((n) => ({ ...n, ppid: n.pid === pid ? 0 : n.ppid, state: n.state === 'Z' || n.state === 'T' ? n.state : 'live' }));
    // The root's parent and outer session and group are the restoring ckpt's.
    const outer = (t: Node[]) => t.map((n) => ({ ...n, sid: n.sid === t.find((r) => r.pid === pid)!.sid ? -1 : n.sid, pgid: n.pgid === t.find((r) => r.pid === pid)!.pgid ? -1 : n.pgid }));
    assert.deepEqual(outer(shape(restored)), outer(shape(before)));
    const pssAfter = pss(restored);
    // Copy-on-write memory is saved once and comes back shared.
    assert.ok(pagesBytes < (cowMib + 12) * 1024 * 1024, `pages.img holds ${pagesBytes} bytes for ${cowMib} MiB shared copy-on-write by 8 processes`);
    assert.ok(pssAfter < pssBefore * 1.5 + 4096, `Pss ${pssBefore} KiB before, ${pssAfter} KiB after`);
    console.log(`# tree.c: dump ${dumpMs.toFixed(0)} ms, restore (to a PASS) ${restoreMs.toFixed(0)} ms; pages.img ${(pagesBytes / 1048576).toFixed(1)} MiB; Pss ${pssBefore} KiB before, ${pssAfter} KiB after`);

    // The counters of all move on; then the pipe's bytes and U's SIGUSR1.
    const later = await whileRunning(restore, requestCheck(dir, AFTER_RESTORE));
    assertPass(later);
    assert.ok(Number(/counters=(\d+)/.exec(later)?.[1]) > Number(/counters=(\d+)/.exec(afterReport)?.[1]), `${afterReport} → ${later}`);
    assert.ok(reportedCounter(later) > reportedCounter(report));
    writeFileSync(join(dir, 'final'), '');
    assertPass(await whileRunning(restore, requestCheck(dir, AFTER_RESTORE)));
  });

  test('churn-tree.c: dumped while it forks children (each with a thread) and creates threads in a tight loop, it restores and PASSes', SLOW, async () => {
    const { dir, pid } = await startChecked('churn-tree', [], ['-pthread']);
    const { restore, report } = await dumpAndRestore(pid, dir);
    await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
    const later = await whileRunning(restore, requestCheck(dir, AFTER_RESTORE));
    assertPass(later);
    assert.ok(Number(/children=(\d+)/.exec(later)?.[1]) > Number(/children=(\d+)/.exec(report)?.[1]), `no child was born after the restore: ${report} → ${later}`);
  });

  test('a shell pipeline (sh -c "yes | cat | dd ... > out") dumped mid-way finishes after restore with its output complete and correct', SLOW, async () => {
    const dir = makeWorkDir('pipeline');
    const out = join(dir, 'out');
    const total = 100_000_000;
    const { pid } = startProgram('/bin/sh', ['-c', `yes | cat | dd bs=256 count=${total / 256} iflag=fullblock status=none > ${out}`]);
    const size = () => { try { return statSync(out).size; } catch { return 0; } };
    await waitFor('the pipeline to write 8 MB', () => (size() >= 8_000_000 ? true : undefined), 30_000);
    const tree = readTree(pid);
    for (const n of tree) track(n.pid);
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    const atDump = size();
    assert.ok(atDump < total, `the pipeline had finished before the dump (${atDump} bytes)`);
    for (const n of tree) await waitGone(n.pid);
    const restore = restoreInBackground(image);
    const done = await restore.exited;
    assert.equal(done.status, 0, `sh exited with ${done.status}: ${done.stderr}`);
    assert.equal(size(), total, `out holds ${size()} bytes (${atDump} at the dump)`);
    const want = Buffer.from('y\n'.repeat(1 << 19));
    const buf = Buffer.alloc(want.length);
    const fd = openSync(out, 'r');
    try {
      for (let at = 0; at < total; at += buf.length) {
        const n = readSync(fd, buf, 0, buf.length, at);
        assert.equal(buf.compare(want, 0, n, 0, n), 0, `out differs from "y\\n"... in [${at}, ${at + n})`);
      }
    } finally {
      closeSync(fd);
    }
    console.log(`# pipeline: ${tree.length} processes, dumped at ${atDump} of ${total} bytes`);
  });

  test('mux.c: a pty pair held across a tree (master in the parent, the slave the controlling terminal of a child\'s session, a foreground group, /dev/tty) comes back connected', SLOW, async () => {
    const { dir, pid } = await startChecked('mux');
    for (const n of readTree(pid)) track(n.pid, 'mux');
    const { restore } = await dumpAndRestore(pid, dir);
    assertPass(await whileRunning(restore, requestCheck(dir, AFTER_RESTORE)));
  });

  test('memfd-map.c: a memfd held open by the parent and mapped MAP_SHARED by it and its child is one object again', SLOW, async () => {
    const { dir, pid } = await startChecked('memfd-map');
    for (const n of readTree(pid)) track(n.pid, 'memfd-map');
    const { restore } = await dumpAndRestore(pid, dir);
    assertPass(await whileRunning(restore, requestCheck(dir, AFTER_RESTORE)));
    const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    assert.match(maps, /\/memfd:ckpt-map \(deleted\)/, 'the mapping keeps its memfd name');
  });

  test('tree.c with --leave-running: every process gets a copy-on-write snapshot, the tree runs on intact, and the image restores once it is gone', SLOW, async () => {
    const { dir, pid } = await startChecked('tree', ['24'], ['-pthread']);
    const before = readTree(pid);
    for (const n of before) track(n.pid, 'tree');
    const image = makeWorkDir('img');
    await dumpOk(pid, image, '--leave-running');
    const running = readTree(pid);
    assert.deepEqual(running.map((n) => [n.pid, n.state === 'Z' || n.state === 'T' ? n.state : 'live']), before.map((n) => [n.pid, n.state === 'Z' || n.state === 'T' ? n.state : 'live']), 'the tree after dump -R');
    for (const n of running) assert.equal(Number(/^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${n.pid}/status`, 'utf8'))?.[1]), 0, `pid ${n.pid} is still traced`);
    assertPass(await requestCheck(dir));
    assert.ok(statSync(join(image, 'pages.img')).size < 36 * 1024 * 1024, 'copy-on-write memory was saved once from the snapshots too');
    await killAll();
    for (const n of before) await waitGone(n.pid);
    const restore = restoreInBackground(image);
    assertPass(await whileRunning(restore, requestCheck(dir, AFTER_RESTORE)));
  });

  test('prefork.c: a child\'s epoll watching an inherited eventfd, and a file shared by a child that restore handles before its owner (a session leader), come back shared', SLOW, async () => {
    const { dir, pid } = await startChecked('prefork');
    for (const n of readTree(pid)) track(n.pid, 'prefork');
    const { restore } = await dumpAndRestore(pid, dir);
    assertPass(await whileRunning(restore, requestCheck(dir, AFTER_RESTORE)));
  });
});

