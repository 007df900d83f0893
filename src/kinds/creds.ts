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
import { callAll, throwIfFailed, type RestoreTarget, type TargetCall } from './target.js';

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

/** capset's arguments (header and data, put in the scratch area). */
function capsetArgs(t: RestoreTarget, eff: bigint, prm: bigint, inh: bigint): number[] {
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32LE(CAP_VERSION_3, 0);
  const data = Buffer.alloc(24);
  const lo = (v: bigint) => Number(v & 0xffffffffn);
  const hi = (v: bigint) => Number((v >> 32n) & 0xffffffffn);
  data.writeUInt32LE(lo(eff), 0); data.writeUInt32LE(lo(prm), 4); data.writeUInt32LE(lo(inh), 8);
  data.writeUInt32LE(hi(eff), 12); data.writeUInt32LE(hi(prm), 16); data.writeUInt32LE(hi(inh), 20);
  return [t.scratch.put(hdr), t.scratch.put(data)];
}

function capsetOrRefuse(t: RestoreTarget, r: bigint, prm: bigint, had: bigint): void {
  if (r === BigInt(-E.EPERM)) {
    const extra = prm & ~had;
    throw new CkptError('PERMISSION', `pid ${t.pid}: the image holds capabilities 0x${extra.toString(16)} that ckpt does not have; refusing to grant them`, { pid: t.pid, syscall: 'capset' });
  }
  if (r < 0n) throw new CkptError('SYSCALL', `remote capset failed: errno ${-r}, pid ${t.pid}`, { pid: t.pid, syscall: 'capset' });
}

export function restoreCreds(t: RestoreTarget, task: TaskFields, groups: number[], c: CredsFields): void {
  const now = readStatus(t.pid);
  const full = now.capPrm;
  // In this order, in one batch (ptrace/batch.ts); the first failure is thrown as a single call's would be.
  t.scratch.reset();
  const calls: TargetCall[] = [];
  const capsets = new Map<number, { prm: bigint }>();
  const capset = (eff: bigint, prm: bigint, inh: bigint) => {
    capsets.set(calls.length, { prm });
    calls.push({ nr: NR.capset, args: capsetArgs(t, eff, prm, inh), what: 'capset' });
  };
  calls.push({ nr: NR.setgroups, args: [groups.length, t.scratch.put(encodeGroups(groups.length ? groups : [0]))], what: 'setgroups' });
  // Keep the permitted set across the uid change, to finish the job with it.
  calls.push({ nr: NR.prctl, args: [PR.SET_KEEPCAPS, 1], what: 'prctl(PR_SET_KEEPCAPS)' });
  calls.push({ nr: NR.setresgid, args: [task.gid, task.egid, task.sgid], what: 'setresgid' });
  calls.push({ nr: NR.setresuid, args: [task.uid, task.euid, task.suid], what: 'setresuid' });
  capset(full, full, c.cap_inh & now.capBnd);
  // setfs[ug]id need CAP_SETUID/CAP_SETGID in the effective set, just raised.
  calls.push({ nr: NR.setfsgid, args: [task.fsgid], what: 'setfsgid' });
  calls.push({ nr: NR.setfsuid, args: [task.fsuid], what: 'setfsuid' });
  for (let cap = 0; cap < 64; cap++) {
    const bit = 1n << BigInt(cap);
    if ((now.capBnd & bit) && !(c.cap_bnd & bit)) calls.push({ nr: NR.prctl, args: [PR.CAPBSET_DROP, cap], what: `prctl(PR_CAPBSET_DROP, ${cap})` });
  }
  for (let cap = 0; cap < 64; cap++) {
    if (c.cap_amb & (1n << BigInt(cap))) calls.push({ nr: NR.prctl, args: [PR.CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0], what: `prctl(PR_CAP_AMBIENT_RAISE, ${cap})` });
  }
  calls.push({ nr: NR.prctl, args: [PR.SET_SECUREBITS, c.securebits], what: 'prctl(PR_SET_SECUREBITS)' });
  capset(c.cap_eff, c.cap_prm, c.cap_inh);
  if (c.no_new_privs) calls.push({ nr: NR.prctl, args: [PR.SET_NO_NEW_PRIVS, 1, 0, 0, 0], what: 'prctl(PR_SET_NO_NEW_PRIVS)' });
  const got = callAll(t, calls);
  got.forEach((r, i) => {
    const cs = capsets.get(i);
    if (cs) capsetOrRefuse(t, r, cs.prm, full);
    else throwIfFailed(t, calls[i], r);
  });
}
