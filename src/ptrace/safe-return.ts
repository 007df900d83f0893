/**
 * A way home that is always ready: while ckpt makes remote syscalls in a task it
 * dumps, the task's registers are such that, if ckpt dies at any instant (the
 * kernel then detaches the task and lets it run), the task finds its own state
 * again by itself.
 *
 * How. Before the first change, ckpt writes an rt_sigreturn frame into the task
 * (the same frame the kernel writes when it delivers a signal): the task's
 * registers, its fpu/xsave state and its signal mask. Every remote call then runs
 * with rsp pointing at that frame and rip on a `syscall` instruction that is
 * followed by nothing but register-clearing `xor`s and a `ret` (the vDSO has one).
 * The frame's first word (where a handler's return address sits) is the address of
 * a `mov $15,%rax; syscall` sequence, which every libc has as its signal restorer.
 * ckpt stops the task at each syscall's exit, so in normal operation the `ret`
 * never runs. Abandoned at any point, the task finishes the current syscall,
 * returns into the restorer, and rt_sigreturn puts back every register and the
 * signal mask: it runs on where it was, as after a signal with a handler that did
 * nothing. No code is written into the task.
 *
 * The frame first goes below the stack's red zone, where a signal's would go (the
 * bytes there are saved and put back); once the scratch mapping exists it moves to
 * the top of it, so the stack is borrowed for one syscall only.
 *
 * Two differences with a ptrace detach, and only when ckpt dies: rt_sigreturn
 * cannot leave an interrupted syscall for the kernel to restart, so the frame
 * restarts it itself (rip back over the `syscall`, rax = the call). A sleep
 * interrupted that way starts its full interval again; one already inside
 * restart_syscall restarts as the call it carries on (ptrace/restart-call.ts). And the frame's altstack
 * field holds an invalid mode, which rt_sigreturn ignores: the altstack stays as
 * it is.
 */
import type { UserRegs } from '../sys/structs.js';
import { NR } from '../sys/nr.js';
import { E } from '../sys/errno.js';
import { readMaps, PROT_EXEC, type Vma } from '../proc/index.js';
import type { TraceeMemory } from './memory.js';

export interface ReturnPath {
  /** A `syscall` followed only by `xor reg,reg` and `ret`. */
  gadget: bigint;
  /** The instruction after that `syscall`: where a parked task resumes. */
  after: bigint;
  /** `mov $15,%rax; syscall` (or `mov $15,%eax; syscall`): rt_sigreturn. */
  restorer: bigint;
}

const RESTORERS = [
  Buffer.from([0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]),
  Buffer.from([0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]),
];
/** ModRM bytes of `xor r,r` for the same register; esp is left out. */
const XOR_SELF = new Set([0xc0, 0xc9, 0xd2, 0xdb, 0xed, 0xf6, 0xff]);
const XOR_SELF_REX = new Set([0xc0, 0xc9, 0xd2, 0xdb, 0xe4, 0xed, 0xf6, 0xff]);
const MAX_SCAN = 4 * 1024 * 1024;

/** Offset of the first `syscall; (xor r,r)*; ret` in `code`, or -1. */
export function findSyscallRet(code: Buffer): number {
  for (let at = code.indexOf(SYSCALL); at >= 0; at = code.indexOf(SYSCALL, at + 1)) {
    let i = at + 2;
    for (;;) {
      if (code[i] === 0xc3) return at;
      if (code[i] === 0x31 && XOR_SELF.has(code[i + 1])) { i += 2; continue; }
      if (code[i] === 0x45 && code[i + 1] === 0x31 && XOR_SELF_REX.has(code[i + 2])) { i += 3; continue; }
      break;
    }
  }
  return -1;
}
const SYSCALL = Buffer.from([0x0f, 0x05]);

function findRestorer(code: Buffer): number {
  for (const r of RESTORERS) {
    const at = code.indexOf(r);
    if (at >= 0) return at;
  }
  return -1;
}

/** Code is read this much at a time, so that a search stops soon after its find. */
const CHUNK = 64 * 1024;
/** Longer than any match (a `syscall`, a few `xor`s, `ret`): chunks overlap by this much. */
const OVERLAP = 64;
/**
 * Where each was found before, by mapping (device, inode, file offset; the
 * vDSO by its name): the offset in that mapping. A find is checked at its
 * address before it is used again, so a changed file costs only a new search.
 */
const found = new Map<string, number>();

/** The first offset in `v` where `find` matches, reading at most what it must. */
function searchVma(v: Vma, find: (b: Buffer) => number, mem: TraceeMemory): number {
  const size = v.end - v.start;
  const code = Buffer.alloc(Math.min(size, CHUNK + OVERLAP));
  for (let off = 0; off < size; off += CHUNK) {
    const n = mem.tryRead(v.start + off, code, 0, Math.min(code.length, size - off));
    const at = find(code.subarray(0, n));
    if (at >= 0) return off + at;
    if (n < Math.min(code.length, size - off)) return -1;
  }
  return -1;
}

/**
 * Both pieces, looked for in the task's executable mappings (the vDSO first for
 * the syscall, libc first for the restorer). Undefined if either is missing.
 */
export function findReturnPath(tid: number, mem: TraceeMemory): ReturnPath | undefined {
  const exec = readMaps(tid).filter((v) => (v.prot & PROT_EXEC) !== 0 && v.end - v.start <= MAX_SCAN && v.path !== '[vsyscall]');
  const rank = (v: Vma, first: (p: string) => boolean) => (first(v.path) ? 0 : 1);
  const search = (kind: string, first: (p: string) => boolean, find: (b: Buffer) => number): bigint | undefined => {
    const sorted = [...exec].sort((a, b) => rank(a, first) - rank(b, first));
    const keyOf = (v: Vma) => `${kind} ${v.path === '[vdso]' ? v.path : `${v.major}:${v.minor}:${v.ino}:${v.pgoff}`}`;
    for (const v of sorted) {
      const at = found.get(keyOf(v));
      if (at === undefined) continue;
      const here = Buffer.alloc(OVERLAP);
      const n = mem.tryRead(v.start + at, here, 0, Math.min(OVERLAP, v.end - v.start - at));
      if (find(here.subarray(0, n)) === 0) return BigInt(v.start + at);
    }
    for (const v of sorted) {
      const at = searchVma(v, find, mem);
      if (at < 0) continue;
      found.set(keyOf(v), at);
      return BigInt(v.start + at);
    }
    return undefined;
  };
  const gadget = search('syscall', (p) => p === '[vdso]', findSyscallRet);
  const restorer = gadget === undefined ? undefined : search('restorer', (p) => /\/(libc|ld-musl)[^/]*$/.test(p), findRestorer);
  if (gadget === undefined || restorer === undefined) return undefined;
  return { gadget, after: gadget + 2n, restorer };
}

// struct rt_sigframe (x86_64): pretcode, then struct ucontext, then siginfo.
const UC = 8;
const UC_STACK = UC + 16;
const MCONTEXT = UC + 40;
const UC_SIGMASK = MCONTEXT + 256;
const FRAME_SIZE = UC_SIGMASK + 8 + 128;
const SIGCONTEXT_REGS = [
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rdi', 'rsi', 'rbp', 'rbx', 'rdx', 'rax', 'rcx', 'rsp', 'rip', 'eflags',
] as const;
const UC_FP_XSTATE = 1n;
const UC_SIGCONTEXT_SS = 2n;
const UC_STRICT_RESTORE_SS = 4n;
/** Neither 0, SS_ONSTACK nor SS_DISABLE: rt_sigreturn's sigaltstack fails quietly. */
const SS_INVALID = 3;
const FP_XSTATE_MAGIC1 = 0x46505853;
const FP_XSTATE_MAGIC2 = 0x46505845;
const SW_RESERVED = 464;
const RESTARTS = new Set([-E.ERESTARTSYS, -E.ERESTARTNOINTR, -E.ERESTARTNOHAND, -E.ERESTART_RESTARTBLOCK].map(BigInt));

/** The registers as the kernel would resume the task: an interrupted syscall is made again. */
export function restartedRegs(regs: UserRegs): UserRegs {
  const orig = BigInt.asIntN(64, regs.orig_rax);
  const rax = BigInt.asIntN(64, regs.rax);
  if (orig < 0n || !RESTARTS.has(rax)) return regs;
  return { ...regs, rax: orig, rip: regs.rip - 2n };
}

export interface Sigframe {
  /** Where rsp must point (the frame's first word, the restorer's address). */
  addr: bigint;
  bytes: Buffer;
  /** Its xsave area, if it has one (call frames may share it: rt_sigreturn only reads it). */
  fpstate?: bigint;
}

/**
 * An rt_sigframe that returns to `regs` with `mask`, placed just below `top`.
 * `xstate` is the task's NT_X86_XSTATE area; without it the kernel would reset
 * the fpu state.
 */
export function buildSigframe(top: bigint, regs: UserRegs, mask: bigint, xstate: Buffer, restorer: bigint): Sigframe {
  const fpSize = xstate.length + 4;
  const fp = (top - BigInt(fpSize)) & ~63n;
  const addr = ((fp - BigInt(FRAME_SIZE)) & ~15n) - 8n;
  const bytes = Buffer.alloc(Number(top - addr));
  writeFrame(bytes, restartedRegs(regs), mask, fp, restorer);
  const fpOff = Number(fp - addr);
  xstate.copy(bytes, fpOff);
  // The signal-frame form of the software bytes (ptrace's form holds XCR0 there).
  const xcr0 = xstate.readBigUInt64LE(SW_RESERVED);
  bytes.fill(0, fpOff + SW_RESERVED, fpOff + 512);
  bytes.writeUInt32LE(FP_XSTATE_MAGIC1, fpOff + SW_RESERVED);
  bytes.writeUInt32LE(fpSize, fpOff + SW_RESERVED + 4);
  bytes.writeBigUInt64LE(xcr0, fpOff + SW_RESERVED + 8);
  bytes.writeUInt32LE(xstate.length, fpOff + SW_RESERVED + 16);
  bytes.writeUInt32LE(FP_XSTATE_MAGIC2, fpOff + xstate.length);
  return { addr, bytes, fpstate: fp };
}

/** Bytes of a call frame (chain.ts): an rt_sigframe without an xsave area of its own. */
export const CALL_FRAME_SIZE = (FRAME_SIZE + 15) & ~15;

/**
 * A frame whose rt_sigreturn makes one syscall: registers `regs`
 * (rip on the return path's `syscall; ret`, rsp on the next frame), signal
 * mask `mask`, and the fpu state of the xsave area at `fpstate` (another
 * frame's), so that the fpu state stays the task's.
 */
export function buildCallFrame(regs: UserRegs, mask: bigint, fpstate: bigint, restorer: bigint): Buffer {
  const bytes = Buffer.alloc(CALL_FRAME_SIZE);
  writeFrame(bytes, regs, mask, fpstate, restorer);
  return bytes;
}

/**
 * A frame's words before its xsave area: the restorer (a handler's return
 * address), uc_flags, an altstack mode rt_sigreturn ignores, the registers,
 * the xsave area's address (0: none, the fpu is reset) and the signal mask.
 */
function writeFrame(bytes: Buffer, regs: UserRegs, mask: bigint, fpstate: bigint, restorer: bigint): void {
  bytes.writeBigUInt64LE(restorer, 0);
  bytes.writeBigUInt64LE((fpstate ? UC_FP_XSTATE : 0n) | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, UC);
  bytes.writeInt32LE(SS_INVALID, UC_STACK + 8);
  SIGCONTEXT_REGS.forEach((name, i) => bytes.writeBigUInt64LE(BigInt.asUintN(64, regs[name]), MCONTEXT + i * 8));
  bytes.writeUInt16LE(Number(regs.cs), MCONTEXT + 144);
  bytes.writeUInt16LE(Number(regs.ss), MCONTEXT + 150);
  bytes.writeBigUInt64LE(fpstate, MCONTEXT + 184);
  bytes.writeBigUInt64LE(mask, UC_SIGMASK);
}

/**
 * A frame for the snapshot child (a fork of the task): if ckpt dies before it
 * kills the child, the child returns through it into `exit_group(EXIT_FRAME_CODE)` at once,
 * instead of running on as a second copy of the program.
 */
/** The exit status of a child that left through its exit frame (a marker for reapLeftoverSnapshots). */
export const EXIT_FRAME_CODE = 117;

export function buildExitFrame(top: bigint, regs: UserRegs, ret: ReturnPath): Sigframe {
  const addr = ((top - BigInt(FRAME_SIZE)) & ~15n) - 8n;
  const bytes = Buffer.alloc(Number(top - addr));
  const r: UserRegs = { ...regs, rax: BigInt(NR.exit_group), rdi: BigInt(EXIT_FRAME_CODE), rip: ret.gadget, rsp: addr };
  writeFrame(bytes, r, 0xffffffffffffffffn, 0n, ret.restorer);
  return { addr, bytes };
}
