/**
 * Registers: the whole user_regs_struct (fs_base and gs_base included) and
 * the whole xsave area (x87, SSE, AVX, AVX-512, PKRU... as the CPU has them).
 */
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { USER_REGS_NAMES, type UserRegs, xsaveFeatures } from '../sys/structs.js';
import { NR } from '../sys/nr.js';
import { E } from '../sys/errno.js';
import { T } from './ids.js';

const regFields = Object.fromEntries(USER_REGS_NAMES.map((n) => [n, 'u64'])) as { readonly [K in (typeof USER_REGS_NAMES)[number]]: 'u64' };

export const REGS = defineRecord({ type: T.REGS, name: 'regs', content: Content.VOID, fields: regFields });
export const XSTATE = defineRecord({
  type: T.XSTATE, name: 'xstate', content: Content.DATA,
  fields: { xfeatures: 'u64', xstate_bv: 'u64', size: 'u32' },
});

export function regsFields(regs: UserRegs): FieldsOf<typeof REGS> { return { ...regs }; }

export function xstateFields(area: Buffer): FieldsOf<typeof XSTATE> {
  const { xfeatures, xstateBv } = xsaveFeatures(area);
  return { xfeatures, xstate_bv: xstateBv, size: area.length };
}

/** Refuse an xsave area that uses features this CPU does not have. */
export function checkXstate(saved: FieldsOf<typeof XSTATE>, hostXfeatures: bigint, hostSize: number): void {
  const missing = saved.xstate_bv & ~hostXfeatures;
  if (missing !== 0n) {
    throw new CkptError('CPU_MISMATCH', `the image uses xsave features 0x${missing.toString(16)} that this CPU lacks (image 0x${saved.xfeatures.toString(16)}, CPU 0x${hostXfeatures.toString(16)})`);
  }
  if (saved.size > hostSize) {
    throw new CkptError('CPU_MISMATCH', `the image's xsave area is ${saved.size} bytes, this CPU's is ${hostSize}`);
  }
}

const RESTART_ERRNOS = new Set([E.ERESTARTSYS, E.ERESTARTNOINTR, E.ERESTARTNOHAND, E.ERESTART_RESTARTBLOCK]);

/**
 * The registers to resume a restored task with. A task stopped inside an
 * interrupted syscall has rax = -ERESTART* and orig_rax = the call; the kernel
 * would restart it on resume, but the restored task resumes from a stop of
 * ours, not from that syscall: re-issue the call (rip back over `syscall`,
 * rax = orig_rax; the argument registers are intact). -ERESTART_RESTARTBLOCK
 * is re-issued too: the restart block (remaining sleep) died with the old task,
 * and re-issuing keeps the program's view (no spurious EINTR); a relative wait
 * starts its whole interval again. orig_rax = restart_syscall means the dump
 * could not tell which call it carried on (ptrace/restart-call.ts): the new
 * task's restart block is empty, so restart_syscall returns EINTR.
 */
export function resumeRegs(saved: UserRegs): UserRegs {
  const regs = { ...saved };
  const orig = BigInt.asIntN(64, saved.orig_rax);
  const rax = BigInt.asIntN(64, saved.rax);
  if (orig >= 0n && RESTART_ERRNOS.has(Number(-rax) as 512)) {
    regs.rax = orig === BigInt(NR.restart_syscall) ? BigInt(NR.restart_syscall) : orig;
    regs.rip = saved.rip - 2n;
  }
  regs.orig_rax = BigInt.asUintN(64, -1n);
  return regs;
}
