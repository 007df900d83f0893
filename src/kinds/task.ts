/**
 * The task record: the fields of OpenVZ's cpt_task_image that a userspace
 * dump can know. Every ID is the one the task's own pid namespace sees
 * (the last value of NSpid/NStgid/NSpgid/NSsid).
 */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { innermost, type Stat, type Status } from '../proc/index.js';
import { T } from './ids.js';

export const TASK = defineRecord({
  type: T.TASK, name: 'task', content: Content.VOID,
  fields: {
    state: 'str4', flags: 'u32', pid: 'u32', tgid: 'u32', ppid: 'u32', rppid: 'u32',
    pgrp: 'u32', session: 'u32', leader: 'u32', exit_code: 'i32', exit_signal: 'i32',
    pdeath_signal: 'i32', uid: 'u32', euid: 'u32', suid: 'u32', fsuid: 'u32',
    gid: 'u32', egid: 'u32', sgid: 'u32', fsgid: 'u32', comm: 'str16', tls: 'u64',
    utime: 'u64', stime: 'u64', start_time: 'u64', nvcsw: 'u64', nivcsw: 'u64',
    min_flt: 'u64', maj_flt: 'u64',
  },
});
export type TaskFields = FieldsOf<typeof TASK>;


/** The task record from /proc; fs_base (TLS) and pdeath_signal come from ptrace. */
export function taskFields(stat: Stat, status: Status, fsBase: bigint, pdeathSignal: number): TaskFields {
  const pid = innermost(status.nspid, status.pid);
  const session = innermost(status.nssid, stat.session);
  const comm = Buffer.from(status.name, 'utf8').length <= 15 ? status.name : stat.comm.slice(0, 15);
  return {
    state: status.state, flags: stat.flags >>> 0, pid, tgid: innermost(status.nstgid, status.tgid),
    ppid: status.ppid, rppid: status.ppid, pgrp: innermost(status.nspgid, stat.pgrp), session,
    leader: session === pid ? 1 : 0, exit_code: stat.exit_code, exit_signal: stat.exit_signal,
    pdeath_signal: pdeathSignal,
    uid: status.uid[0], euid: status.uid[1], suid: status.uid[2], fsuid: status.uid[3],
    gid: status.gid[0], egid: status.gid[1], sgid: status.gid[2], fsgid: status.gid[3],
    comm, tls: fsBase, utime: BigInt(stat.utime), stime: BigInt(stat.stime),
    start_time: BigInt(stat.starttime), nvcsw: BigInt(status.voluntaryCtxtSwitches),
    nivcsw: BigInt(status.nonvoluntaryCtxtSwitches), min_flt: BigInt(stat.minflt),
    maj_flt: BigInt(stat.majflt),
  };
}
