/**
 * The rest of what a process can observe about itself: personality, nice,
 * scheduling policy, CPU affinity, oom_score_adj, timer slack, dumpable,
 * child subreaper.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import type { Stat } from '../proc/index.js';
import { NR } from '../sys/nr.js';
import { PR } from '../sys/constants.js';
import { schedGetaffinity } from '../sys/syscalls.js';
import { maskBeforePin } from '../ptrace/cpu-pin.js';
import type { RemoteCaller } from '../ptrace/remote.js';
import { Question } from '../ptrace/question.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

/** content: the CPU affinity mask. */
export const MISC = defineRecord({
  type: T.MISC, name: 'misc', content: Content.DATA,
  fields: {
    personality: 'u32', nice: 'i32', policy: 'u32', rt_priority: 'u32', oom_score_adj: 'i32',
    timer_slack_ns: 'u64', dumpable: 'u32', child_subreaper: 'u32',
  },
});
export type MiscFields = FieldsOf<typeof MISC>;

export function subreaperQuestion(): Question<number> {
  return new Question(NR.prctl, (slot) => [PR.GET_CHILD_SUBREAPER, slot], 4, 'prctl(PR_GET_CHILD_SUBREAPER)', (b) => (b.readInt32LE(0) ? 1 : 0));
}

/**
 * `subreaper`: the answer of subreaperQuestion. Personality and timer slack
 * come from /proc (a remote call each where it cannot be read); dumpable only
 * the process can say.
 */
export function dumpMisc(pid: number, stat: Stat, remote: RemoteCaller, subreaper: number): { fields: MiscFields; affinity: Buffer } {
  return {
    fields: {
      personality: procNumber(pid, 'personality', 16) ?? remote.call(NR.personality, [0xffffffff], 'personality'),
      nice: stat.nice, policy: stat.policy, rt_priority: stat.rt_priority,
      oom_score_adj: Number(fs.readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim()),
      timer_slack_ns: BigInt(procNumber(pid, 'timerslack_ns', 10) ?? remote.call(NR.prctl, [PR.GET_TIMERSLACK], 'prctl(PR_GET_TIMERSLACK)')),
      dumpable: remote.call(NR.prctl, [PR.GET_DUMPABLE], 'prctl(PR_GET_DUMPABLE)'),
      child_subreaper: subreaper,
    },
    // As the process had it: a dump may have pinned its thread beside ckpt's (ptrace/cpu-pin.ts).
    affinity: maskBeforePin(pid) ?? schedGetaffinity(pid),
  };
}

/** A number /proc/PID/NAME holds, or undefined where it cannot be read (timerslack_ns wants CAP_SYS_NICE). */
function procNumber(pid: number, name: string, radix: 10 | 16): number | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/${name}`, 'utf8').trim();
    const n = radix === 16 ? parseInt(text, 16) : Number(text);
    return /^[0-9a-f]+$/i.test(text) && Number.isSafeInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

const PRIO_PROCESS = 0;
const SCHED_OTHER = 0;

/** All but dumpable, which goes last (it changes who may look at the task). */
export function restoreMisc(t: RestoreTarget, m: MiscFields, affinity: Buffer): void {
  restoreThreadSched(t, m, affinity);
  if (m.child_subreaper) t.remote.call(NR.prctl, [PR.SET_CHILD_SUBREAPER, 1], 'prctl(PR_SET_CHILD_SUBREAPER)');
  try {
    fs.writeFileSync(`/proc/${t.pid}/oom_score_adj`, `${m.oom_score_adj}\n`);
  } catch (e) {
    throw new CkptError('PERMISSION', `pid ${t.pid}: cannot set oom_score_adj ${m.oom_score_adj} (${(e as NodeJS.ErrnoException).code}): lowering it needs CAP_SYS_RESOURCE`, { pid: t.pid });
  }
}

/** What Linux keeps per thread: personality, nice, policy, affinity, timer slack. */
export function restoreThreadSched(t: RestoreTarget, m: MiscFields, affinity: Buffer): void {
  if (m.personality) t.remote.call(NR.personality, [m.personality], 'personality');
  if (m.nice) t.remote.call(NR.setpriority, [PRIO_PROCESS, 0, m.nice], `setpriority(${m.nice})`);
  if (m.policy !== SCHED_OTHER) {
    t.scratch.reset();
    const param = Buffer.alloc(8);
    param.writeInt32LE(m.rt_priority, 0);
    t.remote.call(NR.sched_setscheduler, [0, m.policy, t.scratch.put(param)], `sched_setscheduler(${m.policy})`);
  }
  if (affinity.length) {
    t.scratch.reset();
    t.remote.call(NR.sched_setaffinity, [0, affinity.length, t.scratch.put(affinity)], 'sched_setaffinity');
  }
  t.remote.call(NR.prctl, [PR.SET_TIMERSLACK, m.timer_slack_ns], 'prctl(PR_SET_TIMERSLACK)');
}

/** After creds: a uid change has reset dumpable to the system's suid_dumpable. */
export function restoreDumpable(t: RestoreTarget, m: MiscFields): void {
  t.remote.call(NR.prctl, [PR.SET_DUMPABLE, m.dumpable], 'prctl(PR_SET_DUMPABLE)');
}
