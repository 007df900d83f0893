/**
 * Open files: regular files, directories, a few character devices, and (with
 * --shell-job) the terminal. Restore: ckpt opens the file itself, seeks, and
 * the target takes it with pidfd_getfd, then dup3 to the saved fd number.
 */
import fs from 'node:fs';
import { builtin } from '../builtin.js';
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { readFdLink, readFdinfo } from '../proc/index.js';
import { NR } from '../sys/nr.js';
import { F, O, SEEK_SET } from '../sys/constants.js';
import { fcntl, lseek, sameFile } from '../sys/syscalls.js';
import { createAnon, dumpAnon, type AnonFd } from './anonfds.js';
import { createGhost, createMemfd, dumpFileData, fillMemfd, linkSameFiles, reopenFile, type FileData } from './filedata.js';
import { dumpLocks, lockDescription, restorePosixLocks, type LockFields } from './locks.js';
import { createPipe, dumpPipe, type SavedPipe } from './pipes.js';
import { abortSockets, closeSockets, createSockets, type SavedSocket } from './sockets/index.js';
import { T } from './ids.js';
import { checkFifo, dumpFifos, openFifo, type FifoData } from './fifo.js';
import { checkPathFd } from './opath.js';
import { checkPty, dumpPtys, openPtyMaster, openPtySlave, ttyRole, type PtyState } from './tty.js';
import type { RestoreTarget } from './target.js';

export enum FdKind { REG = 1, DIR = 2, CHR = 3, TTY = 4, PIPE = 5, EVENTFD = 6, SIGNALFD = 7, TIMERFD = 8, EPOLL = 9, MEMFD = 10, GHOST = 11, INOTIFY = 12,
  PATH = 13, FIFO = 14, PTMX = 15, PTS = 16, DEVTTY = 17, SOCKET = 18 }

export const FD = defineRecord({
  type: T.FD, name: 'fd', content: Content.NAME,
  fields: {
    fd: 'u32', kind: 'u32', flags: 'u32', cloexec: 'u32', pos: 'addr', mode: 'u32',
    dev: 'u64', ino: 'u64', rdev: 'u64', size: 'addr', mtime_ns: 'u64',
    /** An earlier fd sharing this one's open file description (dup, fork), or -1. */
    same_as: 'i32',
    /** The process holding `same_as` (its pid as its namespace sees it), or 0 for this one. */
    same_pid: 'u32',
  },
});
export type FdFields = FieldsOf<typeof FD>;
export interface SavedFd {
  fields: FdFields; path: string; anon?: AnonFd; data?: FileData; locks?: LockFields[];
  fifo?: FifoData; pty?: PtyState; ctty?: boolean;
  /** A memfd or deleted file opened again (not dup'ed): the fd holding its content. */
  sameFileAs?: number;
}

const ANON_KINDS: Record<string, FdKind> = { eventfd: FdKind.EVENTFD, signalfd: FdKind.SIGNALFD, timerfd: FdKind.TIMERFD, eventpoll: FdKind.EPOLL, inotify: FdKind.INOTIFY };

const S_IFMT = 0o170000, S_IFREG = 0o100000, S_IFDIR = 0o040000, S_IFCHR = 0o020000, S_IFIFO = 0o010000;

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

export function dumpFd(pid: number, fd: number, shellJob: boolean, ptyMasters?: ReadonlySet<number>): SavedFd {
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
        ino: BigInt(pipe[1]), rdev: 0n, size: 0, mtime_ns: 0n, same_as: -1, same_pid: 0,
      },
    };
  }
  const sock = /^socket:\[(\d+)\]$/.exec(link);
  if (sock) {
    return {
      path: link,
      fields: {
        fd, kind: FdKind.SOCKET, flags: info.flags & ~O.CLOEXEC, cloexec: (info.flags & O.CLOEXEC) !== 0 ? 1 : 0, pos: 0,
        mode: 0o140777, dev: 0n, ino: BigInt(sock[1]), rdev: 0n, size: 0, mtime_ns: 0n, same_as: -1, same_pid: 0,
      },
    };
  }
  const anonName = fdKindName(link);
  if (link.startsWith('anon_inode:') && anonName in ANON_KINDS) {
    const anon = dumpAnon(anonName, fd, info, pid)!;
    return {
      path: link, anon,
      fields: {
        fd, kind: ANON_KINDS[anonName], flags: info.flags & ~O.CLOEXEC, cloexec: (info.flags & O.CLOEXEC) !== 0 ? 1 : 0,
        pos: 0, mode: 0, dev: 0n, ino: BigInt(info.ino ?? 0), rdev: 0n, size: 0, mtime_ns: 0n, same_as: -1, same_pid: 0,
      },
    };
  }
  if (!link.startsWith('/')) throw unsupported(anonName === link ? link : `${anonName} (${link})`);
  const memfd = link.startsWith('/memfd:') && link.endsWith(' (deleted)');
  const ghost = !memfd && link.endsWith(' (deleted)');
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(`/proc/${pid}/fd/${fd}`, { bigint: true });
  } catch (e) {
    throw unsupported(`${link} (stat: ${(e as NodeJS.ErrnoException).code})`);
  }
  const mode = Number(st.mode);
  const type = mode & S_IFMT;
  let kind: FdKind;
  let data: FileData | undefined;
  // A pty the process opened itself (or /dev/tty naming one) comes back as it was (tty.ts).
  const role = type === S_IFCHR && isTty(st.rdev) ? ttyRole(pid, st.rdev, ptyMasters) : undefined;
  if ((info.flags & O.PATH) && (memfd || ghost)) throw unsupported(`an O_PATH fd of a deleted file (${link})`);
  if (info.flags & O.PATH) kind = FdKind.PATH;
  else if (type === S_IFIFO) {
    if (ghost) throw unsupported(`a FIFO deleted while open (${link})`);
    kind = FdKind.FIFO;
  } else if (type === S_IFREG && (memfd || ghost)) {
    kind = memfd ? FdKind.MEMFD : FdKind.GHOST;
    data = dumpFileData(pid, fd, memfd ? `memfd ${link}` : `a deleted file (${link})`, memfd);
  } else if (type === S_IFREG) kind = FdKind.REG;
  else if (type === S_IFDIR) kind = FdKind.DIR;
  else if (role) kind = { ptmx: FdKind.PTMX, pts: FdKind.PTS, devtty: FdKind.DEVTTY }[role];
  else if (type === S_IFCHR && isTty(st.rdev)) {
    if (!shellJob) {
      throw new CkptError('UNSUPPORTED_FD', `fd ${fd} of pid ${pid} is a terminal (${link}) inherited from outside: dump with --shell-job to restore it on ckpt's terminal`, { pid, resource: `fd ${fd}` });
    }
    kind = FdKind.TTY;
  } else if (type === S_IFCHR && PLAIN_DEVICES.has(`${major(st.rdev)}:${minor(st.rdev)}`)) kind = FdKind.CHR;
  else throw unsupported(type === S_IFCHR ? `character device ${major(st.rdev)}:${minor(st.rdev)} (${link})` : link);
  const cloexec = (info.flags & O.CLOEXEC) !== 0 ? 1 : 0;
  return {
    path: link, data,
    fields: {
      fd, kind, flags: info.flags & ~O.CLOEXEC, cloexec, pos: info.pos, mode, dev: st.dev, ino: st.ino,
      rdev: st.rdev, size: Number(st.size), mtime_ns: st.mtimeNs, same_as: -1, same_pid: 0,
    },
  };
}

/**
 * All fds of a process, with the ones that share an open file description
 * (kcmp) marked: restore installs one description in all of them, so they
 * keep one offset and one set of status flags. A pipe's content is saved once
 * anyway (pipes.ts).
 */
/** `ptyMasters`: the pts indexes of the pty masters the dumped tree holds (default: this process's). */
export function dumpFds(pid: number, fdList: number[], shellJob: boolean, ptyMasters?: ReadonlySet<number>): SavedFd[] {
  const fds = fdList.map((fd) => dumpFd(pid, fd, shellJob, ptyMasters));
  for (const [i, f] of fds.entries()) {
    const twin = fds.slice(0, i).find((g) => g.fields.same_as < 0 && g.fields.ino === f.fields.ino && sameFile(pid, g.fields.fd, pid, f.fields.fd));
    if (twin) { f.fields.same_as = twin.fields.fd; f.anon = undefined; f.data = undefined; }
  }
  dumpFifos(pid, fds.filter((f) => f.fields.kind === FdKind.FIFO));
  linkSameFiles(fds.filter((f) => f.fields.kind === FdKind.MEMFD || f.fields.kind === FdKind.GHOST));
  dumpPtys(pid, fds, ptyMasters);
  const lockable = fds.filter((f) => f.fields.same_as < 0 && [FdKind.REG, FdKind.DIR, FdKind.MEMFD, FdKind.GHOST].includes(f.fields.kind));
  for (const l of dumpLocks(pid, lockable.map((f) => f.fields.fd))) {
    const f = fds.find((g) => g.fields.fd === l.fd)!;
    (f.locks ??= []).push(l);
  }
  for (const f of fds) {
    if (f.anon?.kind !== 'epoll') continue;
    for (const t of f.anon.targets) {
      if (!fds.some((g) => g.fields.fd === t.tfd)) {
        throw new CkptError('UNSUPPORTED_FD', `not supported yet: epoll fd ${f.fields.fd} of pid ${pid} watches fd ${t.tfd}, which is no longer open`, { pid, resource: `fd ${f.fields.fd}` });
      }
    }
  }
  return fds;
}

/** The fds of one process of the dumped tree. */
export interface ProcessFds { pid: number; nspid: number; fds: SavedFd[] }

/**
 * An fd that shares its open file description with an fd of a process
 * dumped earlier (inherited through fork, or passed) points to it, so that
 * restore installs one description in both.
 */
export function linkSharedFds(procs: ProcessFds[]): void {
  for (const [i, p] of procs.entries()) {
    for (const f of p.fds) {
      if (f.fields.same_as >= 0) continue;
      for (const q of procs.slice(0, i)) {
        const twin = q.fds.find((g) => g.fields.same_as < 0 && g.fields.kind === f.fields.kind && g.fields.ino === f.fields.ino && sameFile(q.pid, g.fields.fd, p.pid, f.fields.fd));
        if (!twin) continue;
        f.fields.same_as = twin.fields.fd;
        f.fields.same_pid = q.nspid;
        f.anon = undefined; f.data = undefined; f.locks = undefined;
        break;
      }
    }
  }
}

/**
 * The pipes among the fds of the tree, each saved once with its bytes in
 * flight (in the process whose read end was used); a pipe with an end
 * outside the tree is refused, one whose other end is closed is not.
 */
export function dumpPipes(procs: ProcessFds[]): Map<number, SavedPipe[]> {
  const byIno = new Map<bigint, { pid: number; f: SavedFd }[]>();
  for (const p of procs) {
    for (const f of p.fds) {
      if (f.fields.kind !== FdKind.PIPE) continue;
      byIno.set(f.fields.ino, [...(byIno.get(f.fields.ino) ?? []), { pid: p.pid, f }]);
    }
  }
  const out = new Map<number, SavedPipe[]>();
  for (const [ino, ends] of byIno) {
    const readers = ends.filter((e) => (e.f.fields.flags & O.ACCMODE) !== O.WRONLY);
    const writers = ends.filter((e) => (e.f.fields.flags & O.ACCMODE) !== O.RDONLY);
    const lone = readers.length === 0 ? 'write' : writers.length === 0 ? 'read' : undefined;
    const { pid, f } = readers[0] ?? writers[0];
    const saved = dumpPipe(pid, f.fields.fd, ino, lone);
    if (!saved) {
      throw new CkptError('UNSUPPORTED_FD', `not supported yet: fd ${f.fields.fd} of pid ${pid} is a pipe whose other end is outside the dumped tree`, { pid, resource: `fd ${f.fields.fd}` });
    }
    out.set(pid, [...(out.get(pid) ?? []), saved]);
  }
  return out;
}

/** Before anything is created: every file to reopen is still there (and the same). */
export function checkFd(f: SavedFd): void {
  const v = f.fields;
  if (f.anon?.kind === 'inotify') {
    for (const w of f.anon.watches) {
      if (!fs.existsSync(w.path)) throw new CkptError('FILE_CHANGED', `inotify fd ${v.fd} watches ${w.path}, which is gone since the dump`, { path: w.path });
    }
  }
  if (v.kind === FdKind.FIFO) checkFifo(v.fd, f.path);
  if (v.kind === FdKind.PATH) checkPathFd(v.fd, f.path, v.mode);
  if (v.kind === FdKind.PTMX && f.pty) checkPty(f.pty);
  if (v.kind !== FdKind.REG && v.kind !== FdKind.DIR && v.kind !== FdKind.CHR) return;
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(f.path, { bigint: true });
  } catch (e) {
    throw new CkptError('FILE_CHANGED', `fd ${v.fd}: ${f.path} is gone since the dump (${(e as NodeJS.ErrnoException).code})`, { path: f.path });
  }
  // Size, not inode: the same content at the same path on another host is the file.
  if (v.kind === FdKind.REG && !((Number(st.mode) & S_IFMT) === S_IFREG && Number(st.size) === v.size)) {
    throw new CkptError('FILE_CHANGED', `fd ${v.fd}: ${f.path} changed since the dump (${v.size} → ${st.size} bytes)`, { path: f.path });
  }
}

/** ckpt's own terminal, for --shell-job. */
function ownTerminalFd(): number {
  const { isatty } = builtin<typeof import('node:tty')>('node:tty');
  for (const fd of [0, 1, 2]) if (isatty(fd)) return fd;
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

/**
 * The open file descriptions ckpt made for a restore, for the whole tree:
 * an fd shared by several processes is made once and installed in each.
 * close() once every process has taken its fds.
 */
export class FileTable {
  /** ckpt's fd of a memfd that the tree also maps MAP_SHARED (restore/shmem.ts), by device and inode. */
  mappedMemfd?: (major: number, minor: number, ino: bigint) => number | undefined;
  /** Pipe inode → ckpt's [read end, write end]. */
  readonly pipeEnds = new Map<bigint, [number, number]>();
  /** Socket inode → ckpt's socket (sockets/index.ts). */
  sockEnds = new Map<bigint, number>();
  /** `${pid}:${fd}` → ckpt's fd for that saved fd's description. */
  private readonly locals = new Map<string, number>();
  private readonly owned: number[] = [];

  get(pid: number, fd: number): number | undefined { return this.locals.get(`${pid}:${fd}`); }
  set(pid: number, fd: number, local: number, owned: boolean): void {
    this.locals.set(`${pid}:${fd}`, local);
    if (owned) this.owned.push(local);
  }
  addPipes(pipes: SavedPipe[]): void {
    for (const p of pipes) if (!this.pipeEnds.has(p.fields.ino)) this.pipeEnds.set(p.fields.ino, createPipe(p));
  }
  /** Every socket of the tree at once: the two ends of a connection are made together. */
  addSockets(sockets: SavedSocket[], log: (msg: string) => void): void {
    this.sockEnds = createSockets(sockets, log);
  }
  /** The restore failed: TCP connections close without telling their peers. */
  abort(): void { abortSockets(this.sockEnds); }
  /**
   * Once every process holds its ends: a pipe whose writer or reader is gone
   * must give EOF or EPIPE as soon as the process runs, not once ckpt exits.
   */
  closePipes(): void {
    for (const [r, w] of this.pipeEnds.values()) { fs.closeSync(r); fs.closeSync(w); }
    this.pipeEnds.clear();
  }
  close(): void {
    for (const fd of this.owned) fs.closeSync(fd);
    this.closePipes();
    closeSockets(this.sockEnds);
    this.owned.length = 0;
    this.locals.clear();
  }
}

/**
 * ckpt's description for saved fd `fd` of process `pid`: through `same_as`
 * (a dup in the process, then perhaps an fd of another process, which
 * linkSharedFds always points at the fd that owns the description).
 */
function descriptionOf(pid: number, fds: SavedFd[], fd: number, table: FileTable): number | undefined {
  let g = fds.find((x) => x.fields.fd === fd);
  for (let hops = 0; g && g.fields.same_as >= 0 && hops < fds.length; hops++) {
    if (g.fields.same_pid && g.fields.same_pid !== pid) return table.get(g.fields.same_pid, g.fields.same_as);
    fd = g.fields.same_as;
    g = fds.find((x) => x.fields.fd === fd);
  }
  return table.get(pid, fd);
}

/** A description another made one depends on: an epoll (its targets) or a second open of a memfd or deleted file. */
const dependsOnOthers = (f: SavedFd) => f.anon?.kind === 'epoll' || f.sameFileAs !== undefined;

/**
 * Make ckpt's open file description of every saved fd of process `pid` (as
 * its namespace sees it) that has its own (not `same_as` another). Call it
 * for every process of the tree with `dependent` false, then again with
 * `dependent` true: an epoll's targets and a reopened file's first open may
 * be fds another process shares, made in the first pass whatever the order.
 */
export function openFds(pid: number, fds: SavedFd[], table: FileTable, dependent: boolean): void {
  const localOf = (fd: number) => descriptionOf(pid, fds, fd, table);
  // Epolls last: their targets must exist; an epoll watching an epoll after it.
  const order = fds.filter((f) => f.fields.same_as < 0 && dependsOnOthers(f) === dependent).sort((a, b) => epollDepth(a, fds) - epollDepth(b, fds));
  for (const f of order) {
    const local = openShared(f, table, localOf);
    table.set(pid, f.fields.fd, local, f.fields.kind !== FdKind.PIPE && f.fields.kind !== FdKind.SOCKET);
    // flock and OFD locks belong to the description: taken here, they go with it.
    for (const l of f.locks ?? []) lockDescription(local, l);
  }
}

/**
 * Install every saved fd of process `pid` in the target (`pidfd`: the
 * target's pidfd of ckpt), once openFds has made every description of the tree.
 */
export function restoreFds(t: RestoreTarget, pidfd: number, pid: number, fds: SavedFd[], table: FileTable): void {
  for (const f of fds) {
    const v = f.fields;
    const local = descriptionOf(pid, fds, v.fd, table);
    if (local === undefined) throw new CkptError('BAD_IMAGE', `bad image: fd ${v.fd} of pid ${pid} shares the file of fd ${v.same_as} of pid ${v.same_pid || pid}, which the image does not hold`);
    installFd(t, pidfd, f, local);
  }
  restorePosixLocks(t, fds.flatMap((f) => f.locks ?? []));
}

function epollDepth(f: SavedFd, fds: SavedFd[], seen = new Set<number>()): number {
  if (f.anon?.kind !== 'epoll' || seen.has(f.fields.fd)) return 0;
  seen.add(f.fields.fd);
  const inner = f.anon.targets.map((t) => fds.find((g) => g.fields.fd === t.tfd)).filter((g): g is SavedFd => !!g);
  return 1 + Math.max(0, ...inner.map((g) => epollDepth(g, fds, seen)));
}

/** The open file description of a saved fd, made in ckpt. */
function openShared(f: SavedFd, table: FileTable, localOf: (fd: number) => number | undefined): number {
  const v = f.fields;
  const pipeEnds = table.pipeEnds;
  if (v.kind === FdKind.SOCKET) {
    const local = table.sockEnds.get(v.ino);
    if (local === undefined) throw new CkptError('BAD_IMAGE', `bad image: fd ${v.fd} refers to socket ${v.ino}, which the image does not hold`);
    fcntl(local, F.SETFL, v.flags & O.NONBLOCK);
    return local;
  }
  if (v.kind === FdKind.PIPE) {
    const ends = pipeEnds.get(v.ino);
    if (!ends) throw new CkptError('BAD_IMAGE', `bad image: fd ${v.fd} refers to pipe ${v.ino}, which the image does not hold`);
    const local = ends[(v.flags & O.ACCMODE) === O.WRONLY ? 1 : 0];
    fcntl(local, F.SETFL, v.flags & (O.NONBLOCK | O.APPEND));
    return local;
  }
  if (f.anon) return createAnon(f.anon, v.flags, localOf);
  if (v.kind === FdKind.MEMFD || v.kind === FdKind.GHOST) {
    if (f.sameFileAs !== undefined) return reopenFile(f, localOf(f.sameFileAs));
    if (!f.data) throw new CkptError('BAD_IMAGE', `bad image: fd ${v.fd} (${f.path}) has no saved content`);
    // A memfd some process also maps is that mapping's object: one memfd, shared.
    const mapped = v.kind === FdKind.MEMFD ? table.mappedMemfd?.(major(v.dev), minor(v.dev), v.ino) : undefined;
    if (mapped !== undefined) {
      fillMemfd(mapped, f.data);
      return reopenFile(f, mapped);
    }
    const fd = v.kind === FdKind.MEMFD ? createMemfd(f.path, f.data) : createGhost(f.path, (v.flags & ~(O.CREAT | O.EXCL | O.TRUNC)) | O.CLOEXEC, f.data);
    // A memfd is made O_RDWR: a description with another access mode is opened anew from it.
    if (v.kind === FdKind.MEMFD && (v.flags & O.ACCMODE) !== O.RDWR) {
      try { return reopenFile(f, fd); } finally { fs.closeSync(fd); }
    }
    fcntl(fd, F.SETFL, v.flags & (O.NONBLOCK | O.APPEND));
    if (v.pos > 0) lseek(fd, v.pos, SEEK_SET);
    return fd;
  }
  if (v.kind === FdKind.FIFO) return openFifo(f);
  if (v.kind === FdKind.PTMX) return openPtyMaster(f);
  if (v.kind === FdKind.PTS) return openPtySlave(f);
  // A placeholder holding the fd number: the process reopens /dev/tty itself (tty.ts restoreTtys).
  if (v.kind === FdKind.DEVTTY) return fs.openSync('/dev/null', O.RDONLY | O.CLOEXEC);
  return openLocally(f);
}

/** The target takes ckpt's `local` with pidfd_getfd and moves it to the saved fd number. */
function installFd(t: RestoreTarget, pidfd: number, f: SavedFd, local: number): void {
  const tmp = t.remote.call(NR.pidfd_getfd, [pidfd, local, 0], `pidfd_getfd(fd ${f.fields.fd})`);
  const want = f.fields.fd;
  if (tmp !== want) {
    t.remote.call(NR.dup3, [tmp, want, f.fields.cloexec ? O.CLOEXEC : 0], `dup3(${tmp}, ${want})`);
    t.remote.call(NR.close, [tmp]);
  } else if (!f.fields.cloexec) {
    t.remote.call(NR.fcntl, [want, F.SETFD, 0]);
  }
}
