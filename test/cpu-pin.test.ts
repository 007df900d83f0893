/**
 * ptrace/cpu-pin.ts: which CPU a dump pins a task and its own thread to, and
 * that every mask comes back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { chooseCpu, maskBeforePin, pinBeside, shareCpuClaims, unpin, unpinAll, CPU_CLAIMS_BYTES } from '../src/ptrace/cpu-pin.js';
import { gettid } from '../src/sys/syscalls.js';

/** A mask of `cpus` (8 bytes, as the kernel gives one on a machine of up to 64 CPUs). */
function mask(...cpus: number[]): Buffer {
  const m = Buffer.alloc(8);
  for (const c of cpus) m[c >> 3] |= 1 << (c & 7);
  return m;
}

test('chooseCpu: a CPU both masks allow, the least claimed, then the current one, then the lowest', () => {
  assert.equal(chooseCpu(mask(0, 1), mask(2, 3), 0), -1, 'no CPU in common');
  assert.equal(chooseCpu(mask(0, 1, 2, 3), mask(0, 1, 2, 3), 2), 2, 'the current CPU');
  assert.equal(chooseCpu(mask(0, 1), mask(0), 1), 0, 'the task may not run on the current CPU');
  assert.equal(chooseCpu(mask(0, 1, 2), mask(1, 2), 0), 1, 'neither may run where ckpt is: the lowest both allow');
  const claims = new Int32Array(new SharedArrayBuffer(CPU_CLAIMS_BYTES));
  claims[1] = 1;
  assert.equal(chooseCpu(mask(0, 1), mask(0, 1), 1, claims), 0, 'another engine thread is pinned to the current CPU');
  claims[0] = 1;
  assert.equal(chooseCpu(mask(0, 1), mask(0, 1), 1, claims), 1, 'both claimed once: the current CPU');
  assert.equal(chooseCpu(mask(0, 1, 63), mask(63), 0), 63, 'the last CPU of the mask');
});

function cpusAllowed(tid: number, pid = tid): string {
  return /^Cpus_allowed_list:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))![1];
}

test('pinBeside pins a task and this thread to one CPU, counts the claim, and unpin puts both masks back', (t) => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => { child.kill('SIGKILL'); });
  const pid = child.pid!;
  const me = gettid();
  const theirsBefore = cpusAllowed(pid);
  const oursBefore = cpusAllowed(me, process.pid);
  const claims = new Int32Array(new SharedArrayBuffer(CPU_CLAIMS_BYTES));
  shareCpuClaims(claims.buffer as SharedArrayBuffer);
  try {
    assert.equal(pinBeside(pid), true);
    assert.equal(pinBeside(pid), false, 'pinned already');
    const cpu = cpusAllowed(pid);
    assert.match(cpu, /^\d+$/, 'the task has one CPU');
    assert.equal(cpusAllowed(me, process.pid), cpu, 'this thread has the same one');
    assert.equal(claims[Number(cpu)], 1, 'the CPU is claimed once');
    assert.ok(maskBeforePin(pid), 'the mask it had is kept');
    unpin(pid);
    assert.equal(cpusAllowed(pid), theirsBefore);
    assert.equal(cpusAllowed(me, process.pid), oursBefore);
    assert.equal(claims[Number(cpu)], 0, 'the claim is given back');
    assert.equal(maskBeforePin(pid), undefined);
    // unpinAll: the end of a dump, whatever became of the tasks.
    assert.equal(pinBeside(pid), true);
    child.kill('SIGKILL');
    unpinAll();
    assert.equal(cpusAllowed(me, process.pid), oursBefore);
    assert.ok(claims.every((n) => n === 0));
  } finally {
    unpinAll();
  }
});
