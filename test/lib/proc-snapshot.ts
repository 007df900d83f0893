/**
 * What /proc says about a process, field by field, so that an unmodified
 * program (which cannot check itself) can be compared before a dump and after
 * its restore. Everything is compared except the fields listed below, each
 * with the reason it may legitimately differ.
 */
import { readFileSync } from 'node:fs';

export interface ProcSnapshot {
  /** /proc/PID/status as "Name" → value (whitespace as the kernel wrote it). */
  status: Map<string, string>;
  /** /proc/PID/stat fields by their 1-based number in proc(5): 1 pid, 2 comm, 3 state... */
  stat: Map<number, string>;
  limits: string;
  cmdline: string;
  environ: string;
}

/** /proc/PID/status lines that may differ between a process and its restored copy. */
export const STATUS_EXCLUDED: Readonly<Record<string, string>> = {
  PPid: 'without -d, the parent of the restored process is `ckpt restore`, not whoever started the original',
  FDSize: 'the capacity of the fd table, which only grows: the restorer may use higher fds inside the process before closing them',
  VmPeak: 'a high-water mark of the address space: counts what the restorer mapped in the process for a while',
  VmHWM: 'a high-water mark of resident memory: counts what the restorer touched in the process',
  VmRSS: 'resident pages: a restored process has the dumped pages in core, file-backed ones only come back when touched',
  RssAnon: 'resident anonymous pages (see VmRSS)',
  RssFile: 'resident file pages (see VmRSS)',
  RssShmem: 'resident shared memory pages (see VmRSS)',
  VmPTE: 'page-table size: follows which pages are resident (see VmRSS)',
  VmSwap: 'how much of the process is swapped out: up to memory pressure',
  voluntary_ctxt_switches: 'a counter since the task started',
  nonvoluntary_ctxt_switches: 'a counter since the task started',
};

/** /proc/PID/stat fields (1-based, proc(5)) that may differ between a process and its restored copy. */
export const STAT_EXCLUDED: Readonly<Record<number, string>> = {
  4: 'ppid: see PPid in status',
  9: "flags: kernel task flags that record the task's history, not its state: PF_FORKNOEXEC (the restored task was forked by the restorer and never exec'd) and PF_SUPERPRIV (the restorer used root privileges in it before it became the dumped user)",
  10: 'minflt: a counter since the task started',
  11: 'cminflt: a counter of reaped children since the task started',
  12: 'majflt: a counter since the task started',
  13: 'cmajflt: a counter of reaped children since the task started',
  14: 'utime: CPU time since the task started',
  15: 'stime: CPU time since the task started',
  16: 'cutime: CPU time of reaped children since the task started',
  17: 'cstime: CPU time of reaped children since the task started',
  22: 'starttime: the restored task started at restore time',
  24: 'rss: resident pages (see VmRSS in status)',
  42: 'delayacct_blkio_ticks: a counter since the task started',
  43: 'guest_time: a counter since the task started',
  44: 'cguest_time: a counter since the task started',
};

export function procSnapshot(pid: number): ProcSnapshot {
  const read = (name: string) => readFileSync(`/proc/${pid}/${name}`, 'utf8');
  const status = new Map<string, string>();
  for (const line of read('status').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) status.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const statText = read('stat');
  const open = statText.indexOf('(');
  const close = statText.lastIndexOf(')'); // comm may hold spaces and parentheses
  const stat = new Map<number, string>();
  stat.set(1, statText.slice(0, open).trim());
  stat.set(2, statText.slice(open + 1, close));
  statText
    .slice(close + 2)
    .trim()
    .split(' ')
    .forEach((value, i) => stat.set(i + 3, value));
  return { status, stat, limits: read('limits'), cmdline: read('cmdline'), environ: read('environ') };
}

/** Every difference between two snapshots outside the exclusions, one line each (empty: the same). */
export function diffSnapshots(before: ProcSnapshot, after: ProcSnapshot): string[] {
  const diffs: string[] = [];
  const show = (s: string | undefined) => (s === undefined ? '(missing)' : JSON.stringify(s));
  for (const key of new Set([...before.status.keys(), ...after.status.keys()])) {
    if (key in STATUS_EXCLUDED) continue;
    if (before.status.get(key) !== after.status.get(key))
      diffs.push(`status ${key}: ${show(before.status.get(key))} → ${show(after.status.get(key))}`);
  }
  for (const n of new Set([...before.stat.keys(), ...after.stat.keys()])) {
    if (n in STAT_EXCLUDED) continue;
    if (before.stat.get(n) !== after.stat.get(n)) diffs.push(`stat field ${n}: ${show(before.stat.get(n))} → ${show(after.stat.get(n))}`);
  }
  if (before.limits !== after.limits) diffs.push(`limits:\n${before.limits}→\n${after.limits}`);
  if (before.cmdline !== after.cmdline) diffs.push(`cmdline: ${show(before.cmdline)} → ${show(after.cmdline)}`);
  if (before.environ !== after.environ) diffs.push(`environ: ${show(before.environ)} → ${show(after.environ)}`);
  return diffs;
}
