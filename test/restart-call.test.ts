/**
 * Which call a thread inside restart_syscall carries on (src/ptrace/restart-call.ts),
 * on made-up registers and memory: the shapes a real process cannot be made to show
 * on demand (test/programs/restart.c covers the real ones end to end).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inRestartSyscall, restartedCall } from '../src/ptrace/restart-call.js';
import type { TraceeMemory } from '../src/ptrace/memory.js';
import { USER_REGS_NAMES, type UserRegs } from '../src/sys/structs.js';

/** Memory that holds `regions` (address -> bytes) and nothing else. */
function memory(regions: [number, Buffer][]): TraceeMemory {
  return {
    tryRead(addr: number | bigint, into: Buffer, off: number, len: number): number {
      const a = Number(addr);
      for (const [start, bytes] of regions) {
        if (a >= start && a + len <= start + bytes.length) return bytes.copy(into, off, a - start, a - start + len);
      }
      return 0;
    },
  } as unknown as TraceeMemory;
}

const CODE = 0x401000;
const STACK = 0x7ffd12340000;
const TIMESPEC = Buffer.alloc(16); // { 1 s, 0 }
TIMESPEC.writeBigInt64LE(1n, 0);

/** Registers of a thread inside restart_syscall, rip just after the `syscall` at CODE + 7. */
function regs(args: Partial<UserRegs>): UserRegs {
  const r = Object.fromEntries(USER_REGS_NAMES.map((n) => [n, 0n])) as UserRegs;
  return { ...r, orig_rax: 219n, rax: BigInt.asUintN(64, -516n), rip: BigInt(CODE + 9), ...args };
}
/** 7 bytes of padding, then `mov $nr,%eax` (or other code) and `syscall`. */
const code = (before: number[]) => Buffer.from([...Array(7 - before.length).fill(0x90), ...before, 0x0f, 0x05]);
const movEax = (nr: number) => [0xb8, nr & 0xff, (nr >> 8) & 0xff, 0, 0];
const noMov = code([0x48, 0x89, 0xf8]); // mov %rdi,%rax: glibc's syscall() wrapper

describe('restart_syscall: which call it carries on', () => {
  test('only orig_rax = restart_syscall with rax = -ERESTART_RESTARTBLOCK counts', () => {
    assert.equal(inRestartSyscall(regs({})), true);
    assert.equal(inRestartSyscall(regs({ orig_rax: 230n })), false);
    assert.equal(inRestartSyscall(regs({ rax: BigInt.asUintN(64, -4n) })), false);
  });

  test('clock_nanosleep from its arguments alone (a small clock id, relative, a timespec)', () => {
    const mem = memory([[CODE, noMov], [STACK, TIMESPEC]]);
    assert.equal(restartedCall(regs({ rdi: 1n, rsi: 0n, rdx: BigInt(STACK), r10: 0n }), mem), 230);
  });

  test('poll with no timeout (-1, zero- or sign-extended) leaves a restart block too', () => {
    const fds = Buffer.alloc(16);
    const mem = memory([[CODE, code(movEax(7))], [STACK, fds]]);
    assert.equal(restartedCall(regs({ rdi: BigInt(STACK), rsi: 2n, rdx: 0xffffffffn }), mem), 7);
    assert.equal(restartedCall(regs({ rdi: BigInt(STACK), rsi: 2n, rdx: 0xffffffffffffffffn }), mem), 7);
  });

  test('code that names a call whose arguments do not fit names nothing (not the one they fit)', () => {
    // poll(fds, 9, -1) behind mov $7,%eax... but rdx holds a pointer, so not poll's int;
    // the arguments would fit a futex wait (op 9, a timespec in r10).
    const mem = memory([[CODE, code(movEax(7))], [STACK, Buffer.alloc(4096)]]);
    assert.equal(restartedCall(regs({ rdi: BigInt(STACK), rsi: 9n, rdx: BigInt(STACK + 64), r10: BigInt(STACK + 128) }), mem), undefined);
  });

  test('arguments that fit both nanosleep and a futex wait: the code decides, or nothing is named', () => {
    // rdi -> a timespec (and 4 readable bytes), rsi 0 (no rmtp / FUTEX_WAIT), r10 -> a timespec.
    const args = { rdi: BigInt(STACK), rsi: 0n, rdx: 0n, r10: BigInt(STACK) };
    assert.equal(restartedCall(regs(args), memory([[CODE, noMov], [STACK, TIMESPEC]])), undefined);
    assert.equal(restartedCall(regs(args), memory([[CODE, code(movEax(35))], [STACK, TIMESPEC]])), 35);
    assert.equal(restartedCall(regs(args), memory([[CODE, code(movEax(202))], [STACK, TIMESPEC]])), 202);
  });

  test('a mov into another register (REX.B) is not the call number', () => {
    const mem = memory([[CODE, code([0x41, ...movEax(35)])], [STACK, TIMESPEC]]);
    // mov $35,%r8d: the code says nothing; the arguments alone fit clock_nanosleep.
    assert.equal(restartedCall(regs({ rdi: 0n, rsi: 0n, rdx: BigInt(STACK) }), mem), 230);
  });

  test('arguments that fit nothing name nothing', () => {
    assert.equal(restartedCall(regs({ rdi: 0x10n, rsi: 0x20n, rdx: 0x30n }), memory([[CODE, noMov]])), undefined);
  });
});
