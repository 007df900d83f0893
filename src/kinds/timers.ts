/**
 * Timers: the three setitimer timers, and POSIX timers with their ids (kept
 * with prctl(PR_TIMER_CREATE_RESTORE_IDS)), clock, sigevent and remaining
 * time. The overrun count is not restored.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { NR } from '../sys/nr.js';
import { PR } from '../sys/constants.js';
import { Question } from '../ptrace/question.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

/** struct itimerval, as four u64: interval sec/usec, value sec/usec. */
export const ITIMER = defineRecord({
  type: T.ITIMER, name: 'itimer', content: Content.VOID,
  fields: { which: 'u32', interval_sec: 'u64', interval_usec: 'u64', value_sec: 'u64', value_usec: 'u64' },
});
export const POSIX_TIMER = defineRecord({
  type: T.POSIX_TIMER, name: 'posix_timer', content: Content.VOID,
  fields: {
    id: 'i32', clock: 'i32', notify: 'u32', signo: 'u32', sigval: 'u64', notify_tid: 'u32',
    interval_sec: 'u64', interval_nsec: 'u64', value_sec: 'u64', value_nsec: 'u64',
  },
});
export type ItimerFields = FieldsOf<typeof ITIMER>;
export type PosixTimerFields = FieldsOf<typeof POSIX_TIMER>;

const SIGEV = { SIGNAL: 0, NONE: 1, THREAD: 2, THREAD_ID: 4 } as const;

/** getitimer for the three timers; an answer is undefined for a timer that is not armed. */
export function itimerQuestions(): Question<ItimerFields | undefined>[] {
  return [0, 1, 2].map((which) => new Question(NR.getitimer, (slot) => [which, slot], 32, `getitimer(${which})`, (b) => {
    const f = { which, interval_sec: b.readBigUInt64LE(0), interval_usec: b.readBigUInt64LE(8), value_sec: b.readBigUInt64LE(16), value_usec: b.readBigUInt64LE(24) };
    return f.interval_sec || f.interval_usec || f.value_sec || f.value_usec ? f : undefined;
  }));
}

/** /proc/PID/timers: ID, signal N/sigval, notify kind/target, ClockID. */
export function parseTimers(text: string): Omit<PosixTimerFields, 'interval_sec' | 'interval_nsec' | 'value_sec' | 'value_nsec'>[] {
  const out = [];
  for (const block of text.split(/\n(?=ID:)/)) {
    const id = /^ID:\s*(-?\d+)/m.exec(block);
    if (!id) continue;
    const sig = /^signal:\s*(\d+)\/([0-9a-f]+)/m.exec(block);
    const notify = /^notify:\s*(\w+)\/(pid|tid)\.(\d+)/m.exec(block);
    const clock = /^ClockID:\s*(-?\d+)/m.exec(block);
    // "signal/tid.N" is SIGEV_SIGNAL|SIGEV_THREAD_ID: delivered to thread N.
    const kind = notify?.[1] ?? 'signal';
    const base = kind === 'none' ? SIGEV.NONE : kind === 'thread' ? SIGEV.THREAD : SIGEV.SIGNAL;
    out.push({
      id: Number(id[1]), clock: Number(clock?.[1] ?? 0),
      notify: notify?.[2] === 'tid' ? base | SIGEV.THREAD_ID : base,
      signo: Number(sig?.[1] ?? 0), sigval: BigInt('0x' + (sig?.[2] ?? '0')), notify_tid: Number(notify?.[3] ?? 0),
    });
  }
  return out;
}

/** timer_gettime for each POSIX timer /proc/PID/timers lists. */
export function posixTimerQuestions(pid: number): Question<PosixTimerFields>[] {
  let text = '';
  try { text = fs.readFileSync(`/proc/${pid}/timers`, 'utf8'); } catch { return []; }
  return parseTimers(text).map((t) => new Question(NR.timer_gettime, (slot) => [t.id, slot], 32, `timer_gettime(${t.id})`,
    (b) => ({ ...t, interval_sec: b.readBigUInt64LE(0), interval_nsec: b.readBigUInt64LE(8), value_sec: b.readBigUInt64LE(16), value_nsec: b.readBigUInt64LE(24) })));
}

const USEC = 1_000_000n;

function setitimer(t: RestoreTarget, which: number, interval: bigint, value: bigint): bigint {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(interval / USEC, 0); b.writeBigUInt64LE(interval % USEC, 8);
  b.writeBigUInt64LE(value / USEC, 16); b.writeBigUInt64LE(value % USEC, 24);
  t.scratch.reset();
  const at = t.scratch.put(b);
  t.remote.call(NR.setitimer, [which, at, 0], `setitimer(${which})`);
  t.remote.call(NR.getitimer, [which, at], `getitimer(${which})`);
  const got = t.mem.read(at, 32);
  return got.readBigUInt64LE(16) * USEC + got.readBigUInt64LE(24);
}

export function restoreItimers(t: RestoreTarget, timers: ItimerFields[]): void {
  for (const it of timers) {
    const interval = it.interval_sec * USEC + it.interval_usec;
    let value = it.value_sec * USEC + it.value_usec;
    // A periodic ITIMER_REAL that has fired reads 0 until its SIGALRM is
    // dequeued (the kernel re-arms it then); 0 would disarm it here.
    if (value === 0n) value = interval;
    const got = setitimer(t, it.which, interval, value);
    // CPU-time timers round the value up to a tick: take the excess back so
    // that the program never sees more time left than it had.
    if (got > value && value > got - value) setitimer(t, it.which, interval, value - (got - value));
  }
}

export function restorePosixTimers(t: RestoreTarget, timers: PosixTimerFields[]): void {
  if (timers.length === 0) return;
  t.remote.call(NR.prctl, [PR.TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0], 'prctl(PR_TIMER_CREATE_RESTORE_IDS)');
  try {
    for (const tm of [...timers].sort((a, b) => a.id - b.id)) {
      t.scratch.reset();
      const sev = Buffer.alloc(64);
      sev.writeBigUInt64LE(tm.sigval, 0);
      sev.writeInt32LE(tm.signo, 8);
      sev.writeInt32LE(tm.notify, 12);
      sev.writeInt32LE(tm.notify_tid, 16);
      const idBuf = Buffer.alloc(8);
      idBuf.writeInt32LE(tm.id, 0);
      const sevAddr = t.scratch.put(sev);
      const idAddr = t.scratch.put(idBuf);
      t.remote.call(NR.timer_create, [tm.clock, sevAddr, idAddr], `timer_create(id ${tm.id})`);
      const got = t.mem.read(idAddr, 4).readInt32LE(0);
      if (got !== tm.id) throw new CkptError('INTERNAL', `pid ${t.pid}: POSIX timer ${tm.id} came back as ${got}`, { pid: t.pid });
      const its = Buffer.alloc(32);
      its.writeBigUInt64LE(tm.interval_sec, 0); its.writeBigUInt64LE(tm.interval_nsec, 8);
      its.writeBigUInt64LE(tm.value_sec, 16); its.writeBigUInt64LE(tm.value_nsec, 24);
      if (tm.value_sec || tm.value_nsec) t.remote.call(NR.timer_settime, [tm.id, 0, t.scratch.put(its), 0], `timer_settime(${tm.id})`);
    }
  } finally {
    t.remote.raw(NR.prctl, [PR.TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0]);
  }
}
