/** The option and result types of the library API (src/index.ts). */
import type { DumpResult as EngineDumpResult } from '../dump/dump.js';
import type { RestoreResult as EngineRestoreResult } from '../restore/restore.js';

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

export interface DumpOptions {
  /** The process to dump (with all its threads; a process with children is refused today). */
  pid: number;
  /** Where the image goes: DIR must not exist, be empty, or (with `force`) hold an image. */
  dir: string;
  /** Let the process run on after the dump (default: it is killed). */
  leaveRunning?: boolean;
  /** The process uses a terminal inherited from a shell (`-j`). */
  shellJob?: boolean;
  /** Replace an image already in DIR. */
  force?: boolean;
  /** Compress page data (default 'none'); restore detects it. */
  compress?: 'zstd' | 'lz4' | 'none';
  /** Each line the engine logs (what `ckpt dump -v` prints). */
  log?: (msg: string) => void;
  /** Progress reports; see {@link Progress}. */
  onProgress?: ProgressListener;
}

export type DumpResult = EngineDumpResult;

export interface RestoreOptions {
  /** The image directory. */
  dir: string;
  /**
   * Like `ckpt restore -d`: the process's parent-death signal is not re-armed.
   * Either way the promise resolves as soon as the process runs, and the
   * library reaps it when it exits (it is a child of the caller's process).
   */
  detach?: boolean;
  /** Write the restored pid to this file. */
  pidfile?: string;
  /** Give the process the caller's terminal for the terminal fds it had (`-j`). */
  shellJob?: boolean;
  log?: (msg: string) => void;
  onProgress?: ProgressListener;
}

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
