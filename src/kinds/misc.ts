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
import type { RemoteCaller } from '../ptrace/remote.js';
import type { TraceeMemory } from '../ptrace/memory.js';
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

export function dumpMisc(pid: number, stat: Stat, remote: RemoteCaller, mem: TraceeMemory, scratch: number): { fields: MiscFields; affinity: Buffer } {
  remote.call(NR.prctl, [PR.GET_CHILD_SUBREAPER, scratch], 'prctl(PR_GET_CHILD_SUBREAPER)');
  const subreaper = mem.read(scratch, 4).readInt32LE(0);
  return {
    fields: {
      personality: remote.call(NR.personality, [0xffffffff], 'personality'),
      nice: stat.nice, policy: stat.policy, rt_priority: stat.rt_priority,
      oom_score_adj: Number(fs.readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim()),
      timer_slack_ns: BigInt(remote.call(NR.prctl, [PR.GET_TIMERSLACK], 'prctl(PR_GET_TIMERSLACK)')),
      dumpable: remote.call(NR.prctl, [PR.GET_DUMPABLE], 'prctl(PR_GET_DUMPABLE)'),
      child_subreaper: subreaper ? 1 : 0,
    },
    affinity: schedGetaffinity(pid),
  };
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
