/**
 * Fault injection for tests: CKPT_FAULT=dump:pages (say) makes that step fail
 * as a real failure would, so that a test can walk every step and prove
 * that nothing is lost.
 */
import { CkptError } from './errors.js';

export const FAULT_STEPS = {
  dump: ['freeze', 'proc', 'remote', 'pages', 'write', 'commit'],
  restore: ['load', 'seed', 'clone', 'map', 'pages', 'files', 'signals', 'creds', 'verify', 'detach'],
} as const;

export type FaultStep = `dump:${(typeof FAULT_STEPS.dump)[number]}` | `restore:${(typeof FAULT_STEPS.restore)[number]}`;

export function fault(step: FaultStep): void {
  checkAbort();
  if (process.env.CKPT_FAULT === step) throw new CkptError('INTERNAL', `injected fault at ${step} (CKPT_FAULT)`);
}

/**
 * Moments inside the remote-call window of a dump (ptrace/frozen.ts, remote.ts):
 * `parked` frame written and registers parked on it, `masked` signals blocked,
 * `call` registers set for a call, `entry`/`exit` at its syscall stops, `moved`
 * the frame moved into the scratch mapping, `leave` scratch gone, `unmasked`
 * the mask back, `child` the snapshot child just cloned, `chain` a chain of
 * calls written and the registers on it (ptrace/chain.ts), `chained` its
 * marker's stop, `ahead` a dump -R's write-protection armed, before its first
 * page is copied (dump/precopy.ts).
 */
export type DiePoint = 'parked' | 'masked' | 'call' | 'entry' | 'exit' | 'moved' | 'leave' | 'unmasked' | 'child' | 'chain' | 'chained' | 'ahead';

/**
 * Test-only: CKPT_STEP_PAUSE_MS=N makes a dump or restore wait N ms after it
 * reported each step (-vv), so that a test's signal lands between that step
 * and the next check for one, however fast the steps after it have become
 * (test/e2e-signals.test.ts). Nothing is checked here: the engine's own
 * checks after the step see the signal.
 */
export function pauseAfterStep(): void {
  const ms = Number(process.env.CKPT_STEP_PAUSE_MS ?? 0);
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const DIE = process.env.CKPT_DIE;

/**
 * With CKPT_DIE at a point outside chains, a task's questions are asked one
 * call each (ptrace/chain.ts is not used): the Nth call is then the same
 * whatever the task was doing when it was frozen.
 */
export function chainsAllowed(): boolean {
  return DIE === undefined || DIE.startsWith('chain');
}
const dieCounts = new Map<string, number>();

/**
 * CKPT_DIE=POINT:N makes ckpt SIGKILL itself the Nth time it reaches POINT, so
 * that a test can show what a kill at exactly that instant leaves behind.
 */
export function diePoint(point: DiePoint): void {
  if (DIE === undefined) return;
  const [p, n] = DIE.split(':');
  if (p !== point) return;
  const count = (dieCounts.get(point) ?? 0) + 1;
  dieCounts.set(point, count);
  if (count === Number(n ?? 1)) process.kill(process.pid, 'SIGKILL');
}

const SIGNAL_NAMES: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 15: 'SIGTERM' };
let abortFlag: Int32Array | undefined;

/**
 * Where the engine looks to know that its caller wants it to stop: word 0 of
 * a SharedArrayBuffer, set by another thread (the CLI's signal handlers, the
 * library's AbortSignal): 0 carry on, N > 0 stop because of signal N, -1 stop.
 */
export function watchAbort(flag: SharedArrayBuffer | undefined): void {
  abortFlag = flag ? new Int32Array(flag) : undefined;
}

/**
 * Throws INTERRUPTED if the caller asked to stop. Called at every fault() step
 * and between page batches: the failure path then puts everything back, as
 * for any other error.
 */
export function checkAbort(): void {
  if (!abortFlag) return;
  const sig = Atomics.load(abortFlag, 0);
  if (sig === 0) return;
  const why = sig > 0 ? `interrupted by ${SIGNAL_NAMES[sig] ?? `signal ${sig}`}` : 'aborted';
  throw new CkptError('INTERRUPTED', why, sig > 0 ? { signal: sig } : {});
}
