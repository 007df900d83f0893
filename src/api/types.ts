/** The option and result types of the library API (src/index.ts). */
import type { DumpOptions as EngineDumpOptions, DumpResult as EngineDumpResult } from '../dump/dump.js';
import type { RestoreOptions as EngineRestoreOptions, RestoreResult as EngineRestoreResult } from '../restore/restore.js';

/**
 * One progress report: `start` when the engine begins (in its worker), each
 * engine step as it ends (freeze, proc, remote, pages, write... with done 1 of
 * 1), `pages` while a dump copies pages (bytes done of the resident total),
 * `log` for each line the engine logs (`message` holds it), `end` once the
 * result is in.
 */
export interface Progress {
  phase: 'start' | 'log' | 'end' | (string & {});
  done: number;
  total: number;
  message?: string;
}

export type ProgressListener = (p: Progress) => void;

/**
 * The engine's options (documented in src/dump/dump.ts and src/restore/restore.ts),
 * with progress reports as the library gives them. A restored process is a child
 * of the caller's process, reaped by the library when it exits, with or without
 * `detach`.
 */
export type DumpOptions = Omit<EngineDumpOptions, 'onProgress'> & { onProgress?: ProgressListener };

export type DumpResult = EngineDumpResult;

export type RestoreOptions = Omit<EngineRestoreOptions, 'onProgress'> & { onProgress?: ProgressListener };

/** How a restored process ended. */
export interface ExitStatus {
  /** Its exit code, or null if a signal killed it. */
  code: number | null;
  /** The signal that killed it, or null. */
  signal: NodeJS.Signals | null;
  /** Shell style: `code`, or 128 + the signal number (what `ckpt restore` exits with). */
  status: number;
}

export interface RestoreResult extends EngineRestoreResult {
  /**
   * Settles when the restored process exits (not enumerable: JSON.stringify
   * of the result prints {pid, pids, ms, timings}). Reading it keeps the
   * caller's event loop alive until then; otherwise the library's waiter does not.
   */
  readonly exited: Promise<ExitStatus>;
}
