/**
 * Open files: regular files, directories, a few character devices, and (with
 * --shell-job) the terminal. Restore: ckpt opens the file itself, seeks, and
 * the target takes it with pidfd_getfd, then dup3 to the saved fd number.
 */
import fs from 'node:fs';
import tty from 'node:tty';
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { readFdLink, readFdinfo } from '../proc/index.js';
import { NR } from '../sys/nr.js';
import { F, O, SEEK_SET } from '../sys/constants.js';
import { fcntl, lseek } from '../sys/syscalls.js';
import { createPipe, dumpPipe, type SavedPipe } from './pipes.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

export enum FdKind { REG = 1, DIR = 2, CHR = 3, TTY = 4, PIPE = 5 }

export const FD = defineRecord({
  type: T.FD, name: 'fd', content: Content.NAME,
  fields: {
    fd: 'u32', kind: 'u32', flags: 'u32', cloexec: 'u32', pos: 'addr', mode: 'u32',
    dev: 'u64', ino: 'u64', rdev: 'u64', size: 'addr', mtime_ns: 'u64',
  },
});
export type FdFields = FieldsOf<typeof FD>;
export interface SavedFd { fields: FdFields; path: string }

const S_IFMT = 0o170000, S_IFREG = 0o100000, S_IFDIR = 0o040000, S_IFCHR = 0o020000;

/** Character devices that are reopened by path: null, zero, full, random, urandom. */
const PLAIN_DEVICES = new Set(['1:3', '1:5', '1:7', '1:8', '1:9']);
const major = (rdev: bigint) => Number((rdev >> 8n) & 0xfffn);
const minor = (rdev: bigint) => Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n));
function isTty(rdev: bigint): boolean {
  const ma = major(rdev);
  return ma === 4 || ma === 5 || (ma >= 136 && ma <= 143);
}

/** What a /proc/PID/fd link says an fd is, for messages: pipe, socket, eventfd... */
export function fdKindName(link: string): string {
  const anon = /^anon_inode:\[?([^\]]+)\]?$/.exec(link);
  if (anon) return anon[1];
  const obj = /^(\w+):\[/.exec(link);
  if (obj) return obj[1];
  return link;
}

export function dumpFd(pid: number, fd: number, shellJob: boolean): SavedFd {
  const link = readFdLink(pid, fd);
  const info = readFdinfo(pid, fd);
  const unsupported = (what: string) =>
    new CkptError('UNSUPPORTED_FD', `not supported yet: fd ${fd} of pid ${pid} is ${what}`, { pid, resource: `fd ${fd}` });
  const pipe = /^pipe:\[(\d+)\]$/.exec(link);
  if (pipe) {
    const cloexec = (info.flags & O.CLOEXEC) !== 0 ? 1 : 0;
    return {
      path: link,
      fields: {
        fd, kind: FdKind.PIPE, flags: info.flags & ~O.CLOEXEC, cloexec, pos: 0, mode: 0o010600, dev: 0n,
        ino: BigInt(pipe[1]), rdev: 0n, size: 0, mtime_ns: 0n,
      },
    };
  }
  if (!link.startsWith('/')) throw unsupported(fdKindName(link));
  if (link.endsWith(' (deleted)')) throw unsupported(`a deleted file (${link})`);
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(`/proc/${pid}/fd/${fd}`, { bigint: true });
  } catch (e) {
    throw unsupported(`${link} (stat: ${(e as NodeJS.ErrnoException).code})`);
  }
  const mode = Number(st.mode);
  const type = mode & S_IFMT;
  let kind: FdKind;
  if (type === S_IFREG) kind = FdKind.REG;
  else if (type === S_IFDIR) kind = FdKind.DIR;
  else if (type === S_IFCHR && isTty(st.rdev)) {
    if (!shellJob) {
      throw new CkptError('UNSUPPORTED_FD', `fd ${fd} of pid ${pid} is a terminal (${link}) inherited from outside: dump with --shell-job to restore it on ckpt's terminal`, { pid, resource: `fd ${fd}` });
    }
    kind = FdKind.TTY;
  } else if (type === S_IFCHR && PLAIN_DEVICES.has(`${major(st.rdev)}:${minor(st.rdev)}`)) kind = FdKind.CHR;
  else throw unsupported(type === S_IFCHR ? `character device ${major(st.rdev)}:${minor(st.rdev)} (${link})` : link);
  const cloexec = (info.flags & O.CLOEXEC) !== 0 ? 1 : 0;
  return {
    path: link,
    fields: {
      fd, kind, flags: info.flags & ~O.CLOEXEC, cloexec, pos: info.pos, mode, dev: st.dev, ino: st.ino,
      rdev: st.rdev, size: Number(st.size), mtime_ns: st.mtimeNs,
    },
  };
}

/**
 * The pipes among the fds, each saved once with its bytes in flight; a pipe
 * with an end outside the process is refused.
 */
export function dumpPipes(pid: number, fds: SavedFd[]): SavedPipe[] {
  const byIno = new Map<bigint, SavedFd[]>();
  for (const f of fds) {
    if (f.fields.kind !== FdKind.PIPE) continue;
    byIno.set(f.fields.ino, [...(byIno.get(f.fields.ino) ?? []), f]);
  }
  return [...byIno.entries()].map(([ino, ends]) => {
    const readers = ends.filter((f) => (f.fields.flags & O.ACCMODE) !== O.WRONLY);
    const writers = ends.filter((f) => (f.fields.flags & O.ACCMODE) !== O.RDONLY);
    if (readers.length === 0 || writers.length === 0) {
      const f = ends[0].fields.fd;
      throw new CkptError('UNSUPPORTED_FD', `not supported yet: fd ${f} of pid ${pid} is a pipe whose other end is outside the process`, { pid, resource: `fd ${f}` });
    }
    return dumpPipe(pid, readers[0].fields.fd, ino);
  });
}

/** Before anything is created: every file to reopen is still there (and the same). */
export function checkFd(f: SavedFd): void {
  const v = f.fields;
  if (v.kind === FdKind.TTY || v.kind === FdKind.PIPE) return;
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(f.path, { bigint: true });
  } catch (e) {
    throw new CkptError('FILE_CHANGED', `fd ${v.fd}: ${f.path} is gone since the dump (${(e as NodeJS.ErrnoException).code})`, { path: f.path });
  }
  if (v.kind === FdKind.REG && (st.ino !== v.ino || st.dev !== v.dev)) {
    throw new CkptError('FILE_CHANGED', `fd ${v.fd}: ${f.path} is another file than at dump time (inode ${v.ino} → ${st.ino})`, { path: f.path });
  }
}

/** ckpt's own terminal, for --shell-job. */
function ownTerminalFd(): number {
  for (const fd of [0, 1, 2]) if (tty.isatty(fd)) return fd;
  throw new CkptError('USAGE', 'the image holds a terminal (--shell-job) but ckpt has none on fds 0-2');
}

function openLocally(f: SavedFd): number {
  const v = f.fields;
  if (v.kind === FdKind.TTY) return fs.openSync('/proc/self/fd/' + ownTerminalFd(), O.RDWR | O.NOCTTY);
  const flags = (v.flags & ~(O.CREAT | O.EXCL | O.TRUNC)) | O.NOCTTY | O.CLOEXEC;
  let fd: number;
  try {
    fd = fs.openSync(f.path, flags);
  } catch (e) {
    throw new CkptError('FILE_CHANGED', `fd ${v.fd}: cannot reopen ${f.path}: ${(e as NodeJS.ErrnoException).code}`, { path: f.path });
  }
  if (v.pos > 0 && v.kind === FdKind.REG) lseek(fd, v.pos, SEEK_SET);
  return fd;
}

/** Install every saved fd in the target; `pidfd` is the target's pidfd of ckpt. */
export function restoreFds(t: RestoreTarget, pidfd: number, fds: SavedFd[], pipes: SavedPipe[]): void {
  const pipeEnds = new Map<bigint, [number, number]>();
  try {
    for (const p of pipes) pipeEnds.set(p.fields.ino, createPipe(p));
    for (const f of fds) installFd(t, pidfd, f, pipeEnds);
  } finally {
    for (const [r, w] of pipeEnds.values()) { fs.closeSync(r); fs.closeSync(w); }
  }
}

function installFd(t: RestoreTarget, pidfd: number, f: SavedFd, pipeEnds: Map<bigint, [number, number]>): void {
  let local: number;
  let owned = true;
  if (f.fields.kind === FdKind.PIPE) {
    const ends = pipeEnds.get(f.fields.ino);
    if (!ends) throw new CkptError('BAD_IMAGE', `bad image: fd ${f.fields.fd} refers to pipe ${f.fields.ino}, which the image does not hold`);
    local = ends[(f.fields.flags & O.ACCMODE) === O.WRONLY ? 1 : 0];
    fcntl(local, F.SETFL, f.fields.flags & (O.NONBLOCK | O.APPEND));
    owned = false;
  } else {
    local = openLocally(f);
  }
  try {
    const tmp = t.remote.call(NR.pidfd_getfd, [pidfd, local, 0], `pidfd_getfd(fd ${f.fields.fd})`);
    const want = f.fields.fd;
    if (tmp !== want) {
      t.remote.call(NR.dup3, [tmp, want, f.fields.cloexec ? O.CLOEXEC : 0], `dup3(${tmp}, ${want})`);
      t.remote.call(NR.close, [tmp]);
    } else if (!f.fields.cloexec) {
      t.remote.call(NR.fcntl, [want, F.SETFD, 0]);
    }
  } finally {
    if (owned) fs.closeSync(local);
  }
}
