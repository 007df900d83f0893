/**
 * SysV IPC syscalls that ckpt makes itself, in whatever ipc namespace its
 * thread is in (sys/ns.ts inNamespaceOf), and the x86_64 layouts of
 * ipc64_perm, shmid64_ds, semid64_ds and msqid64_ds (x86_64 needs no IPC_64).
 */
import fs from 'node:fs';
import { allocNative, syscall, trySyscall, type NativeMemory } from './libc.js';
import { NR } from './nr.js';
import { E } from './errno.js';

const ENOMSG = 42, EIDRM = 43;

export const IPC = {
  CREAT: 0o1000, EXCL: 0o2000, NOWAIT: 0o4000, PRIVATE: 0,
  RMID: 0, SET: 1, STAT: 2,
  SHM_LOCK: 11, SHM_UNLOCK: 12, SHM_INFO: 14, SHM_STAT_ANY: 15,
  SEM_INFO: 19, SEM_STAT_ANY: 20, GETALL: 13, SETALL: 17,
  MSG_INFO: 12, MSG_STAT_ANY: 13,
  SHM_RDONLY: 0o10000, SHM_RND: 0o20000, SHM_REMAP: 0o40000, SHM_EXEC: 0o100000,
  MSG_NOERROR: 0o10000, MSG_COPY: 0o40000,
  /** In shm_perm.mode: marked for removal, still attached. */
  SHM_DEST: 0o1000,
  /** In shm_perm.mode: locked in memory (SHM_LOCK). */
  SHM_LOCKED: 0o2000,
} as const;

export interface IpcPerm {
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  mode: number;
  seq: number;
}

export const IPC_PERM_SIZE = 48;
export const SHMID_DS_SIZE = 112;
export const SEMID_DS_SIZE = 104;
export const MSQID_DS_SIZE = 120;

export function decodePerm(b: Buffer): IpcPerm {
  return {
    key: b.readInt32LE(0), uid: b.readUInt32LE(4), gid: b.readUInt32LE(8), cuid: b.readUInt32LE(12),
    cgid: b.readUInt32LE(16), mode: b.readUInt32LE(20), seq: b.readUInt16LE(24),
  };
}

export interface ShmDs { perm: IpcPerm; segsz: number; atime: bigint; dtime: bigint; ctime: bigint; cpid: number; lpid: number; nattch: number }
export function decodeShmDs(b: Buffer): ShmDs {
  return {
    perm: decodePerm(b), segsz: Number(b.readBigUInt64LE(48)), atime: b.readBigInt64LE(56), dtime: b.readBigInt64LE(64),
    ctime: b.readBigInt64LE(72), cpid: b.readInt32LE(80), lpid: b.readInt32LE(84), nattch: Number(b.readBigUInt64LE(88)),
  };
}

export interface SemDs { perm: IpcPerm; otime: bigint; ctime: bigint; nsems: number }
export function decodeSemDs(b: Buffer): SemDs {
  return { perm: decodePerm(b), otime: b.readBigInt64LE(48), ctime: b.readBigInt64LE(64), nsems: Number(b.readBigUInt64LE(80)) };
}

export interface MsqDs { perm: IpcPerm; stime: bigint; rtime: bigint; ctime: bigint; cbytes: number; qnum: number; qbytes: number; lspid: number; lrpid: number }
export function decodeMsqDs(b: Buffer): MsqDs {
  return {
    perm: decodePerm(b), stime: b.readBigInt64LE(48), rtime: b.readBigInt64LE(56), ctime: b.readBigInt64LE(64),
    cbytes: Number(b.readBigUInt64LE(72)), qnum: Number(b.readBigUInt64LE(80)), qbytes: Number(b.readBigUInt64LE(88)),
    lspid: b.readInt32LE(96), lrpid: b.readInt32LE(100),
  };
}

/** The perm part of an IPC_SET buffer: only uid, gid and the low 9 mode bits are taken by the kernel. */
function encodeSetPerm(b: Buffer, p: { uid: number; gid: number; mode: number }): void {
  b.fill(0);
  b.writeUInt32LE(p.uid, 4);
  b.writeUInt32LE(p.gid, 8);
  b.writeUInt32LE(p.mode & 0o777, 20);
}

let mem: NativeMemory | undefined;
/** One native block for the ds structures (the first 256 bytes) and data. */
function buf(size = 256): NativeMemory {
  if (!mem || mem.size < size) mem = allocNative(Math.max(size, 64 * 1024));
  return mem;
}

type Kind = 'shm' | 'sem' | 'msg';
const CTL = { shm: NR.shmctl, sem: NR.semctl, msg: NR.msgctl } as const;
const INFO = { shm: IPC.SHM_INFO, sem: IPC.SEM_INFO, msg: IPC.MSG_INFO } as const;
const STAT_ANY = { shm: IPC.SHM_STAT_ANY, sem: IPC.SEM_STAT_ANY, msg: IPC.MSG_STAT_ANY } as const;

function ctl(kind: Kind, id: number, cmd: number, arg: bigint | number, what: string): number {
  // semctl takes (semid, semnum, cmd, arg); shmctl and msgctl (id, cmd, buf).
  return kind === 'sem'
    ? syscall(NR.semctl, [id, 0, cmd, arg], { what: `semctl(${what})`, resource: `semaphore set ${id}` })
    : syscall(CTL[kind], [id, cmd, arg], { what: `${kind}ctl(${what})`, resource: `${kind === 'shm' ? 'shm segment' : 'message queue'} ${id}` });
}

/**
 * Every object of one kind in the calling thread's ipc namespace, by index:
 * [id, the raw *_ds bytes]. *_INFO gives the highest index in use (−1, which
 * the C library reads as EPERM, when there is none); *_STAT_ANY reads an
 * index without permission checks and returns its id.
 */
export function listIpc(kind: Kind): { id: number; ds: Buffer }[] {
  const m = buf();
  const n = kind === 'sem' ? trySyscall(NR.semctl, 0, 0, INFO[kind], m.addr) : trySyscall(CTL[kind], 0, INFO[kind], m.addr);
  if (n === -E.EPERM) return [];
  if (n < 0) ctl(kind, 0, INFO[kind], m.addr, `${kind.toUpperCase()}_INFO`);
  const out: { id: number; ds: Buffer }[] = [];
  for (let idx = 0; idx <= n; idx++) {
    m.buf.fill(0, 0, 256);
    const id = kind === 'sem' ? trySyscall(NR.semctl, idx, 0, STAT_ANY[kind], m.addr) : trySyscall(CTL[kind], idx, STAT_ANY[kind], m.addr);
    if (id === -E.EINVAL || id === -EIDRM) continue;
    if (id < 0) ctl(kind, idx, STAT_ANY[kind], m.addr, `${kind.toUpperCase()}_STAT_ANY`);
    out.push({ id, ds: Buffer.from(m.buf.subarray(0, 256)) });
  }
  return out;
}

/** Write one of the ipc namespace's next-id sysctls: the next object of that kind gets exactly this id. */
export function setNextId(kind: Kind, id: number): void {
  fs.writeFileSync(`/proc/sys/kernel/${kind}_next_id`, `${id}\n`);
}

export function shmget(key: number, size: number, flags: number): number {
  return syscall(NR.shmget, [key, size, flags], { what: 'shmget', resource: `key 0x${(key >>> 0).toString(16)}` });
}
export function semget(key: number, nsems: number, flags: number): number {
  return syscall(NR.semget, [key, nsems, flags], { what: 'semget', resource: `key 0x${(key >>> 0).toString(16)}` });
}
export function msgget(key: number, flags: number): number {
  return syscall(NR.msgget, [key, flags], { what: 'msgget', resource: `key 0x${(key >>> 0).toString(16)}` });
}

/** IPC_SET of owner and mode; a queue's msg_qbytes is set too, so it must be given. */
export function ipcSet(kind: Kind, id: number, p: { uid: number; gid: number; mode: number }, qbytes?: number): void {
  const m = buf();
  m.buf.fill(0, 0, 256);
  encodeSetPerm(m.buf, p);
  if (kind === 'msg') {
    if (qbytes === undefined) throw new Error('ipcSet of a message queue without its msg_qbytes');
    m.buf.writeBigUInt64LE(BigInt(qbytes), 88);
  }
  ctl(kind, id, IPC.SET, m.addr, 'IPC_SET');
}

export function ipcRmid(kind: Kind, id: number): void { ctl(kind, id, IPC.RMID, 0, 'IPC_RMID'); }
export function shmLock(id: number): void { ctl('shm', id, IPC.SHM_LOCK, 0, 'SHM_LOCK'); }

/** The values of a semaphore set (each an unsigned short). */
export function semGetAll(id: number, nsems: number): number[] {
  const m = buf(nsems * 2);
  ctl('sem', id, IPC.GETALL, m.addr, 'GETALL');
  return Array.from({ length: nsems }, (_, i) => m.buf.readUInt16LE(i * 2));
}

export function semSetAll(id: number, values: number[]): void {
  const m = buf(values.length * 2);
  values.forEach((v, i) => m.buf.writeUInt16LE(v, i * 2));
  ctl('sem', id, IPC.SETALL, m.addr, 'SETALL');
}

/**
 * The message at position `index` of queue `id`, read without taking it out
 * (MSG_COPY, which needs CONFIG_CHECKPOINT_RESTORE); undefined past the end.
 */
export function msgCopy(id: number, index: number, maxSize: number): { mtype: bigint; text: Buffer } | undefined {
  const m = buf(8 + maxSize);
  const r = trySyscall(NR.msgrcv, id, m.addr, maxSize, index, IPC.NOWAIT | IPC.MSG_COPY);
  if (r === -ENOMSG) return undefined;
  if (r < 0) syscall(NR.msgrcv, [id, m.addr, maxSize, index, IPC.NOWAIT | IPC.MSG_COPY], { what: 'msgrcv(MSG_COPY)', resource: `message queue ${id}` });
  return { mtype: m.buf.readBigInt64LE(0), text: Buffer.from(m.buf.subarray(8, 8 + r)) };
}

export function msgsnd(id: number, mtype: bigint, text: Buffer): void {
  const m = buf(8 + text.length);
  m.buf.writeBigInt64LE(mtype, 0);
  text.copy(m.buf, 8);
  syscall(NR.msgsnd, [id, m.addr, text.length, IPC.NOWAIT], { what: 'msgsnd', resource: `message queue ${id}` });
}

/**
 * The contents of a shm segment, through a mapping of ckpt's own: shmat,
 * read or write through /proc/self/mem (no native pointer needed), shmdt.
 */
export function withShm<R>(id: number, readOnly: boolean, fn: (io: { read(off: number, into: Buffer): void; write(off: number, data: Buffer): void }) => R): R {
  const addr = syscall(NR.shmat, [id, 0, readOnly ? IPC.SHM_RDONLY : 0], { what: 'shmat', resource: `shm segment ${id}` });
  const fd = fs.openSync('/proc/self/mem', readOnly ? 'r' : 'r+');
  try {
    return fn({
      read(off, into) {
        for (let got = 0; got < into.length;) {
          const n = fs.readSync(fd, into, got, into.length - got, addr + off + got);
          if (n <= 0) throw new Error(`short read of shm segment ${id} at ${off + got}`);
          got += n;
        }
      },
      write(off, data) {
        for (let done = 0; done < data.length;) done += fs.writeSync(fd, data, done, data.length - done, addr + off + done);
      },
    });
  } finally {
    fs.closeSync(fd);
    trySyscall(NR.shmdt, addr);
  }
}
