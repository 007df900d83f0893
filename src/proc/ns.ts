/** /proc/PID/ns/*: which namespace of each kind a process is in, by the nsfs inode. */
import { readProcLink } from './read.js';

export const NS_KINDS = ['pid', 'mnt', 'uts', 'ipc', 'net', 'user', 'cgroup', 'time'] as const;
export type NsKind = (typeof NS_KINDS)[number];
/** The inode of each namespace; a kind the kernel lacks is absent. */
export type NsIds = Partial<Record<NsKind, bigint>>;

/** 'pid:[4026531836]' → 4026531836n; undefined if the link is not of that kind. */
export function parseNsLink(kind: NsKind, link: string): bigint | undefined {
  const m = /^([a-z_]+):\[([0-9]+)\]$/.exec(link);
  return m && m[1] === kind ? BigInt(m[2]) : undefined;
}

export function readNsIds(pid: number): NsIds {
  const ids: NsIds = {};
  for (const kind of NS_KINDS) {
    let link: string;
    try {
      link = readProcLink(pid, `ns/${kind}`);
    } catch (e) {
      // A kernel without this namespace kind has no link; a vanished process is an error.
      if ((e as { data?: { errnoName?: string } }).data?.errnoName === 'ENOENT' && kind !== 'pid') continue;
      throw e;
    }
    const id = parseNsLink(kind, link);
    if (id !== undefined) ids[kind] = id;
  }
  return ids;
}
