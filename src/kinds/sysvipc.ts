/**
 * SysV IPC of a container's ipc namespace: every shared memory segment (with
 * its contents, saved once however many processes attach it), every
 * semaphore set (with its values), every message queue (with its messages,
 * read in place with MSG_COPY), and the namespace's limits.
 *
 * ckpt reaches the namespace from its own thread: setns(CLONE_NEWIPC) is
 * per thread and allowed in a multi-threaded process (sys/ns.ts), so dump
 * and restore are plain local syscalls, and the thread goes back to ckpt's
 * own ipc namespace afterwards. Restore gives every object its saved id by
 * writing the namespace's {shm,sem,msg}_next_id just before each create.
 *
 * Not kept: semaphore undo values (semadj) and the pids and times the kernel
 * keeps per object (last operation, creator pid); cuid/cgid become ckpt's.
 * A process's attach of a segment is a VMA, restored by attachShmVma.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { Content, childrenOf, defineRecord, encode, type FieldsOf, type ImageRecord } from '../image/index.js';
import { inNamespaceOf } from '../sys/ns.js';
import { NR } from '../sys/nr.js';
import { MREMAP, PAGE_SIZE, PROT } from '../sys/constants.js';
import {
  IPC, decodeMsqDs, decodeSemDs, decodeShmDs, ipcRmid, ipcSet, listIpc, msgCopy, msgget, msgsnd, semGetAll,
  semSetAll, semget, setNextId, shmLock, shmget, withShm, type IpcPerm,
} from '../sys/sysvipc.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

const PERM = { key: 'i32', id: 'i32', uid: 'u32', gid: 'u32', cuid: 'u32', cgid: 'u32', mode: 'u32' } as const;

/** The namespace's limits (/proc/sys/kernel/*); sem is SEMMSL SEMMNS SEMOPM SEMMNI. */
export const IPC_VARS = defineRecord({
  type: T.IPC_VARS, name: 'ipc_vars', content: Content.VOID,
  fields: {
    shmmax: 'u64', shmall: 'u64', shmmni: 'u32', shm_rmid_forced: 'u32', msgmax: 'u32', msgmnb: 'u32', msgmni: 'u32',
    sem_msl: 'u32', sem_mns: 'u32', sem_opm: 'u32', sem_mni: 'u32',
  },
});
/** content: the segment's bytes (size of them). cpid, lpid and the times are informational. */
export const SHM = defineRecord({
  type: T.SHM, name: 'shm', content: Content.DATA,
  fields: { ...PERM, cpid: 'i32', lpid: 'i32', size: 'u64', nattch: 'u64', atime: 'i64', dtime: 'i64', ctime: 'i64' },
});
/** content: nsems × u16, the values. */
export const SEM = defineRecord({
  type: T.SEM, name: 'sem', content: Content.DATA, fields: { ...PERM, nsems: 'u32', otime: 'i64', ctime: 'i64' },
});
/** content: the MSG records, oldest first. */
export const MSG_QUEUE = defineRecord({
  type: T.MSG_QUEUE, name: 'msg_queue', content: Content.ARRAY,
  fields: { ...PERM, qbytes: 'u64', qnum: 'u64', stime: 'i64', rtime: 'i64', ctime: 'i64' },
});
/** content: the message text. */
export const MSG = defineRecord({ type: T.MSG, name: 'msg', content: Content.DATA, fields: { mtype: 'i64' } });

export const SYSVIPC_SCHEMAS = [IPC_VARS, SHM, SEM, MSG_QUEUE, MSG] as const;

export type IpcVars = FieldsOf<typeof IPC_VARS>;
export interface SavedShm { fields: FieldsOf<typeof SHM>; data: Buffer }
export interface SavedSem { fields: FieldsOf<typeof SEM>; values: number[] }
export interface SavedMsgQueue { fields: FieldsOf<typeof MSG_QUEUE>; messages: { mtype: bigint; text: Buffer }[] }
export interface SysvIpc { vars: IpcVars; shm: SavedShm[]; sem: SavedSem[]; msg: SavedMsgQueue[] }

/** Saved in ckpt.img: larger segments are refused rather than bloating the metadata. */
export const MAX_SHM_BYTES = 16 * 1024 * 1024;
const MAX_SHM_TOTAL = 48 * 1024 * 1024;

const perm = (id: number, p: IpcPerm) => ({ key: p.key, id, uid: p.uid, gid: p.gid, cuid: p.cuid, cgid: p.cgid, mode: p.mode });

const VAR_FILES = ['shmmax', 'shmall', 'shmmni', 'shm_rmid_forced', 'msgmax', 'msgmnb', 'msgmni'] as const;
const sysctl = (name: string) => `/proc/sys/kernel/${name}`;

function readVars(): IpcVars {
  const n = (name: string) => fs.readFileSync(sysctl(name), 'utf8').trim();
  const sem = n('sem').split(/\s+/).map(Number);
  return {
    shmmax: BigInt(n('shmmax')), shmall: BigInt(n('shmall')), shmmni: Number(n('shmmni')), shm_rmid_forced: Number(n('shm_rmid_forced')),
    msgmax: Number(n('msgmax')), msgmnb: Number(n('msgmnb')), msgmni: Number(n('msgmni')),
    sem_msl: sem[0], sem_mns: sem[1], sem_opm: sem[2], sem_mni: sem[3],
  };
}

/**
 * Everything in the ipc namespace of `pid` (the tree must be frozen, so
 * nothing changes meanwhile). Reading a segment attaches it for a moment,
 * which bumps its attach time and last pid (restore does not keep those).
 */
export function dumpSysvIpc(pid: number): SysvIpc {
  return inNamespaceOf(pid, 'ipc', () => {
    const vars = readVars();
    let total = 0;
    const shm = listIpc('shm').map(({ id, ds }): SavedShm => {
      const d = decodeShmDs(ds);
      if (d.segsz > MAX_SHM_BYTES || total + d.segsz > MAX_SHM_TOTAL) {
        throw new CkptError('UNSUPPORTED', `not supported yet: SysV shm segment ${id} of pid ${pid}'s ipc namespace is ${d.segsz} bytes (at most ${MAX_SHM_BYTES} each, ${MAX_SHM_TOTAL} in all, are saved)`, { pid, resource: `shm ${id}` });
      }
      total += d.segsz;
      const data = Buffer.alloc(d.segsz);
      withShm(id, true, (io) => io.read(0, data));
      return {
        fields: { ...perm(id, d.perm), cpid: d.cpid, lpid: d.lpid, size: BigInt(d.segsz), nattch: BigInt(d.nattch), atime: d.atime, dtime: d.dtime, ctime: d.ctime },
        data,
      };
    });
    const sem = listIpc('sem').map(({ id, ds }): SavedSem => {
      const d = decodeSemDs(ds);
      return { fields: { ...perm(id, d.perm), nsems: d.nsems, otime: d.otime, ctime: d.ctime }, values: semGetAll(id, d.nsems) };
    });
    const msg = listIpc('msg').map(({ id, ds }): SavedMsgQueue => {
      const d = decodeMsqDs(ds);
      const messages: SavedMsgQueue['messages'] = [];
      for (let i = 0; i < d.qnum; i++) {
        const m = msgCopy(id, i, Math.max(d.cbytes, 1));
        if (!m) break;
        messages.push(m);
      }
      if (messages.length !== d.qnum) {
        throw new CkptError('INTERNAL', `message queue ${id} of pid ${pid}'s ipc namespace holds ${d.qnum} messages, but ${messages.length} could be read`, { pid });
      }
      return { fields: { ...perm(id, d.perm), qbytes: BigInt(d.qbytes), qnum: BigInt(d.qnum), stime: d.stime, rtime: d.rtime, ctime: d.ctime }, messages };
    });
    return { vars, shm, sem, msg };
  });
}

/** The records, to go inside the CONTAINER record. */
export function encodeSysvIpc(ipc: SysvIpc): Buffer[] {
  return [
    encode(IPC_VARS, ipc.vars),
    ...ipc.shm.map((s) => encode(SHM, s.fields, s.data)),
    ...ipc.sem.map((s) => {
      const b = Buffer.alloc(2 * s.values.length);
      s.values.forEach((v, i) => b.writeUInt16LE(v, 2 * i));
      return encode(SEM, s.fields, b);
    }),
    ...ipc.msg.map((q) => encode(MSG_QUEUE, q.fields, q.messages.map((m) => encode(MSG, { mtype: m.mtype }, m.text)))),
  ];
}

const bad = (rec: ImageRecord, what: string) =>
  new CkptError('BAD_IMAGE', `bad image: record at offset ${rec.offset} (${rec.schema ?? rec.type}): ${what}`, { offset: rec.offset });

/** Back from the records inside CONTAINER; undefined if there is no IPC_VARS (no ipc namespace saved). */
export function loadSysvIpc(records: readonly ImageRecord[]): SysvIpc | undefined {
  const vars = childrenOf(records, IPC_VARS)[0]?.fields;
  if (!vars) return undefined;
  const shm = childrenOf(records, SHM).map((r) => {
    const data = r.data ?? Buffer.alloc(0);
    if (BigInt(data.length) !== r.fields.size) throw bad(r, `shm segment ${r.fields.id} of ${r.fields.size} bytes holds ${data.length}`);
    return { fields: r.fields, data };
  });
  const sem = childrenOf(records, SEM).map((r) => {
    const data = r.data ?? Buffer.alloc(0);
    if (data.length !== 2 * r.fields.nsems || r.fields.nsems === 0) throw bad(r, `semaphore set ${r.fields.id} of ${r.fields.nsems} holds ${data.length} bytes`);
    return { fields: r.fields, values: Array.from({ length: r.fields.nsems }, (_, i) => data.readUInt16LE(2 * i)) };
  });
  const msg = childrenOf(records, MSG_QUEUE).map((r) => ({
    fields: r.fields,
    messages: childrenOf(r, MSG).map((m) => ({ mtype: m.fields.mtype, text: m.data ?? Buffer.alloc(0) })),
  }));
  for (const [what, list] of [['shm', shm], ['sem', sem], ['msg', msg]] as const) {
    const ids = new Set<number>();
    for (const o of list as { fields: { id: number } }[]) {
      if (o.fields.id < 0 || ids.has(o.fields.id)) throw new CkptError('BAD_IMAGE', `bad image: ${what} id ${o.fields.id} is negative or repeated`);
      ids.add(o.fields.id);
    }
  }
  return { vars, shm, sem, msg };
}

function writeVar(name: string, value: string): void {
  fs.writeFileSync(sysctl(name), `${value}\n`);
}

/** Create one object with exactly the saved id, or say why not. */
function createWithId(kind: 'shm' | 'sem' | 'msg', id: number, create: () => number): void {
  setNextId(kind, id);
  const got = create();
  if (got !== id) {
    ipcRmid(kind, got);
    throw new CkptError('INTERNAL', `${kind} object got id ${got} instead of the saved ${id}`);
  }
}

/**
 * Recreate every object in the ipc namespace of `initPid` (the restored
 * container's init, a fresh, empty namespace): limits first, then segments
 * with their contents, semaphore sets with their values, queues with their
 * messages. Call before any restored process attaches a segment; call
 * finishSysvIpc once they all have.
 */
export function restoreSysvIpc(initPid: number, ipc: SysvIpc): void {
  inNamespaceOf(initPid, 'ipc', () => {
    const v = ipc.vars;
    for (const name of VAR_FILES) if (name !== 'shm_rmid_forced') writeVar(name, String(v[name]));
    writeVar('sem', `${v.sem_msl} ${v.sem_mns} ${v.sem_opm} ${v.sem_mni}`);
    for (const s of ipc.shm) {
      const f = s.fields;
      // A removed but still attached segment has lost its key: it is re-created private.
      const key = f.mode & IPC.SHM_DEST ? IPC.PRIVATE : f.key;
      createWithId('shm', f.id, () => shmget(key, Number(f.size), IPC.CREAT | IPC.EXCL | (f.mode & 0o777)));
      withShm(f.id, false, (io) => io.write(0, s.data));
      ipcSet('shm', f.id, f);
      if (f.mode & IPC.SHM_LOCKED) shmLock(f.id);
    }
    for (const s of ipc.sem) {
      const f = s.fields;
      createWithId('sem', f.id, () => semget(f.key, f.nsems, IPC.CREAT | IPC.EXCL | (f.mode & 0o777)));
      semSetAll(f.id, s.values);
      ipcSet('sem', f.id, f);
    }
    for (const q of ipc.msg) {
      const f = q.fields;
      // A queue's msg_qbytes starts as msgmnb; raising it by IPC_SET needs CAP_SYS_RESOURCE, lowering msgmnb does not.
      const qbytes = Number(f.qbytes);
      if (qbytes !== v.msgmnb) writeVar('msgmnb', String(qbytes));
      try {
        createWithId('msg', f.id, () => msgget(f.key, IPC.CREAT | IPC.EXCL | (f.mode & 0o777)));
      } finally {
        if (qbytes !== v.msgmnb) writeVar('msgmnb', String(v.msgmnb));
      }
      for (const m of q.messages) msgsnd(f.id, m.mtype, m.text);
      ipcSet('msg', f.id, f, qbytes);
    }
  });
}

/**
 * After every restored process has attached its segments: remove the
 * segments that were removed at dump time while still attached (they go
 * when the last process detaches, as before), and set shm_rmid_forced
 * last, since setting it destroys segments nobody has attached yet.
 */
export function finishSysvIpc(initPid: number, ipc: SysvIpc): void {
  inNamespaceOf(initPid, 'ipc', () => {
    for (const s of ipc.shm) if (s.fields.mode & IPC.SHM_DEST) ipcRmid('shm', s.fields.id);
    if (ipc.vars.shm_rmid_forced) writeVar('shm_rmid_forced', String(ipc.vars.shm_rmid_forced));
  });
}

// ---- the attach of a segment: a VMA ----------------------------------------------

/**
 * Which segment a VMA maps, from its /proc/PID/maps line: the path is
 * '/SYSV<key, 8 hex digits>' (deleted) and the inode column is the shm id.
 */
export function shmOfVma(v: { path: string; ino: number; shared: boolean }): { key: number; shmid: number } | undefined {
  const m = /^\/SYSV([0-9a-f]{8})$/.exec(v.path);
  if (!m || !v.shared) return undefined;
  return { key: Number.parseInt(m[1], 16) | 0, shmid: v.ino };
}

export interface ShmVma {
  start: number;
  end: number;
  /** Offset into the segment, in bytes (non-zero when part of an attach was unmapped or split off). */
  pgoff: number;
  /** PROT_* of the VMA. */
  prot: number;
  shmid: number;
  /** The segment's size (SHM record), to know how much one shmat maps. */
  size: number;
}

/**
 * Attach the segment in the restored task so that it covers exactly
 * [start, end) at the saved offset: one remote shmat at the address when the
 * VMA is a whole attach; otherwise shmat anywhere, mremap the saved part into
 * place and unmap the rest. The segment must exist (restoreSysvIpc) and the
 * range must be free. A read-only VMA is attached SHM_RDONLY, an executable
 * one SHM_EXEC; a later mprotect (protectVmas) sets the rest.
 */
export function attachShmVma(t: RestoreTarget, v: ShmVma): void {
  const len = v.end - v.start;
  const whole = Math.ceil(v.size / PAGE_SIZE) * PAGE_SIZE;
  const flags = (v.prot & PROT.WRITE ? 0 : IPC.SHM_RDONLY) | (v.prot & PROT.EXEC ? IPC.SHM_EXEC : 0);
  const what = `shm ${v.shmid} at 0x${v.start.toString(16)}`;
  if (v.pgoff === 0 && len === whole) {
    const at = t.remote.call(NR.shmat, [v.shmid, v.start, flags], `shmat(${what})`);
    if (at !== v.start) throw new CkptError('INTERNAL', `pid ${t.pid}: shmat(${what}) attached at 0x${at.toString(16)}`, { pid: t.pid });
    return;
  }
  if (v.pgoff + len > whole) throw new CkptError('BAD_IMAGE', `bad image: the VMA of ${what} runs past the segment's ${v.size} bytes`);
  const tmp = t.remote.call(NR.shmat, [v.shmid, 0, flags], `shmat(${what}, anywhere)`);
  t.remote.call(NR.mremap, [tmp + v.pgoff, len, len, MREMAP.MAYMOVE | MREMAP.FIXED, v.start], `mremap(${what})`);
  if (v.pgoff > 0) t.remote.call(NR.munmap, [tmp, v.pgoff], `munmap(head of ${what})`);
  if (v.pgoff + len < whole) t.remote.call(NR.munmap, [tmp + v.pgoff + len, whole - v.pgoff - len], `munmap(tail of ${what})`);
}
