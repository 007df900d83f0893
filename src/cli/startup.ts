/**
 * Where a CLI command's time goes before and around the engine, for -v:
 * marks in ms since this process started (clock.ts).
 */
import type { CacheUse } from './code-cache.js';
import { uptimeMs } from '../clock.js';

/** What the executable (cli/loader.ts) leaves for -v. */
export interface LoaderMarks {
  /** The executable began: node's own start-up is over. */
  start: number;
  /** Whether the CLI's code came from the build's code cache. */
  cache: CacheUse;
}

export interface StartupMarks {
  /** node's own start-up is over: the executable began (or, unbundled, cli/bin.ts did). */
  bin: number;
  loader?: LoaderMarks;
  /** The command line (main.ts and what it imports) was loaded. */
  cli?: number;
  /** The engine's code (dump or restore) was loaded; the engine was done. */
  engineLoaded?: number;
  engineDone?: number;
}

const loader = (globalThis as { [k: symbol]: unknown })[Symbol.for('ckpt.loader')] as LoaderMarks | undefined;
export const startup: StartupMarks = { bin: loader?.start ?? uptimeMs(), loader };

/** The -v line: where the command's time went, from the process's start. */
export function formatStartup(m: StartupMarks, now = uptimeMs()): string {
  const f = (x: number) => x.toFixed(1);
  const parts = [`node ${f(m.bin)} ms`];
  const cache = m.loader ? ` (code cache ${m.loader.cache})` : '';
  if (m.cli !== undefined) parts.push(`cli modules ${f(m.cli - m.bin)} ms${cache}`);
  if (m.cli !== undefined && m.engineLoaded !== undefined) parts.push(`engine modules ${f(m.engineLoaded - m.cli)} ms`);
  if (m.engineLoaded !== undefined && m.engineDone !== undefined) parts.push(`engine ${f(m.engineDone - m.engineLoaded)} ms`);
  return `time since start ${f(now)} ms: ${parts.join(', ')}`;
}
