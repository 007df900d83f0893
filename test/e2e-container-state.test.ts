/**
 * What a container owns besides its processes, on real namespaces made by
 * ckpt run: the namespace check of a tree, the uts names, and SysV IPC (shm
 * with contents, semaphores, queues with their messages) saved and brought
 * back with the same ids in a fresh ipc namespace, segments attached at their
 * addresses and still one object.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { CkptError } from '../src/errors.js';
import { checkTreeNamespaces } from '../src/kinds/namespaces.js';
import { containerJson, dumpContainer, encodeContainer, loadContainer } from '../src/kinds/container.js';
import { formatImage } from '../src/show.js';
import { parseRecordList } from '../src/image/index.js';
import { registry } from '../src/kinds/index.js';
import { parseNsLink } from '../src/proc/ns.js';
import { cleanup, compile, killAll, makeWorkDir, REPO_ROOT, track, waitFor } from './lib/index.js';
import { runDetached } from './lib/run.js';

afterEach(() => killAll());
after(cleanup);

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CkptError, String(e));
    assert.equal(e.code, 'UNSUPPORTED');
    return e.message;
  }
  assert.fail('expected a refusal');
}

/** A process started by a shell that exits at once: an orphan, in the namespaces `prefix` makes. */
function startOrphanCmd(cmd: string[], comm: string): number {
  const r = spawnSync('sh', ['-c', '"$@" </dev/null >/dev/null 2>&1 & echo $!', 'sh', ...cmd], { encoding: 'utf8' });
  const pid = Number.parseInt(r.stdout, 10);
  assert.ok(pid > 0, r.stderr);
  track(pid, comm);
  return pid;
}

const childrenOf = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);

describe('namespaces of a tree', () => {
  test('parseNsLink', () => {
    assert.equal(parseNsLink('pid', 'pid:[4026531836]'), 4026531836n);
    assert.equal(parseNsLink('uts', 'pid:[4026531836]'), undefined);
    assert.equal(parseNsLink('mnt', 'garbage'), undefined);
  });

  test('a container init is recognised, with in-container pids; trees it cannot restore are refused by pid and kind', async () => {
    const dir = makeWorkDir('ns');
    const init = await runDetached(dir, ['sh', '-c', 'sleep 60 & sleep 61 & wait'], 'sh');
    const kids = await waitFor('two children', () => (childrenOf(init).length === 2 ? childrenOf(init) : undefined), 10_000);
    const t = checkTreeNamespaces(init, [init, ...kids]);
    assert.equal(t.container, true);
    assert.equal(t.inner.get(init)!.pid, 1);
    assert.deepEqual(kids.map((k) => t.inner.get(k)!.pid).sort(), [2, 3]);

    // Not its init: a process inside the container as the root.
    assert.match(refusal(() => checkTreeNamespaces(kids[0], [kids[0]])), new RegExp(`pid ${kids[0]} is in another pid namespace than ckpt's but is not its init`));
    // A tree spanning two containers.
    const other = await runDetached(dir, ['sleep', '60'], 'sleep');
    assert.match(refusal(() => checkTreeNamespaces(init, [init, other])), new RegExp(`pid ${other} is in another pid namespace than pid ${init}`));
    // A plain process of the host is fine alone, and not with a container.
    const plain = startOrphanCmd(['sleep', '60'], 'sleep');
    assert.equal(checkTreeNamespaces(plain, [plain]).container, false);
    assert.match(refusal(() => checkTreeNamespaces(plain, [plain, init])), new RegExp(`pid ${init} is in another pid namespace than pid ${plain}`));
    // Namespaces ckpt does not make: network, and a uts namespace of its own outside a container.
    const netns = startOrphanCmd(['unshare', '-n', 'sleep', '60'], 'sleep');
    await waitFor('unshare -n to exec', () => (readFileSync(`/proc/${netns}/comm`, 'utf8').trim() === 'sleep' ? true : undefined), 10_000);
    assert.match(refusal(() => checkTreeNamespaces(netns, [netns])), new RegExp(`pid ${netns} is in another network namespace than ckpt's`));
    const utsns = startOrphanCmd(['unshare', '-u', 'sleep', '60'], 'sleep');
    await waitFor('unshare -u to exec', () => (readFileSync(`/proc/${utsns}/comm`, 'utf8').trim() === 'sleep' ? true : undefined), 10_000);
    assert.match(refusal(() => checkTreeNamespaces(utsns, [utsns])), new RegExp(`pid ${utsns} is in another uts namespace than ckpt's, and is not a container init`));
  });
});

describe('uts and SysV IPC of a container', () => {
  /** The container of sysvipc.c: objects made, W/ready written. */
  async function startMaker(): Promise<{ pid: number; ready: Record<string, string> }> {
    const dir = makeWorkDir('sysvipc');
    const pid = await runDetached(dir, [compile('sysvipc'), 'make', dir], 'sysvipc');
    const line = await waitFor('sysvipc ready', () => { try { return readFileSync(join(dir, 'ready'), 'utf8'); } catch { return undefined; } }, 10_000);
    return { pid, ready: Object.fromEntries(line.trim().split(' ').map((kv) => kv.split('='))) };
  }

  test('the CONTAINER record round-trips what the namespaces hold', async () => {
    const { pid, ready } = await startMaker();
    const c = dumpContainer(pid);
    assert.deepEqual(c.uts, { hostname: 'ckpt-box', domainname: 'ckpt-dom' });
    assert.deepEqual(c.ipc.shm.map((s) => s.fields.id), [Number(ready.shmA), Number(ready.shmB)]);
    assert.equal(c.ipc.shm[0].fields.key, 0x0c4b7001);
    assert.equal(c.ipc.shm[0].data[4096 + 5], (4096 + 5) * 7 + 3 & 0xff);
    assert.equal(c.ipc.shm[1].data.subarray(0, 9).toString(), 'private-B');
    assert.deepEqual(c.ipc.sem.map((s) => [s.fields.id, s.values]), [[Number(ready.sem), [5, 0, 42]]]);
    assert.deepEqual(c.ipc.msg[0].messages.map((m) => [m.mtype, m.text.length]), [[1n, 3], [7n, 5], [2n, 1000]]);
    assert.equal(c.ipc.msg[0].fields.id, Number(ready.msg));
    // Reading took no message out.
    assert.equal(dumpContainer(pid).ipc.msg[0].messages.length, 3);
    const back = loadContainer(parseRecordList(encodeContainer(c), registry));
    assert.deepEqual(back, c);
    // What ckpt show prints of it.
    const text = formatImage({ image: {}, processes: [], container: containerJson(c) as never });
    assert.match(text, /^container: namespaces=0x2c020000 init_pid=\d+ hostname=ckpt-box domainname=ckpt-dom$/m);
    assert.match(text, new RegExp(`^  shm: id=${ready.shmA} key=0x0c4b7001 uid=0 gid=0 mode=0640 size=12388 nattch=1$`, 'm'));
    assert.match(text, /^  sem: id=\d+ key=0x0c4b7002 uid=0 gid=0 mode=0600 values=\[5,0,42\]$/m);
    assert.match(text, /^  msg queue: id=\d+ key=0x0c4b7003 uid=0 gid=0 mode=0620 qbytes=16384 messages=3 bytes=1008$/m);
  });

  test('restored in a fresh ipc namespace: same ids, keys, contents, values, messages; attaches are one object', async () => {
    const { pid, ready } = await startMaker();
    const helper = join(REPO_ROOT, 'dist', 'test', 'lib', 'sysvipc-target.js');
    const r = spawnSync(process.execPath, [helper, String(pid), ready.shmB, compile('sysvipc')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      before: unknown; after: unknown; memOk: boolean; shared: string; check: string;
      vmas: { start: number; end: number; pgoff: number; shmid: number }[]; mapsAfter: typeof out.vmas;
    };
    assert.deepEqual(out.after, out.before);
    assert.equal(out.vmas.length, 2, 'both segments were attached by the maker');
    assert.ok(out.memOk, 'the restored task sees the saved bytes at the saved addresses');
    assert.equal(out.shared, 'written-by-task', 'a write through the task is seen through another attach');
    // Each attach is where it was, and is the segment it was (the maps inode is the shm id).
    for (const v of out.vmas) assert.ok(out.mapsAfter.some((m) => m.start === v.start && m.end === v.end && m.shmid === v.shmid), JSON.stringify(out.mapsAfter));
    assert.ok(out.mapsAfter.some((m) => m.start === 0x10000000 && m.pgoff === 4096 && m.shmid === Number(ready.shmA)), 'a partial attach at its offset');
    assert.match(out.check, /^PASS/, 'a program in the new namespace finds every object by key and takes the messages in order');
  });
});
