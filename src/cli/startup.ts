/**
 * Where a CLI command's time goes before and around the engine, for -v:
 * marks in ms since this process started (performance.now()).
 */
export interface StartupMarks {
  /** src/cli/bin.ts began: node's own start-up is over. */
  bin: number;
  /** The command line (main.ts and what it imports) was loaded. */
  cli?: number;
  /** The engine's code (dump or restore) was loaded; the engine was done. */
  engineLoaded?: number;
  engineDone?: number;
}

export const startup: StartupMarks = { bin: performance.now() };

/** The -v line: where the command's time went, from the process's start. */
export function formatStartup(m: StartupMarks, now = performance.now()): string {
  const f = (x: number) => x.toFixed(1);
  const parts = [`node ${f(m.bin)} ms`];
  if (m.cli !== undefined) parts.push(`cli modules ${f(m.cli - m.bin)} ms`);
  if (m.cli !== undefined && m.engineLoaded !== undefined) parts.push(`engine modules ${f(m.engineLoaded - m.cli)} ms`);
  if (m.engineLoaded !== undefined && m.engineDone !== undefined) parts.push(`engine ${f(m.engineDone - m.engineLoaded)} ms`);
  return `time since start ${f(now)} ms: ${parts.join(', ')}`;
}
