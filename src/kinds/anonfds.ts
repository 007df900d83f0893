/**
 * Files without a path that ckpt makes anew: eventfd (counter, semaphore
 * mode), signalfd (mask), timerfd (clock, remaining time, interval, ticks not
 * yet read), epoll (every registered target with its events and data,
 * nested epoll included) and inotify (inotify.ts). Read from /proc/PID/fdinfo;
 * created in ckpt and installed like any other file. An epoll is made empty:
 * the process registers its targets itself once every fd is at its number.
 * A one-shot target that fired (no events left but EPOLLONESHOT) comes back
 * armed for EPOLLERR and EPOLLHUP, which the kernel adds to every target.
 */
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import type { Fdinfo } from '../proc/index.js';
import { epollCreate1, eventfd2, signalfd4, timerfdCreate, timerfdSetTicks, timerfdSettime } from '../sys/syscalls.js';
import { O } from '../sys/constants.js';
import { NR } from '../sys/nr.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';
import { createInotify, dumpInotify, type InotifyFields, type InotifyWatch } from './inotify.js';

export const EVENTFD = defineRecord({ type: T.EVENTFD, name: 'eventfd', content: Content.VOID, fields: { fd: 'u32', count: 'u64', semaphore: 'u32' } });
export const SIGNALFD = defineRecord({ type: T.SIGNALFD, name: 'signalfd', content: Content.VOID, fields: { fd: 'u32', mask: 'u64' } });
export const TIMERFD = defineRecord({
  type: T.TIMERFD, name: 'timerfd', content: Content.VOID,
  fields: {
    fd: 'u32', clockid: 'u32', ticks: 'u64', settime_flags: 'u32',
    value_sec: 'u64', value_nsec: 'u64', interval_sec: 'u64', interval_nsec: 'u64',
  },
});
/** content: the targets, 16 bytes each: { tfd u32, events u32, data u64 }. */
export const EPOLL = defineRecord({ type: T.EPOLL, name: 'epoll', content: Content.DATA, fields: { fd: 'u32', targets: 'u32' } });

export type AnonFd =
  | { kind: 'eventfd'; fields: FieldsOf<typeof EVENTFD> }
  | { kind: 'signalfd'; fields: FieldsOf<typeof SIGNALFD> }
  | { kind: 'timerfd'; fields: FieldsOf<typeof TIMERFD> }
  | { kind: 'epoll'; fields: FieldsOf<typeof EPOLL>; targets: EpollTarget[] }
  | { kind: 'inotify'; fields: InotifyFields; watches: InotifyWatch[] };
export interface EpollTarget { tfd: number; events: number; data: bigint }

const pair = (v: string | undefined) => {
  const m = /\((\d+),\s*(\d+)\)/.exec(v ?? '');
  return m ? [BigInt(m[1]), BigInt(m[2])] : [0n, 0n];
};

/** The kind-specific state of an anon_inode fd from its fdinfo; undefined for other kinds. */
export function dumpAnon(name: string, fd: number, info: Fdinfo, pid: number): AnonFd | undefined {
  const x = info.extra;
  switch (name) {
    case 'eventfd':
      return { kind: 'eventfd', fields: { fd, count: BigInt('0x' + (x['eventfd-count'] ?? '0').trim()), semaphore: x['eventfd-semaphore']?.trim() === '1' ? 1 : 0 } };
    case 'signalfd':
      return { kind: 'signalfd', fields: { fd, mask: BigInt('0x' + (x.sigmask ?? '0').trim()) } };
    case 'timerfd': {
      const [vs, vn] = pair(x.it_value);
      const [is, inn] = pair(x.it_interval);
      return {
        kind: 'timerfd', fields: {
          fd, clockid: Number(x.clockid ?? 0), ticks: BigInt(x.ticks ?? 0), settime_flags: parseInt(x['settime flags'] ?? '0', 8),
          value_sec: vs, value_nsec: vn, interval_sec: is, interval_nsec: inn,
        },
      };
    }
    case 'inotify': {
      const watches = dumpInotify(pid, fd, info);
      return { kind: 'inotify', fields: { fd, watches: watches.length }, watches };
    }
    case '[eventpoll]':
    case 'eventpoll': {
      const targets = info.lines.filter((l) => l.startsWith('tfd:')).map((l) => {
        const m = /tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)/.exec(l);
        if (!m) throw new CkptError('UNSUPPORTED_FD', `fd ${fd} of pid ${pid}: cannot read epoll target '${l}'`, { pid });
        return { tfd: Number(m[1]), events: parseInt(m[2], 16), data: BigInt('0x' + m[3]) };
      });
      return { kind: 'epoll', fields: { fd, targets: targets.length }, targets };
    }
  }
  return undefined;
}

/**
 * Once the fds are installed at their numbers: every epoll target, added by
 * the restored process itself. An epoll knows each target by file and fd
 * number, and the process names them by its own numbers in EPOLL_CTL_MOD and
 * DEL (ckpt's numbers would make those fail with ENOENT); and a signalfd
 * wakes the waiters of the process that added it.
 */
export function restoreEpollTargets(t: RestoreTarget, fds: { fields: { fd: number; same_as: number }; anon?: AnonFd }[]): void {
  for (const f of fds) {
    if (f.anon?.kind !== 'epoll' || f.fields.same_as >= 0) continue;
    for (const w of f.anon.targets) {
      t.scratch.reset();
      const ev = Buffer.alloc(12);
      ev.writeUInt32LE(w.events >>> 0, 0);
      ev.writeBigUInt64LE(w.data, 4);
      t.remote.call(NR.epoll_ctl, [f.fields.fd, 1 /* EPOLL_CTL_ADD */, w.tfd, t.scratch.put(ev)], `epoll_ctl(epoll fd ${f.fields.fd}, ADD fd ${w.tfd})`);
    }
  }
}

export function encodeEpollTargets(targets: EpollTarget[]): Buffer {
  const buf = Buffer.alloc(targets.length * 16);
  targets.forEach((t, i) => { buf.writeUInt32LE(t.tfd, i * 16); buf.writeUInt32LE(t.events >>> 0, i * 16 + 4); buf.writeBigUInt64LE(t.data, i * 16 + 8); });
  return buf;
}

export function decodeEpollTargets(buf: Buffer): EpollTarget[] {
  const out: EpollTarget[] = [];
  for (let i = 0; i + 16 <= buf.length; i += 16) out.push({ tfd: buf.readUInt32LE(i), events: buf.readUInt32LE(i + 4), data: buf.readBigUInt64LE(i + 8) });
  return out;
}

/** Make the object in ckpt; `localOf` gives ckpt's fd for a target fd (epoll targets). */
export function createAnon(a: AnonFd, flags: number, localOf: (fd: number) => number | undefined): number {
  const nonblock = flags & O.NONBLOCK;
  switch (a.kind) {
    case 'eventfd':
      return eventfd2(Number(a.fields.count), O.CLOEXEC | nonblock | (a.fields.semaphore ? 1 : 0));
    case 'signalfd':
      return signalfd4(a.fields.mask, O.CLOEXEC | nonblock);
    case 'timerfd': {
      const f = a.fields;
      const fd = timerfdCreate(f.clockid, O.CLOEXEC | nonblock);
      // A periodic timer that expired and was not read yet shows no remaining
      // time (the kernel re-arms it on read): arm it one interval ahead, or
      // it would give its ticks once and stop.
      const expired = !f.value_sec && !f.value_nsec;
      const [vs, vn] = expired ? [f.interval_sec, f.interval_nsec] : [f.value_sec, f.value_nsec];
      if (vs || vn) timerfdSettime(fd, [f.interval_sec, f.interval_nsec, vs, vn]);
      if (f.ticks) timerfdSetTicks(fd, f.ticks);
      return fd;
    }
    case 'inotify':
      return createInotify(a.fields.fd, flags, a.watches);
    case 'epoll': {
      for (const t of a.targets) {
        if (localOf(t.tfd) === undefined) throw new CkptError('BAD_IMAGE', `bad image: epoll fd ${a.fields.fd} watches fd ${t.tfd}, which the image does not hold`);
      }
      // Empty: the process adds its targets itself (restoreEpollTargets).
      return epollCreate1(O.CLOEXEC);
    }
  }
}
