/**
 * The records that carry an fd's kind-specific state beside its FD record,
 * keyed by fd number: eventfd, signalfd, timerfd, epoll, inotify, file contents, locks.
 */
import { CkptError } from '../errors.js';
import { childrenOf, encode, type ImageRecord } from '../image/index.js';
import { EPOLL, EVENTFD, SIGNALFD, TIMERFD, decodeEpollTargets, encodeEpollTargets, type AnonFd } from './anonfds.js';
import { FILE_DATA, MAX_FILE_DATA, type FileData } from './filedata.js';
import { INOTIFY, INOTIFY_WATCH, decodeInotify, encodeInotify } from './inotify.js';
import { LOCK, LockKind } from './locks.js';
import type { SavedFd } from './files.js';

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
}

export const FD_EXTRA_SCHEMAS = [EVENTFD, SIGNALFD, TIMERFD, EPOLL, FILE_DATA, INOTIFY, INOTIFY_WATCH, LOCK] as const;
