/**
 * Seccomp: strict mode, or the stack of BPF filters (PTRACE_SECCOMP_GET_FILTER;
 * on this kernel index 0 is the oldest, found by test: the order decides which
 * filter's verdict wins). Restored oldest first, late, while the tracee has
 * PTRACE_O_SUSPEND_SECCOMP so that the filters do not block ckpt's own remote
 * syscalls; they apply from the moment ckpt detaches.
 */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { NR } from '../sys/nr.js';
import { seccompGetFilter } from '../sys/syscalls.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

export const SECCOMP = defineRecord({ type: T.SECCOMP, name: 'seccomp', content: Content.ARRAY, fields: { mode: 'u32', filters: 'u32' } });
/** One BPF program (struct sock_filter[]), oldest first. */
export const SECCOMP_FILTER = defineRecord({ type: T.SECCOMP_FILTER, name: 'seccomp_filter', content: Content.DATA, fields: { insns: 'u32' } });
export type SeccompFields = FieldsOf<typeof SECCOMP>;

export const SECCOMP_MODE_STRICT = 1;
export const SECCOMP_MODE_FILTER = 2;

/** The filters, oldest first. */
export function dumpSeccompFilters(pid: number): Buffer[] {
  const filters: Buffer[] = [];
  for (let i = 0; ; i++) {
    const f = seccompGetFilter(pid, i);
    if (!f) return filters;
    filters.push(f);
  }
}

export function restoreSeccomp(t: RestoreTarget, mode: number, filters: Buffer[]): void {
  if (mode === SECCOMP_MODE_STRICT) {
    t.remote.call(NR.seccomp, [0 /* SECCOMP_SET_MODE_STRICT */, 0, 0], 'seccomp(SECCOMP_SET_MODE_STRICT)');
    return;
  }
  for (const f of filters) {
    t.scratch.reset();
    const prog = t.scratch.put(f);
    const fprog = Buffer.alloc(16);
    fprog.writeUInt16LE(f.length / 8, 0);
    fprog.writeBigUInt64LE(BigInt(prog), 8);
    t.remote.call(NR.seccomp, [1 /* SECCOMP_SET_MODE_FILTER */, 0, t.scratch.put(fprog)], 'seccomp(SECCOMP_SET_MODE_FILTER)');
  }
}
