/**
 * inotify: every watch with its path and mask. The kernel keeps no path, only
 * a file handle: ckpt opens the handle on the watched filesystem
 * (open_by_handle_at) and reads the path back. Restore adds the watches in
 * wd order; the kernel numbers them 1, 2, 3..., so only gap-free wds can come
 * back as they were, and others are refused at dump. Events pending at dump
 * time are dropped (counted in the log).
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { Content, defineRecord, encode, childrenOf, type FieldsOf, type ImageRecord } from '../image/index.js';
import type { Fdinfo } from '../proc/index.js';
import { close, inotifyAddWatch, inotifyInit1, openByHandle, pidfdGetfd, pidfdOpen } from '../sys/syscalls.js';
import { TIOC, tryIoctlGetInt } from '../sys/tty.js';
import { O } from '../sys/constants.js';
import { T } from './ids.js';

export const INOTIFY = defineRecord({ type: T.INOTIFY, name: 'inotify', content: Content.ARRAY, fields: { fd: 'u32', watches: 'u32' } });
export const INOTIFY_WATCH = defineRecord({ type: T.INOTIFY_WATCH, name: 'inotify_watch', content: Content.NAME, fields: { wd: 'i32', mask: 'u32' } });
export interface InotifyWatch { wd: number; mask: number; path: string }
export type InotifyFields = FieldsOf<typeof INOTIFY>;

/** The mount point of a filesystem by its kernel dev_t (major << 20 | minor), from mountinfo. */
function mountOf(sdev: number): string {
  const want = `${sdev >>> 20}:${sdev & 0xfffff}`;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[2] === want) return f[4].replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  }
  throw new CkptError('UNSUPPORTED_FD', `no mount of device ${want} is visible to ckpt`);
}

function pathOfHandle(sdev: number, type: number, handle: Buffer): string {
  const mfd = fs.openSync(mountOf(sdev), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const fd = openByHandle(mfd, type, handle);
    try { return fs.readlinkSync(`/proc/self/fd/${fd}`); } finally { close(fd); }
  } finally {
    fs.closeSync(mfd);
  }
}

export function dumpInotify(pid: number, fd: number, info: Fdinfo): InotifyWatch[] {
  const watches = info.lines.filter((l) => l.startsWith('inotify ')).map((l) => {
    const kv = Object.fromEntries([...l.matchAll(/(\S+?):(\S+)/g)].map((m) => [m[1], m[2]]));
    const path = pathOfHandle(parseInt(kv.sdev, 16), Number(kv['fhandle-type']), Buffer.from(kv.f_handle, 'hex'));
    return { wd: Number(kv.wd), mask: parseInt(kv.mask, 16) >>> 0, path };
  }).sort((a, b) => a.wd - b.wd);
  watches.forEach((w, i) => {
    if (w.wd !== i + 1) {
      throw new CkptError('UNSUPPORTED_FD', `not supported yet: inotify fd ${fd} of pid ${pid} has watch descriptors with gaps (${watches.map((x) => x.wd).join(', ')})`, { pid, resource: `fd ${fd}` });
    }
  });
  return watches;
}

/**
 * Bytes of events waiting to be read on an inotify fd (FIONREAD on a copy of
 * it): they are not saved, so the dump warns how many it drops.
 */
export function pendingInotifyBytes(pid: number, fd: number): number {
  const pidfd = pidfdOpen(pid);
  try {
    const mine = pidfdGetfd(pidfd, fd, pid);
    try { return Math.max(0, tryIoctlGetInt(mine, TIOC.FIONREAD)); } finally { close(mine); }
  } finally {
    close(pidfd);
  }
}

export function encodeInotify(fd: number, watches: InotifyWatch[]): Buffer {
  return encode(INOTIFY, { fd, watches: watches.length }, watches.map((w) => encode(INOTIFY_WATCH, { wd: w.wd, mask: w.mask }, w.path)));
}

export function decodeInotify(r: ImageRecord): InotifyWatch[] {
  return childrenOf(r, INOTIFY_WATCH).map((w) => ({ wd: w.fields.wd, mask: w.fields.mask, path: w.name ?? '' }));
}

export function createInotify(fd: number, flags: number, watches: InotifyWatch[]): number {
  const ifd = inotifyInit1(O.CLOEXEC | (flags & O.NONBLOCK));
  try {
    for (const w of watches) {
      const wd = inotifyAddWatch(ifd, w.path, w.mask);
      if (wd !== w.wd) throw new CkptError('FILE_CHANGED', `inotify fd ${fd}: the watch on ${w.path} came back as wd ${wd}, not ${w.wd}`, { path: w.path });
    }
    return ifd;
  } catch (e) {
    close(ifd);
    throw e;
  }
}
