/**
 * Credentials: uids and gids (in the TASK record), supplementary groups, the
 * five capability sets, securebits and no_new_privs. Applied last in restore:
 * once they drop, ckpt can no longer act with root's rights in the task.
 * A restore never hands out capabilities ckpt itself lacks: capset fails.
 */
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { readStatus, type Status } from '../proc/index.js';
import { NR } from '../sys/nr.js';
import { PR, PR_CAP_AMBIENT_RAISE } from '../sys/constants.js';
import { E } from '../sys/errno.js';
import { T } from './ids.js';
import type { TaskFields } from './task.js';
import type { RestoreTarget } from './target.js';

/** content: the supplementary groups, u32 each. */
export const CREDS = defineRecord({
  type: T.CREDS, name: 'creds', content: Content.DATA,
  fields: {
    ngroups: 'u32', cap_inh: 'u64', cap_prm: 'u64', cap_eff: 'u64', cap_bnd: 'u64', cap_amb: 'u64',
    securebits: 'u32', no_new_privs: 'u32',
  },
});
export type CredsFields = FieldsOf<typeof CREDS>;

export function encodeGroups(groups: number[]): Buffer {
  const buf = Buffer.alloc(groups.length * 4);
  groups.forEach((g, i) => buf.writeUInt32LE(g, i * 4));
  return buf;
}

export function decodeGroups(buf: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= buf.length; i += 4) out.push(buf.readUInt32LE(i));
  return out;
}

export function credsFields(status: Status, securebits: number): CredsFields {
  return {
    ngroups: status.groups.length, cap_inh: status.capInh, cap_prm: status.capPrm, cap_eff: status.capEff,
    cap_bnd: status.capBnd, cap_amb: status.capAmb, securebits, no_new_privs: status.noNewPrivs ? 1 : 0,
  };
}

const CAP_VERSION_3 = 0x20080522;

function capset(t: RestoreTarget, eff: bigint, prm: bigint, inh: bigint): bigint {
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32LE(CAP_VERSION_3, 0);
  const data = Buffer.alloc(24);
  const lo = (v: bigint) => Number(v & 0xffffffffn);
  const hi = (v: bigint) => Number((v >> 32n) & 0xffffffffn);
  data.writeUInt32LE(lo(eff), 0); data.writeUInt32LE(lo(prm), 4); data.writeUInt32LE(lo(inh), 8);
  data.writeUInt32LE(hi(eff), 12); data.writeUInt32LE(hi(prm), 16); data.writeUInt32LE(hi(inh), 20);
  t.scratch.reset();
  return t.remote.raw(NR.capset, [t.scratch.put(hdr), t.scratch.put(data)]);
}

function capsetOrRefuse(t: RestoreTarget, eff: bigint, prm: bigint, inh: bigint, had: bigint): void {
  const r = capset(t, eff, prm, inh);
  if (r === BigInt(-E.EPERM)) {
    const extra = prm & ~had;
    throw new CkptError('PERMISSION', `pid ${t.pid}: the image holds capabilities 0x${extra.toString(16)} that ckpt does not have; refusing to grant them`, { pid: t.pid, syscall: 'capset' });
  }
  if (r < 0n) throw new CkptError('SYSCALL', `remote capset failed: errno ${-r}, pid ${t.pid}`, { pid: t.pid, syscall: 'capset' });
}

export function restoreCreds(t: RestoreTarget, task: TaskFields, groups: number[], c: CredsFields): void {
  const now = readStatus(t.pid);
  const full = now.capPrm;
  t.scratch.reset();
  t.remote.call(NR.setgroups, [groups.length, t.scratch.put(encodeGroups(groups.length ? groups : [0]))], 'setgroups');
  // Keep the permitted set across the uid change, to finish the job with it.
  t.remote.call(NR.prctl, [PR.SET_KEEPCAPS, 1], 'prctl(PR_SET_KEEPCAPS)');
  t.remote.call(NR.setresgid, [task.gid, task.egid, task.sgid], 'setresgid');
  t.remote.call(NR.setresuid, [task.uid, task.euid, task.suid], 'setresuid');
  capsetOrRefuse(t, full, full, c.cap_inh & now.capBnd, full);
  // setfs[ug]id need CAP_SETUID/CAP_SETGID in the effective set, just raised.
  t.remote.call(NR.setfsgid, [task.fsgid]);
  t.remote.call(NR.setfsuid, [task.fsuid]);
  for (let cap = 0; cap < 64; cap++) {
    const bit = 1n << BigInt(cap);
    if ((now.capBnd & bit) && !(c.cap_bnd & bit)) t.remote.call(NR.prctl, [PR.CAPBSET_DROP, cap], `prctl(PR_CAPBSET_DROP, ${cap})`);
  }
  for (let cap = 0; cap < 64; cap++) {
    if (c.cap_amb & (1n << BigInt(cap))) t.remote.call(NR.prctl, [PR.CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0], `prctl(PR_CAP_AMBIENT_RAISE, ${cap})`);
  }
  t.remote.call(NR.prctl, [PR.SET_SECUREBITS, c.securebits], 'prctl(PR_SET_SECUREBITS)');
  capsetOrRefuse(t, c.cap_eff, c.cap_prm, c.cap_inh, full);
  if (c.no_new_privs) t.remote.call(NR.prctl, [PR.SET_NO_NEW_PRIVS, 1, 0, 0, 0], 'prctl(PR_SET_NO_NEW_PRIVS)');
}
