/**
 * The test side of the file protocol the C programs speak (test/programs/README.md):
 * W/ready, W/counter, W/check → W/report, W/exit.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRunning } from './proc.js';
import { waitFor } from './wait.js';

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function failIfDead(pid: number | undefined, what: string): void {
  if (pid !== undefined && !isRunning(pid)) throw new Error(`pid ${pid} died while waiting for ${what}`);
}

/**
 * Waits for W/ready and returns its "key=value" facts (pid, addresses...).
 * With `pid`, fails as soon as that process is dead instead of at the timeout.
 */
export async function waitReady(dir: string, opts: { timeoutMs?: number; pid?: number } = {}): Promise<Record<string, string>> {
  const text = await waitFor(
    `${dir}/ready`,
    () => {
      failIfDead(opts.pid, `${dir}/ready`);
      return readOrUndefined(join(dir, 'ready'));
    },
    opts.timeoutMs ?? 10_000,
  );
  return Object.fromEntries(text.trim().split(/\s+/).map((kv) => kv.split('=', 2) as [string, string]));
}

export interface CheckOptions {
  timeoutMs?: number;
  /** Called once W/check exists: wakes a program that only runs the protocol when woken (blocked.c pause/read). */
  poke?: () => void;
}

/** Asks the program to check itself and returns its one-line report ("PASS counter=N ..." or "FAIL ..."). */
export async function requestCheck(dir: string, opts: CheckOptions = {}): Promise<string> {
  const report = join(dir, 'report');
  rmSync(report, { force: true }); // whatever appears from now on answers this request
  writeFileSync(join(dir, 'check'), '');
  opts.poke?.();
  const text = await waitFor(
    () => `${report} (counter is ${readOrUndefined(join(dir, 'counter'))?.trim() ?? 'missing'})`,
    () => readOrUndefined(report),
    opts.timeoutMs ?? 20_000,
  );
  return text.trim();
}

/** The counter in a PASS report. */
export function reportedCounter(report: string): number {
  const m = /\bcounter=(\d+)/.exec(report);
  if (!m) throw new Error(`no counter in report: ${report}`);
  return Number(m[1]);
}

/** The last value the program published in W/counter. */
export function readCounter(dir: string): number {
  const text = readFileSync(join(dir, 'counter'), 'utf8');
  const value = Number.parseInt(text, 10);
  if (!Number.isFinite(value)) throw new Error(`bad counter in ${dir}: ${JSON.stringify(text)}`);
  return value;
}

/** Waits until W/counter exceeds `value`; returns the new value. */
export async function waitCounterAbove(dir: string, value: number, timeoutMs = 10_000): Promise<number> {
  return waitFor(
    `${dir}/counter to exceed ${value}`,
    () => {
      if (!existsSync(join(dir, 'counter'))) return undefined;
      const now = readCounter(dir);
      return now > value ? now : undefined;
    },
    timeoutMs,
  );
}

/** Asks the program to exit with `code` at its next protocol turn. */
export function requestExit(dir: string, code: number): void {
  // tmp + rename: the program must never read a half-written (empty) file
  writeFileSync(join(dir, '.exit.tmp'), `${code}\n`);
  renameSync(join(dir, '.exit.tmp'), join(dir, 'exit'));
}
