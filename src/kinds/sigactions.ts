/**
 * Signal dispositions. Only the signals /proc says are caught or ignored are
 * read (remote rt_sigaction); all others are SIG_DFL, which the seed already
 * has (posix_spawn reset every signal to default).
 */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { NR } from '../sys/nr.js';
import { NSIG, SIG } from '../sys/constants.js';
import { decodeSigaction, encodeSigaction, KSIGACTION_SIZE } from '../sys/structs.js';
import { Question } from '../ptrace/question.js';
import { T } from './ids.js';
import { callAll, type RestoreTarget } from './target.js';

export const SIGACTION = defineRecord({
  type: T.SIGACTION, name: 'sigaction', content: Content.VOID,
  fields: { signo: 'u32', handler: 'u64', flags: 'u64', restorer: 'u64', mask: 'u64' },
});
export type SigactionFields = FieldsOf<typeof SIGACTION>;

/** Signals whose action is not SIG_DFL, from the SigCgt and SigIgn masks. */
export function nonDefaultSignals(sigCgt: bigint, sigIgn: bigint): number[] {
  const out: number[] = [];
  for (let sig = 1; sig <= NSIG; sig++) {
    if (sig === SIG.KILL || sig === SIG.STOP) continue;
    if (((sigCgt | sigIgn) >> BigInt(sig - 1)) & 1n) out.push(sig);
  }
  return out;
}

/** rt_sigaction(signo, NULL, slot) for each signal. */
export function sigactionQuestions(signals: number[]): Question<SigactionFields>[] {
  return signals.map((signo) => new Question(NR.rt_sigaction, (slot) => [signo, 0, slot, 8], KSIGACTION_SIZE, `rt_sigaction(${signo})`,
    (b) => ({ signo, ...decodeSigaction(b) })));
}

export function restoreSigactions(t: RestoreTarget, actions: SigactionFields[]): void {
  t.scratch.reset();
  callAll(t, actions.map((a) => ({ nr: NR.rt_sigaction, args: [a.signo, t.scratch.put(encodeSigaction(a)), 0, 8], what: `rt_sigaction(${a.signo})` })), { check: true });
}
