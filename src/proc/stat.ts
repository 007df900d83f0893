import { readProcText } from './read.js';
import { badProc } from './text.js';

/**
 * /proc/PID/stat, every field by its proc(5) name (snake_case, as proc(5) spells them).
 * All but comm and state are numbers; rsslim of RLIM_INFINITY reads as 2**64 (inexact:
 * take exact limits from /proc/PID/limits).
 */
export interface Stat {
  pid: number;
  /** raw comm, not escaped: may hold spaces, ')' and even '\n' */
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  tty_nr: number;
  tpgid: number;
  flags: number;
  minflt: number;
  cminflt: number;
  majflt: number;
  cmajflt: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  priority: number;
  nice: number;
  num_threads: number;
  itrealvalue: number;
  starttime: number;
  vsize: number;
  rss: number;
  rsslim: number;
  startcode: number;
  endcode: number;
  startstack: number;
  kstkesp: number;
  kstkeip: number;
  signal: number;
  blocked: number;
  sigignore: number;
  sigcatch: number;
  wchan: number;
  nswap: number;
  cnswap: number;
  exit_signal: number;
  processor: number;
  rt_priority: number;
  policy: number;
  delayacct_blkio_ticks: number;
  guest_time: number;
  cguest_time: number;
  start_data: number;
  end_data: number;
  start_brk: number;
  arg_start: number;
  arg_end: number;
  env_start: number;
  env_end: number;
  exit_code: number;
}

type NumericField = Exclude<keyof Stat, 'pid' | 'comm' | 'state'>;

/** The fields after state, in the kernel's order (fields 4..52). */
const AFTER_STATE: readonly NumericField[] = [
  'ppid', 'pgrp', 'session', 'tty_nr', 'tpgid', 'flags', 'minflt', 'cminflt', 'majflt',
  'cmajflt', 'utime', 'stime', 'cutime', 'cstime', 'priority', 'nice', 'num_threads',
  'itrealvalue', 'starttime', 'vsize', 'rss', 'rsslim', 'startcode', 'endcode',
  'startstack', 'kstkesp', 'kstkeip', 'signal', 'blocked', 'sigignore', 'sigcatch',
  'wchan', 'nswap', 'cnswap', 'exit_signal', 'processor', 'rt_priority', 'policy',
  'delayacct_blkio_ticks', 'guest_time', 'cguest_time', 'start_data', 'end_data',
  'start_brk', 'arg_start', 'arg_end', 'env_start', 'env_end', 'exit_code',
];

export function parseStat(text: string): Stat {
  const open = text.indexOf(' (');
  // comm can hold ')' itself: it ends at the LAST ')'
  const close = text.lastIndexOf(')');
  if (open <= 0 || close < open) throw badProc('stat', JSON.stringify(text.slice(0, 80)));
  const rest = text.slice(close + 1).trim().split(' ');
  if (rest.length < AFTER_STATE.length + 1) {
    throw badProc('stat', `${rest.length + 2} fields, want ${AFTER_STATE.length + 3}`);
  }
  const stat = {
    pid: toInt(text.slice(0, open), 'pid'),
    comm: text.slice(open + 2, close),
    state: rest[0]!,
  } as Stat;
  AFTER_STATE.forEach((name, i) => {
    stat[name] = toInt(rest[i + 1]!, name);
  });
  return stat;
}

function toInt(s: string, name: string): number {
  if (!/^-?\d+$/.test(s)) throw badProc('stat', `${name} ${JSON.stringify(s)}`);
  return Number(s);
}

export const readStat = (pid: number): Stat => parseStat(readProcText(pid, 'stat'));
