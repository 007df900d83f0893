/**
 * Credentials: uids, gids (in the TASK record) and supplementary groups.
 * Applied last in restore: once they drop, ckpt can no longer act as root there.
 */
import { Content, defineRecord } from '../image/index.js';
import { NR } from '../sys/nr.js';
import { T } from './ids.js';
import type { TaskFields } from './task.js';
import type { RestoreTarget } from './target.js';

/** Supplementary groups, u32 each. */
export const CREDS = defineRecord({ type: T.CREDS, name: 'creds', content: Content.DATA, fields: { ngroups: 'u32' } });

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

export function restoreCreds(t: RestoreTarget, task: TaskFields, groups: number[]): void {
  t.scratch.reset();
  const list = t.scratch.put(encodeGroups(groups.length ? groups : [0]));
  t.remote.call(NR.setgroups, [groups.length, list], 'setgroups');
  t.remote.call(NR.setresgid, [task.gid, task.egid, task.sgid], 'setresgid');
  t.remote.call(NR.setresuid, [task.uid, task.euid, task.suid], 'setresuid');
}
