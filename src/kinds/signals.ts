/**
 * Signal state beyond the actions: the pending signals of both queues
 * (thread and process), siginfo and all. The SIGNALS record also shows the
 * main thread's alternate stack; each thread's own, the one restored, is in
 * its THREAD record (thread.ts).
 * Pending signals are read with PTRACE_PEEKSIGINFO (nothing is dequeued) and
 * re-queued by the restored task to itself, in order, while it blocks every
 * signal; the saved mask goes back at the very end.
 */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { NR } from '../sys/nr.js';
import { peekSiginfo } from '../sys/syscalls.js';
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

export function dumpPending(tid: number): Pending[] {
  const read = (shared: boolean) => peekSiginfo(tid, shared).map((info) => ({ shared, signo: info.readInt32LE(0), info }));
  return [...read(false), ...read(true)];
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
