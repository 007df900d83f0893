/**
 * A syscall on a thread of its own (sys/libc.ts syscallOnThread), and the
 * tmpfs preallocation of a small dump's pages.img that uses it
 * (dump/page-pump.ts): the thread makes exactly the call asked, blocks every
 * signal, and is joined by wait().
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { allocNative, freeNative, syscallOnThread } from '../src/sys/libc.js';
import { fallocateOnThread, gettid, getpid, onMemoryFs, pipe2, schedGetaffinity } from '../src/sys/syscalls.js';
import { NR } from '../src/sys/nr.js';

const SCHED_OTHER = 0;
/** Signals 1-31 but SIGKILL and SIGSTOP, which no thread can block. */
const BLOCKABLE = 0x7ffbfeffn;
const EBADF = 9;

function threadsOfSelf(): number[] {
  return fs.readdirSync('/proc/self/task').map(Number);
}

test('the call runs on another thread of this process and wait() gives its result', () => {
  const pid = syscallOnThread(NR.getpid, []);
  const tid = syscallOnThread(NR.gettid, []);
  const policy = syscallOnThread(NR.sched_getscheduler, [0]);
  assert.ok(pid && tid && policy, 'a thread could be made');
  assert.equal(pid.wait(), getpid());
  const t = tid.wait();
  assert.ok(t > 0 && t !== gettid(), `the thread's tid ${t} is not the caller's ${gettid()}`);
  assert.equal(policy.wait(), SCHED_OTHER, 'the thread has the caller\'s scheduling');
  // wait() again: the same result, no second join.
  assert.equal(pid.wait(), getpid());
});

test('the thread runs on the CPUs asked, whatever the caller\'s mask', () => {
  const mask = allocNative(8);
  try {
    // The lowest CPU this thread may use, alone.
    const ours = schedGetaffinity(0);
    let cpu = 0;
    while (!(ours[cpu >> 3] & (1 << (cpu & 7)))) cpu++;
    const one = Buffer.alloc(8);
    one[cpu >> 3] = 1 << (cpu & 7);
    const call = syscallOnThread(NR.sched_getaffinity, [0, 8, Number(mask.addr)], one);
    assert.ok(call);
    assert.equal(call.wait(), 8);
    assert.deepEqual([...mask.buf.subarray(0, 8)], [...one]);
  } finally {
    freeNative(mask);
  }
});

test('a failed call gives -errno', () => {
  const call = syscallOnThread(NR.fallocate, [987654, 0, 0, 4096]);
  assert.ok(call);
  assert.equal(call.wait(), -EBADF);
});

test('the thread blocks every signal while it waits in its call, and is gone once joined', async () => {
  const [r, w] = pipe2(0);
  const buf = allocNative(8);
  const before = new Set(threadsOfSelf());
  const call = syscallOnThread(NR.read, [r, Number(buf.addr), 1]);
  assert.ok(call);
  try {
    let tid: number | undefined;
    for (let i = 0; i < 200 && tid === undefined; i++) {
      tid = threadsOfSelf().find((t) => !before.has(t) && (blocked(t) & BLOCKABLE) === BLOCKABLE);
      if (tid === undefined) await new Promise((res) => setTimeout(res, 5));
    }
    assert.ok(tid !== undefined, 'a new thread with every signal blocked, blocked in read(2)');
    fs.writeSync(w, 'x');
    assert.equal(call.wait(), 1);
    assert.equal(buf.buf[0], 'x'.charCodeAt(0));
    assert.ok(!threadsOfSelf().includes(tid), `thread ${tid} is gone after wait()`);
  } finally {
    fs.writeSync(w, 'x'); // a call still blocked (the assertions failed first) returns
    call.wait();
    fs.closeSync(r);
    fs.closeSync(w);
    freeNative(buf);
  }
});

test('fallocateOnThread allocates a tmpfs file ahead; onMemoryFs tells tmpfs from a disk', (t) => {
  const shm = fs.mkdtempSync('/dev/shm/ckpt-thread-');
  const disk = fs.mkdtempSync(path.join(process.cwd(), '.ckpt-thread-'));
  try {
    const fd = fs.openSync(path.join(shm, 'f'), 'w+');
    try {
      assert.equal(onMemoryFs(fd), true);
      const call = fallocateOnThread(fd, 4096, 1 << 20);
      assert.ok(call);
      assert.equal(call.wait(), 0);
      const st = fs.fstatSync(fd);
      assert.equal(st.size, 4096 + (1 << 20));
      assert.ok(st.blocks * 512 >= 1 << 20, `${st.blocks} blocks allocated`);
    } finally {
      fs.closeSync(fd);
    }
    const diskFd = fs.openSync(path.join(disk, 'f'), 'w+');
    try {
      const type = fs.statfsSync(disk).type;
      if (type === 0x01021994 || type === 0x858458f6) t.diagnostic('the working directory is on tmpfs: no disk to compare');
      else assert.equal(onMemoryFs(diskFd), false);
    } finally {
      fs.closeSync(diskFd);
    }
  } finally {
    fs.rmSync(shm, { recursive: true, force: true });
    fs.rmSync(disk, { recursive: true, force: true });
  }
});

/** The thread's blocked signals (0 once it is gone). */
function blocked(tid: number): bigint {
  try {
    return BigInt(`0x${/^SigBlk:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))?.[1] ?? '0'}`);
  } catch {
    return 0n;
  }
}
