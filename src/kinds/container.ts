/**
 * A container's own state, in one top-level CONTAINER record: which
 * namespaces the tree owns (a restore makes them anew), and what is in them
 * that belongs to no process: the uts names and the SysV IPC objects. A
 * plain tree (in ckpt's own namespaces) has no CONTAINER record.
 *
 * Mounts are not saved: the restored container gets a copy of the host's
 * mounts, made private, with its own proc on /proc (kinds/mntns.ts).
 */
import { CkptError } from '../errors.js';
import { Content, childrenOf, defineRecord, encode, type ImageRecord } from '../image/index.js';
import { CLONE } from '../sys/constants.js';
import { T } from './ids.js';
import { UTS_NS, dumpUts, restoreUts, type UtsFields } from './uts.js';
import { dumpSysvIpc, encodeSysvIpc, finishSysvIpc, loadSysvIpc, restoreSysvIpc, type SysvIpc } from './sysvipc.js';
import { setupContainerMounts } from './mntns.js';
import type { RestoreTarget } from './target.js';

/** ns_flags: the CLONE_NEW* flags of the namespaces the tree owns. content: UTS_NS, IPC_VARS, SHM, SEM, MSG_QUEUE. */
export const CONTAINER = defineRecord({ type: T.CONTAINER, name: 'container', content: Content.ARRAY, fields: { ns_flags: 'u32', init_pid: 'u32' } });

export const CONTAINER_NS_FLAGS = CLONE.NEWPID | CLONE.NEWNS | CLONE.NEWUTS | CLONE.NEWIPC;

export interface ContainerImage {
  nsFlags: number;
  /** The host pid of the init at dump time (informational). */
  initPid: number;
  uts: UtsFields;
  ipc: SysvIpc;
}

/** Read what the container at `initPid` owns (its tree frozen). */
export function dumpContainer(initPid: number): ContainerImage {
  return { nsFlags: CONTAINER_NS_FLAGS, initPid, uts: dumpUts(initPid), ipc: dumpSysvIpc(initPid) };
}

export function encodeContainer(c: ContainerImage): Buffer {
  return encode(CONTAINER, { ns_flags: c.nsFlags, init_pid: c.initPid }, [encode(UTS_NS, c.uts), ...encodeSysvIpc(c.ipc)]);
}

/** The CONTAINER record among the image's top-level records, or undefined for a plain tree. */
export function loadContainer(records: readonly ImageRecord[]): ContainerImage | undefined {
  const found = childrenOf(records, CONTAINER);
  if (found.length === 0) return undefined;
  if (found.length > 1) throw new CkptError('BAD_IMAGE', `bad image: ${found.length} container records`, { offset: found[1].offset });
  const rec = found[0];
  if (rec.fields.ns_flags !== CONTAINER_NS_FLAGS) {
    throw new CkptError('UNSUPPORTED', `not supported yet: a container with namespace flags 0x${rec.fields.ns_flags.toString(16)}`, { offset: rec.offset });
  }
  const children = rec.children ?? [];
  const uts = childrenOf(children, UTS_NS)[0]?.fields;
  const ipc = loadSysvIpc(children);
  if (!uts || !ipc) throw new CkptError('BAD_IMAGE', `bad image: the container record at offset ${rec.offset} lacks its uts or ipc records`, { offset: rec.offset });
  return { nsFlags: rec.fields.ns_flags, initPid: rec.fields.init_pid, uts, ipc };
}

/**
 * In the restored init, right after its clone3 into new namespaces and
 * before any other process of the tree is cloned or maps anything:
 * private mounts and a fresh /proc, the uts names, the SysV IPC objects.
 */
export function restoreContainer(init: RestoreTarget, c: ContainerImage): void {
  setupContainerMounts(init);
  restoreUts(init, c.uts);
  restoreSysvIpc(init.pid, c.ipc);
}

/** Once every process of the tree has mapped its VMAs (SysV attaches included). */
export function finishContainer(init: RestoreTarget, c: ContainerImage): void {
  finishSysvIpc(init.pid, c.ipc);
}

/** What `ckpt show` prints of it: names, limits, and each object without its bytes. */
export function containerJson(c: ContainerImage): Record<string, unknown> {
  const perm = (f: { key: number; id: number; uid: number; gid: number; mode: number }) =>
    ({ id: f.id, key: `0x${(f.key >>> 0).toString(16).padStart(8, '0')}`, uid: f.uid, gid: f.gid, mode: `0${(f.mode & 0o7777).toString(8)}` });
  return {
    namespaces: `0x${c.nsFlags.toString(16)}`, init_pid: c.initPid, hostname: c.uts.hostname, domainname: c.uts.domainname,
    shm: c.ipc.shm.map((s) => ({ ...perm(s.fields), size: Number(s.fields.size), nattch: Number(s.fields.nattch) })),
    sem: c.ipc.sem.map((s) => ({ ...perm(s.fields), values: s.values })),
    msg: c.ipc.msg.map((q) => ({ ...perm(q.fields), qbytes: Number(q.fields.qbytes), messages: q.messages.length, bytes: q.messages.reduce((n, m) => n + m.text.length, 0) })),
  };
}
