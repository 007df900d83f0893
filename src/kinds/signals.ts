/**
 * Signal state beyond the actions: the alternate signal stack and the
 * pending signals of both queues (thread and process), siginfo and all.
 * Pending signals are read with PTRACE_PEEKSIGINFO (nothing is dequeued) and
 * re-queued by the restored task to itself, in order, while it blocks every
 * signal; the saved mask goes back at the very end.
 */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { NR } from '../sys/nr.js';
import { peekSiginfo } from '../sys/syscalls.js';
import type { RemoteCaller } from '../ptrace/remote.js';
import type { TraceeMemory } from '../ptrace/memory.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

export const SIGNALS = defineRecord({
  type: T.SIGNALS, name: 'signals', content: Content.ARRAY,
  fields: { altstack_sp: 'addr', altstack_flags: 'u32', altstack_size: 'addr' },
});
/** One queued signal; content: its 128-byte siginfo. */
export const SIGINFO = defineRecord({ type: T.SIGINFO, name: 'siginfo', content: Content.DATA, fields: { shared: 'u32', signo: 'u32' } });
export type SignalsFields = FieldsOf<typeof SIGNALS>;
export interface Pending { shared: boolean; signo: number; info: Buffer }

const SS_ONSTACK = 1;
const SS_DISABLE = 2;

export function dumpAltstack(remote: RemoteCaller, mem: TraceeMemory, scratch: number): SignalsFields {
  remote.call(NR.sigaltstack, [0, scratch], 'sigaltstack');
  const ss = mem.read(scratch, 24);
  return {
    altstack_sp: Number(ss.readBigUInt64LE(0)), altstack_flags: (ss.readUInt32LE(8) & ~SS_ONSTACK) >>> 0,
    altstack_size: Number(ss.readBigUInt64LE(16)),
  };
}

export function dumpPending(tid: number): Pending[] {
  const read = (shared: boolean) => peekSiginfo(tid, shared).map((info) => ({ shared, signo: info.readInt32LE(0), info }));
  return [...read(false), ...read(true)];
}

export function restoreAltstack(t: RestoreTarget, s: SignalsFields): void {
  if (s.altstack_flags & SS_DISABLE) return;
  const ss = Buffer.alloc(24);
  ss.writeBigUInt64LE(BigInt(s.altstack_sp), 0);
  ss.writeUInt32LE(s.altstack_flags, 8);
  ss.writeBigUInt64LE(BigInt(s.altstack_size), 16);
  t.scratch.reset();
  t.remote.call(NR.sigaltstack, [t.scratch.put(ss), 0], 'sigaltstack');
}

/**
 * Queue each saved signal again, made by the thread `t` itself: to the process
 * (tgid) or to thread `tid`. The task must block all signals meanwhile.
 */
export function restorePending(t: RestoreTarget, tgid: number, tid: number, pending: Pending[]): void {
  for (const p of pending) {
    t.scratch.reset();
    const info = t.scratch.put(p.info);
    if (p.shared) t.remote.call(NR.rt_sigqueueinfo, [tgid, p.signo, info], `rt_sigqueueinfo(${p.signo})`);
    else t.remote.call(NR.rt_tgsigqueueinfo, [tgid, tid, p.signo, info], `rt_tgsigqueueinfo(${p.signo})`);
  }
}
