/** The messages between the library (main side, src/api/engine.ts) and its engine worker (src/api/engine-worker.ts). */
import { CkptError, type ErrorCode, type ErrorData } from '../errors.js';
import type { DumpOptions as EngineDumpOptions } from '../dump/dump.js';
import type { RestoreOptions as EngineRestoreOptions } from '../restore/restore.js';

type Plain<T> = Omit<T, 'log' | 'onProgress'>;

/** What a worker is asked to do: one operation (workerData for a new worker, a message for a pooled one). */
export type EngineOp =
  | { op: 'dump'; opts: Plain<EngineDumpOptions>; log: boolean; abort?: SharedArrayBuffer; traced?: SharedArrayBuffer; cpus?: SharedArrayBuffer }
  | { op: 'restore'; opts: Plain<EngineRestoreOptions>; log: boolean; abort?: SharedArrayBuffer; traced?: SharedArrayBuffer }
  | { op: 'show'; dir: string }
  | { op: 'check' };

/** An operation as sent: `id` names it in the exit messages of a restore, which may come after later operations. */
export type EngineRequest = EngineOp & { id: number };

/** A CkptError (or anything else thrown) as it crosses the thread boundary. */
export interface WireError {
  code: ErrorCode;
  message: string;
  data: ErrorData;
  /** The stack inside the worker, for CKPT_DEBUG and `cause`. */
  stack?: string;
}

export type WorkerMessage =
  | { t: 'start' }
  | { t: 'log'; message: string }
  /** A step of the engine ended, or page copying went on (bytes done of total). */
  | { t: 'progress'; phase: string; done: number; total: number }
  | { t: 'result'; value: unknown }
  | { t: 'error'; error: WireError }
  /** restore `id`: the restored process exited; `status` is the raw wait status. */
  | { t: 'exit'; id: number; status: number }
  | { t: 'exit-error'; id: number; error: WireError };

/** Anything thrown, as it crosses to the main side: a CkptError keeps code, message and data; the rest is INTERNAL. */
export function toWire(e: unknown): WireError {
  if (e instanceof CkptError) return { code: e.code, message: e.message, data: { ...e.data }, stack: e.stack };
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'INTERNAL', message: `internal error: ${message.split('\n')[0]}`, data: {}, stack: e instanceof Error ? e.stack : undefined };
}
