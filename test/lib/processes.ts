import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { basename } from 'node:path';
import { compile } from './programs.js';
import { exists, procInfo, currentSyscall } from './proc.js';
import { waitFor } from './wait.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartedProgram {
  pid: number;
  child: ChildProcess;
  /** Settles when the process Node started exits (not a restored copy: that one is not our child). */
  exited: Promise<Exit>;
}

/**
 * Starts a test program in its own session (detached), stdio to /dev/null,
 * no other fd inherited (clean-exec.c), and tracks it for killAll().
 */
export function startProgram(binary: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): StartedProgram {
  const child = spawn(compile('clean-exec'), [binary, ...args], { detached: true, stdio: 'ignore', cwd: opts.cwd, env: opts.env ?? process.env });
  if (child.pid === undefined) throw new Error(`cannot start ${binary}`);
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', () => resolve({ code: null, signal: null }));
  });
  track(child.pid, basename(binary).slice(0, 15)); // the kernel's comm: the exec'd name, 15 bytes at most
  return { pid: child.pid, child, exited };
}

/**
 * Starts a test program as an orphan: a shell starts it in the background and
 * exits, so its parent is init, not this Node process. Needed when this
 * process itself traces it (the library API): libuv waitpid()s its own
 * children and would take their ptrace stops.
 */
export function startOrphan(binary: string, args: string[]): { pid: number } {
  const r = spawnSync('sh', ['-c', '"$0" "$@" </dev/null >/dev/null 2>&1 & echo $!', compile('clean-exec'), binary, ...args], { encoding: 'utf8' });
  const pid = Number.parseInt(r.stdout, 10);
  if (!(pid > 0)) throw new Error(`cannot start ${binary}: ${r.stderr}`);
  track(pid, basename(binary).slice(0, 15));
  return { pid };
}

// ---- the cleanup registry -----------------------------------------------------

/**
 * How a tracked pid is recognised at cleanup time, so that a pid the kernel
 * has since given to someone else (pid_max is small here) is never killed.
 * A test program may be restored under the same pid with a new start time, so
 * it is recognised by its comm; a ckpt process never is, so by its start time.
 */
type Identity = { comm: string } | { startTime: number };

const tracked = new Map<number, Identity>();

/**
 * Tracks a test program, and so any copy of it restored under the same pid:
 * killAll() kills whatever holds PID with this comm (default: its comm now).
 */
export function track(pid: number, comm = procInfo(pid)?.comm): void {
  if (comm !== undefined) tracked.set(pid, { comm });
}

/** Tracks exactly this process: killAll() kills PID only if it is still the process started then. */
export function trackExact(pid: number): void {
  const info = procInfo(pid);
  if (info) tracked.set(pid, { startTime: info.startTime });
}

function isStillTracked(pid: number, identity: Identity): boolean {
  const info = procInfo(pid);
  if (!info) return false;
  return 'comm' in identity ? info.comm === identity.comm : info.startTime === identity.startTime;
}

/**
 * SIGKILLs every tracked process (by pid) and waits until each is gone.
 * Programs stay tracked afterwards: an image of one may be restored later.
 */
export async function killAll(timeoutMs = 10_000): Promise<void> {
  const victims = [...tracked].filter(([pid, identity]) => pid > 1 && pid !== process.pid && isStillTracked(pid, identity));
  for (const [pid, identity] of tracked) if ('startTime' in identity) tracked.delete(pid);
  for (const [pid] of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const results = await Promise.allSettled(victims.map(([pid]) => waitGone(pid, timeoutMs)));
  const stuck = victims.filter((_, i) => results[i].status === 'rejected').map(([pid]) => pid);
  if (stuck.length) throw new Error(`processes still present after SIGKILL: ${stuck.join(', ')}`);
}

// ---- waiting on processes -----------------------------------------------------

/**
 * Waits until /proc/PID is gone: dead and reaped. An orphan is reaped by
 * PID 1, which here does it only every ~2 s, hence the generous default.
 */
export async function waitGone(pid: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(`pid ${pid} to be gone`, () => (exists(pid) ? undefined : true), timeoutMs);
}

/** Waits until the process sits blocked in syscall `nr` (see /proc/PID/syscall). */
export async function waitBlockedIn(pid: number, nr: number, timeoutMs = 10_000): Promise<void> {
  let last: ReturnType<typeof currentSyscall>;
  await waitFor(
    () => `pid ${pid} to block in syscall ${nr} (last seen: ${String(last)})`,
    () => {
      last = currentSyscall(pid); // undefined: not there (yet: it may be a restore in progress)
      return last === nr ? true : undefined;
    },
    timeoutMs,
  );
}

/** Syscall numbers the blocked tests look for in /proc/PID/syscall (x86_64). */
export const SYSCALL = { read: 0, poll: 7, pause: 34, nanosleep: 35, futex: 202, restart_syscall: 219, clock_nanosleep: 230 } as const;
