/**
 * Which call a thread stopped inside restart_syscall is carrying on.
 *
 * A sleep or a timed wait that a stop interrupts (a ptrace stop, SIGSTOP, an
 * earlier `dump -R`) returns -ERESTART_RESTARTBLOCK, and the kernel goes on
 * with it through restart_syscall(2), which finds the call and its deadline in
 * the thread's restart block. Stopped again before it ends, the thread shows
 * orig_rax = restart_syscall. A restored thread has an empty restart block:
 * restart_syscall there returns EINTR, which a program with no signal handler
 * never expects. So the dump names the call being carried on, and restore
 * issues that call again with its own arguments (still in the registers).
 * The return frame of a dumped task does the same (ptrace/safe-return.ts):
 * rt_sigreturn empties the restart block too.
 *
 * The kernel does not say which call it was. Two witnesses:
 * - the arguments must fit the call (nanosleep, clock_nanosleep, futex wait
 *   with a timeout, poll that blocks: the calls that use a restart block);
 * - the code, where it names one of those: `mov $NR,%eax` (or `%rax`) just
 *   before the `syscall` (glibc up to 2.40, Go, most static code). It decides
 *   where the arguments fit several, and names nothing where they do not fit
 *   the call it names.
 * Arguments that fit none, or several that the code does not tell apart, name
 * nothing: the thread is restored into restart_syscall and gets EINTR, as
 * after CRIU.
 */
import type { UserRegs } from '../sys/structs.js';
import { NR } from '../sys/nr.js';
import { E } from '../sys/errno.js';
import type { TraceeMemory } from './memory.js';

/** The calls that leave the kernel a restart block (x86_64, 64-bit ABI; poll with any timeout). */
const RESTARTED_BY_BLOCK: ReadonlySet<number> = new Set([NR.nanosleep, NR.clock_nanosleep, NR.futex, NR.poll]);
const USER_MIN = 0x1000n;
const USER_END = 0x8000_0000_0000n;
const FUTEX_PRIVATE_FLAG = 128n;
const FUTEX_CLOCK_REALTIME = 256n;
const FUTEX_WAIT = 0n;
const FUTEX_WAIT_BITSET = 9n;
/** clock_nanosleep's clocks: REALTIME, MONOTONIC, PROCESS_CPUTIME_ID, BOOTTIME, REALTIME_ALARM, BOOTTIME_ALARM, TAI. */
const SLEEP_CLOCKS: ReadonlySet<number> = new Set([0, 1, 2, 7, 8, 9, 11]);
const POLLFD_SIZE = 8;
const MAX_POLL_FDS = 1n << 20n;

/** True if the registers say: inside restart_syscall, interrupted again. */
export function inRestartSyscall(regs: UserRegs): boolean {
  return BigInt.asIntN(64, regs.orig_rax) === BigInt(NR.restart_syscall) && BigInt.asIntN(64, regs.rax) === BigInt(-E.ERESTART_RESTARTBLOCK);
}

/**
 * `regs` with orig_rax naming the call that restart_syscall carries on, when
 * the thread is inside restart_syscall and says which; otherwise `regs` as they are.
 */
export function nameRestartedCall(regs: UserRegs, mem: TraceeMemory): UserRegs {
  if (!inRestartSyscall(regs)) return regs;
  const nr = restartedCall(regs, mem);
  return nr === undefined ? regs : { ...regs, orig_rax: BigInt(nr) };
}

/** The syscall number restart_syscall is carrying on, or undefined if the thread does not say. */
export function restartedCall(regs: UserRegs, mem: TraceeMemory): number | undefined {
  const fits = [...RESTARTED_BY_BLOCK].filter((nr) => argumentsFit(nr, regs, mem));
  const fromCode = callInCode(regs.rip, mem);
  // The code names one of the calls: it is that one, or (its arguments do not fit) none.
  if (fromCode !== undefined && RESTARTED_BY_BLOCK.has(fromCode)) return fits.includes(fromCode) ? fromCode : undefined;
  return fits.length === 1 ? fits[0] : undefined;
}

/** The immediate of a `mov $imm32,%eax` / `mov $imm32,%rax` that ends right before the `syscall` at rip-2. */
function callInCode(rip: bigint, mem: TraceeMemory): number | undefined {
  if (rip < USER_MIN + 9n || rip >= USER_END) return undefined;
  const code = Buffer.alloc(9);
  if (mem.tryRead(rip - 9n, code, 0, 9) !== 9) return undefined;
  if (code[7] !== 0x0f || code[8] !== 0x05) return undefined;
  // 0x41..0x4f before 0xb8 would make it a move into another register.
  if (code[2] === 0xb8 && !(code[1] >= 0x41 && code[1] <= 0x4f)) return code.readInt32LE(3);
  if (code[0] === 0x48 && code[1] === 0xc7 && code[2] === 0xc0) return code.readInt32LE(3);
  return undefined;
}

function argumentsFit(nr: number, r: UserRegs, mem: TraceeMemory): boolean {
  switch (nr) {
    case NR.clock_nanosleep:
      // A relative sleep (TIMER_ABSTIME returns -ERESTARTNOHAND, not a restart block).
      return isSleepClock(r.rdi) && r.rsi === 0n && isTimespec(r.rdx, mem) && (r.r10 === 0n || isUserPointer(r.r10));
    case NR.nanosleep:
      return isTimespec(r.rdi, mem) && (r.rsi === 0n || isUserPointer(r.rsi));
    case NR.futex: {
      const op = r.rsi & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
      return (op === FUTEX_WAIT || op === FUTEX_WAIT_BITSET) && r.rdi % 4n === 0n && readable(r.rdi, 4, mem) && isTimespec(r.r10, mem);
    }
    case NR.poll: {
      // Any poll that blocks leaves a restart block, with or without a timeout (-1); one
      // with timeout 0 never blocks. The timeout is an int, zero- or sign-extended: a
      // pointer left in rdx is not one.
      if ((r.rdx >> 32n !== 0n && r.rdx >> 32n !== 0xffff_ffffn) || BigInt.asIntN(32, r.rdx) === 0n || r.rsi > MAX_POLL_FDS) return false;
      return r.rsi === 0n || readable(r.rdi, Number(r.rsi) * POLLFD_SIZE, mem);
    }
    default:
      return false;
  }
}

/** A clockid_t (a 32-bit int, zero- or sign-extended) that clock_nanosleep sleeps on relatively. */
function isSleepClock(value: bigint): boolean {
  if (value >> 32n !== 0n && value >> 32n !== 0xffff_ffffn) return false;
  const id = Number(BigInt.asIntN(32, value));
  // A negative id names a process's or a thread's CPU clock (pid << 3 inverted, low bits the clock).
  return id >= 0 ? SLEEP_CLOCKS.has(id) : (id & 7) <= 2;
}

function isUserPointer(addr: bigint): boolean {
  return addr >= USER_MIN && addr < USER_END;
}

function readable(addr: bigint, len: number, mem: TraceeMemory): boolean {
  if (!isUserPointer(addr) || addr + BigInt(len) > USER_END) return false;
  return mem.tryRead(addr, Buffer.alloc(len), 0, len) === len;
}

/** A struct timespec a kernel would accept: seconds ≥ 0, 0 ≤ nanoseconds < 1e9. */
function isTimespec(addr: bigint, mem: TraceeMemory): boolean {
  if (!isUserPointer(addr)) return false;
  const ts = Buffer.alloc(16);
  if (mem.tryRead(addr, ts, 0, 16) !== 16) return false;
  const nsec = ts.readBigInt64LE(8);
  return ts.readBigInt64LE(0) >= 0n && nsec >= 0n && nsec < 1_000_000_000n;
}
