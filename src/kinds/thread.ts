/**
 * Per-thread state: registers, xsave area, signal mask, rseq registration,
 * clear_child_tid, robust futex list, alternate signal stack, comm and the
 * signals pending for the thread alone. A THREAD record holds REGS, XSTATE
 * and SIGINFO records. Everything else (credentials, seccomp, scheduling) is
 * taken as the same in every thread and restored in each from the process's.
 */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { NR } from '../sys/nr.js';
import { PR } from '../sys/constants.js';
import { trySyscall, allocNative } from '../sys/libc.js';
import { Question } from '../ptrace/question.js';
import { T } from './ids.js';
import { callAll, type RestoreTarget, type TargetCall } from './target.js';

export const THREAD = defineRecord({
  type: T.THREAD, name: 'thread', content: Content.ARRAY,
  fields: {
    tid: 'u32', sigmask: 'u64', clear_child_tid: 'addr',
    rseq_ptr: 'addr', rseq_len: 'u32', rseq_sig: 'u32', rseq_flags: 'u32',
    robust_list: 'addr', robust_len: 'u32', altstack_sp: 'addr', altstack_flags: 'u32',
    altstack_size: 'addr', comm: 'str16',
  },
});
export type ThreadFields = FieldsOf<typeof THREAD>;

const SS_ONSTACK = 1;
const SS_DISABLE = 2;

export type ThreadAnswers = Pick<ThreadFields, 'clear_child_tid' | 'altstack_sp' | 'altstack_flags' | 'altstack_size'>;

export interface ThreadQuestions { tidAddress: Question<number>; altstack: Question<Omit<ThreadAnswers, 'clear_child_tid'>> }

/** What only the thread itself can tell: clear_child_tid and its altstack. */
export function threadQuestions(): ThreadQuestions {
  return {
    tidAddress: new Question(NR.prctl, (slot) => [PR.GET_TID_ADDRESS, slot], 8, 'prctl(PR_GET_TID_ADDRESS)', (b) => Number(b.readBigUInt64LE(0))),
    altstack: new Question(NR.sigaltstack, (slot) => [0, slot], 24, 'sigaltstack', (ss) => ({
      altstack_sp: Number(ss.readBigUInt64LE(0)), altstack_flags: (ss.readUInt32LE(8) & ~SS_ONSTACK) >>> 0, altstack_size: Number(ss.readBigUInt64LE(16)),
    })),
  };
}

let robustOut: ReturnType<typeof allocNative> | undefined;
/** get_robust_list(2) works on another task we may trace: no remote call needed. */
export function robustList(tid: number): { head: number; len: number } {
  robustOut ??= allocNative(16);
  const r = trySyscall(NR.get_robust_list, tid, robustOut.addr, robustOut.addr + 8n);
  if (r < 0) return { head: 0, len: 0 };
  return { head: Number(robustOut.buf.readBigUInt64LE(0)), len: Number(robustOut.buf.readBigUInt64LE(8)) };
}

/** The thread's own settings, made by the thread itself (they are per thread in Linux). */
/** The answers of threadQuestions, once asked. */
export function threadAnswers(q: ThreadQuestions): ThreadAnswers {
  return { clear_child_tid: q.tidAddress.answer, ...q.altstack.answer };
}

export function restoreThreadState(t: RestoreTarget, f: ThreadFields): void {
  t.scratch.reset();
  const calls: TargetCall[] = [];
  if (f.rseq_ptr) calls.push({ nr: NR.rseq, args: [f.rseq_ptr, f.rseq_len, 0, f.rseq_sig], what: 'rseq' });
  calls.push({ nr: NR.set_tid_address, args: [f.clear_child_tid], what: 'set_tid_address' });
  if (f.robust_list) calls.push({ nr: NR.set_robust_list, args: [f.robust_list, f.robust_len], what: 'set_robust_list' });
  if (!(f.altstack_flags & SS_DISABLE)) {
    const ss = Buffer.alloc(24);
    ss.writeBigUInt64LE(BigInt(f.altstack_sp), 0);
    ss.writeUInt32LE(f.altstack_flags, 8);
    ss.writeBigUInt64LE(BigInt(f.altstack_size), 16);
    calls.push({ nr: NR.sigaltstack, args: [t.scratch.put(ss), 0], what: 'sigaltstack' });
  }
  calls.push({ nr: NR.prctl, args: [PR.SET_NAME, t.scratch.put(Buffer.from(f.comm + '\0'))], what: 'prctl(PR_SET_NAME)' });
  callAll(t, calls, { check: true });
}
