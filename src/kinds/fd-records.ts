/**
 * The records that carry an fd's kind-specific state beside its FD record,
 * keyed by fd number: eventfd, signalfd, timerfd, epoll, inotify, file contents, locks,
 * FIFO contents, pty settings, the controlling terminal, another open of a saved file.
 */
import { CkptError } from '../errors.js';
import { childrenOf, encode, type ImageRecord } from '../image/index.js';
import { EPOLL, EVENTFD, SIGNALFD, TIMERFD, decodeEpollTargets, encodeEpollTargets, type AnonFd } from './anonfds.js';
import { FILE_DATA, FILE_SAME, MAX_FILE_DATA, type FileData } from './filedata.js';
import { INOTIFY, INOTIFY_WATCH, decodeInotify, encodeInotify } from './inotify.js';
import { LOCK, LockKind } from './locks.js';
import { FdKind, type SavedFd } from './files.js';
import { FIFO_DATA } from './fifo.js';
import { CTTY, PTY, ptsIndex, type PtyState } from './tty.js';
import { TERMIOS2_SIZE, WINSIZE_SIZE } from '../sys/tty.js';

export function encodeFdExtras(f: SavedFd): Buffer[] {
  const out: Buffer[] = [];
  const a = f.anon;
  if (a?.kind === 'eventfd') out.push(encode(EVENTFD, a.fields));
  if (a?.kind === 'signalfd') out.push(encode(SIGNALFD, a.fields));
  if (a?.kind === 'timerfd') out.push(encode(TIMERFD, a.fields));
  if (a?.kind === 'epoll') out.push(encode(EPOLL, a.fields, encodeEpollTargets(a.targets)));
  if (a?.kind === 'inotify') out.push(encodeInotify(a.fields.fd, a.watches));
  if (f.data) out.push(encode(FILE_DATA, f.data.fields, f.data.data));
  for (const l of f.locks ?? []) out.push(encode(LOCK, l));
  if (f.sameFileAs !== undefined) out.push(encode(FILE_SAME, { fd: f.fields.fd, of: f.sameFileAs }));
  if (f.fifo) out.push(encode(FIFO_DATA, f.fifo.fields, f.fifo.data));
  if (f.pty && f.fields.kind === FdKind.PTMX) out.push(encode(PTY, f.pty.fields, Buffer.concat([f.pty.termios, f.pty.winsize])));
  if (f.ctty) out.push(encode(CTTY, { fd: f.fields.fd, index: ptsIndex(f.fields.rdev) ?? 0 }));
  return out;
}

/** Attach each kind record of a PROCESS record to its fd. */
export function attachFdExtras(proc: ImageRecord, fds: SavedFd[]): void {
  const byFd = new Map(fds.map((f) => [f.fields.fd, f]));
  const find = (r: ImageRecord, fd: number) => {
    const f = byFd.get(fd);
    if (!f) throw new CkptError('BAD_IMAGE', `bad image: record at offset ${r.offset} (${r.schema}) is for fd ${fd}, which the image does not hold`, { offset: r.offset });
    return f;
  };
  const anon = (r: ImageRecord, fd: number, a: AnonFd) => { find(r, fd).anon = a; };
  for (const r of childrenOf(proc, EVENTFD)) anon(r, r.fields.fd, { kind: 'eventfd', fields: r.fields });
  for (const r of childrenOf(proc, SIGNALFD)) anon(r, r.fields.fd, { kind: 'signalfd', fields: r.fields });
  for (const r of childrenOf(proc, TIMERFD)) anon(r, r.fields.fd, { kind: 'timerfd', fields: r.fields });
  for (const r of childrenOf(proc, EPOLL)) {
    const targets = decodeEpollTargets(r.data ?? Buffer.alloc(0));
    if (targets.length !== r.fields.targets) throw new CkptError('BAD_IMAGE', `bad image: record at offset ${r.offset} (epoll): ${targets.length} targets, says ${r.fields.targets}`, { offset: r.offset });
    anon(r, r.fields.fd, { kind: 'epoll', fields: r.fields, targets });
  }
  for (const r of childrenOf(proc, INOTIFY)) {
    const watches = decodeInotify(r);
    if (watches.length !== r.fields.watches) throw new CkptError('BAD_IMAGE', `bad image: record at offset ${r.offset} (inotify): ${watches.length} watches, says ${r.fields.watches}`, { offset: r.offset });
    anon(r, r.fields.fd, { kind: 'inotify', fields: r.fields, watches });
  }
  for (const r of childrenOf(proc, LOCK)) {
    if (!(r.fields.kind in LockKind)) throw new CkptError('BAD_IMAGE', `bad image: record at offset ${r.offset} (lock): kind ${r.fields.kind}`, { offset: r.offset });
    (find(r, r.fields.fd).locks ??= []).push(r.fields);
  }
  for (const r of childrenOf(proc, FILE_DATA)) {
    const data = r.data ?? Buffer.alloc(0);
    if (data.length !== r.fields.size || data.length > MAX_FILE_DATA) throw new CkptError('BAD_IMAGE', `bad image: record at offset ${r.offset} (file_data): ${data.length} bytes, says ${r.fields.size}`, { offset: r.offset });
    const fd: FileData = { fields: r.fields, data };
    find(r, r.fields.fd).data = fd;
  }
  for (const r of childrenOf(proc, FILE_SAME)) {
    if (!byFd.has(r.fields.of)) throw new CkptError('BAD_IMAGE', `bad image: record at offset ${r.offset} (file_same): fd ${r.fields.fd} is another open of fd ${r.fields.of}, which the image does not hold`, { offset: r.offset });
    find(r, r.fields.fd).sameFileAs = r.fields.of;
  }
  for (const r of childrenOf(proc, FIFO_DATA)) {
    const data = r.data ?? Buffer.alloc(0);
    if (data.length !== r.fields.bytes || data.length > r.fields.size || r.fields.size > 1 << 30) throw new CkptError('BAD_IMAGE', `bad image: record at offset ${r.offset} (fifo_data): FIFO of ${r.fields.size} bytes holding ${data.length}, says ${r.fields.bytes}`, { offset: r.offset });
    find(r, r.fields.fd).fifo = { fields: r.fields, data };
  }
  const ptys = new Map<number, PtyState>();
  for (const r of childrenOf(proc, PTY)) {
    const data = r.data ?? Buffer.alloc(0);
    const master = find(r, r.fields.fd);
    if (data.length !== TERMIOS2_SIZE + WINSIZE_SIZE || master.fields.kind !== FdKind.PTMX) throw new CkptError('BAD_IMAGE', `bad image: record at offset ${r.offset} (pty): ${data.length} bytes of settings for fd ${r.fields.fd} (${master.path})`, { offset: r.offset });
    master.pty = { fields: r.fields, termios: data.subarray(0, TERMIOS2_SIZE), winsize: data.subarray(TERMIOS2_SIZE), ptmx: master.path };
    ptys.set(r.fields.index, master.pty);
  }
  for (const f of fds) if (f.fields.kind === FdKind.PTS) f.pty = ptys.get(ptsIndex(f.fields.rdev) ?? -1);
  for (const r of childrenOf(proc, CTTY)) find(r, r.fields.fd).ctty = true;
}

export const FD_EXTRA_SCHEMAS = [EVENTFD, SIGNALFD, TIMERFD, EPOLL, FILE_DATA, INOTIFY, INOTIFY_WATCH, LOCK, FIFO_DATA, PTY, CTTY, FILE_SAME] as const;
