import { existsSync, readFileSync, readdirSync } from 'node:fs';

/** What /proc says about one process; undefined once it is gone (reaped). */
export interface ProcInfo {
  comm: string;
  state: string;
  ppid: number;
  startTime: number;
}

export function procInfo(pid: number): ProcInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm may hold spaces and parentheses: it ends at the last ')'.
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return {
    comm: stat.slice(stat.indexOf('(') + 1, close),
    state: fields[0],
    ppid: Number(fields[1]),
    startTime: Number(fields[19]),
  };
}

/** True while /proc/PID exists, zombies included (a zombie still holds its pid). */
export function exists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** Alive and not a zombie. */
export function isRunning(pid: number): boolean {
  const info = procInfo(pid);
  return info !== undefined && info.state !== 'Z' && info.state !== 'X';
}

/**
 * The syscall number the process is blocked in, from /proc/PID/syscall:
 * 'running' when it is on a CPU, -1 when it is stopped outside a syscall,
 * undefined when it is gone.
 */
export function currentSyscall(pid: number): number | 'running' | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/syscall`, 'utf8').trim();
  } catch {
    return undefined;
  }
  return text === 'running' ? 'running' : Number(text.split(' ')[0]);
}

/** Pids of the live (non-zombie) processes whose comm is `comm`. */
export function pidsWithComm(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = procInfo(Number(entry));
    if (info?.comm === comm && info.state !== 'Z') pids.push(Number(entry));
  }
  return pids.sort((a, b) => a - b);
}

export function threadCount(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

/** A pid no process holds right now (the highest free one, far from where new pids are handed out). */
export function unusedPid(): number {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  for (let pid = max - 1; pid > 300; pid--) if (!exists(pid)) return pid;
  throw new Error('no free pid');
}

/** The pid tracing this process (0: none), from /proc/PID/status. */
export function tracerPid(pid: number): number {
  const m = /^TracerPid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no TracerPid in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Pids of the live processes with `arg` among their argv (a test's unique work dir names its program). */
export function pidsWithArg(arg: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv.includes(arg) && isRunning(Number(entry))) pids.push(Number(entry));
  }
  return pids.sort((a, b) => a - b);
}
