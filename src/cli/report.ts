/**
 * What `dump` and `restore` say while they work: the engine's log lines (-v),
 * each step as it ends with its time (-vv), a progress line on a terminal for
 * big images, and a log file (--log-file) that gets everything -vv says, with
 * timestamps, whatever the verbosity on stderr.
 *
 * The engine runs synchronously in this process (see commands.ts), so every
 * report arrives while the event loop is blocked: stderr is written with
 * write(2) (stdout.ts writeLine), and the log file with writeSync.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CkptError } from '../errors.js';
import { VERSION } from '../version.js';
import { writeLine } from './stdout.js';
import { uptimeMs } from '../clock.js';

/** Progress is drawn only for images bigger than this. */
export const PROGRESS_MIN_BYTES = 64 * 1024 * 1024;
/** At most one redraw per this many ms. */
const REDRAW_MS = 100;

interface EngineProgress { phase: string; done: number; total: number }

export interface ReportOptions {
  /** 0: quiet; 1 (-v): the time breakdown; 2 (-vv): also each step as it ends. */
  verbose: number;
  /** --log-file FILE. */
  logFile?: unknown;
  /** For restore: the bytes of pages the image holds (progress needs a total up front). */
  totalBytes?: number;
}

const MiB = 1024 * 1024;
const mib = (n: number) => (n / MiB).toFixed(1);

let current: Report | undefined;

export class Report {
  private fd?: number;
  private t0 = uptimeMs();
  private lastStepAt = this.t0;
  private pagesFrom?: number;
  private total = 0;
  private drawn = '';
  private lastDraw = 0;
  /** Whether stderr is a terminal: asked only for a large image, since asking makes node's stderr stream (~4 ms of modules). */
  private stderrTty?: boolean;

  constructor(private cmd: string, argv: string[], private opts: ReportOptions) {
    if (opts.logFile !== undefined) {
      if (typeof opts.logFile !== 'string' || opts.logFile === '') throw new CkptError('USAGE', `${cmd}: --log-file needs a file name`);
      try {
        this.fd = fs.openSync(opts.logFile, 'a', 0o644);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        const code = err.code === 'EACCES' || err.code === 'EPERM' ? 'PERMISSION' : 'USAGE';
        throw new CkptError(code, `${cmd}: cannot open log file ${opts.logFile}: ${err.code ?? err.message}`, { path: path.resolve(opts.logFile) });
      }
      this.file(`ckpt ${VERSION} ${cmd} ${argv.join(' ')} (pid ${process.pid})`);
    }
    if (opts.totalBytes !== undefined) this.total = opts.totalBytes;
    current = this;
  }

  /** What to pass to the engine: its log and progress listeners. */
  get engine(): { log: (msg: string) => void; onProgress: (p: EngineProgress) => void } {
    return { log: (msg) => this.log(msg), onProgress: (p) => this.progress(p) };
  }

  /** An engine log line: stderr with -v (a warning always), and the log file. */
  log(msg: string): void {
    this.file(msg);
    if (this.opts.verbose >= 1 || msg.startsWith('warning: ')) this.line(`ckpt: ${msg}`);
  }

  progress(p: EngineProgress): void {
    try {
      // A step ends: {phase: step, done: 1, total: 1}. Page copying reports bytes (page multiples), never 1 of 1.
      if (p.done === 1 && p.total === 1) this.step(p.phase);
      else if (p.phase === 'pages') this.pages(p.done, p.total);
    } catch { /* a report must never break a dump */ }
  }

  private step(name: string): void {
    const now = uptimeMs();
    const ms = now - this.lastStepAt;
    this.lastStepAt = now;
    if (name === 'pages') this.pagesDone(now, ms);
    // Restore hears no byte counts while it copies: show the total before its pages step.
    else if (this.opts.totalBytes !== undefined && !this.pagesOver) this.draw(0, this.total, 0);
    const msg = `${this.cmd}: ${name} ${ms.toFixed(1)} ms`;
    this.file(msg);
    if (this.opts.verbose >= 2) this.line(`ckpt: ${msg}`);
  }

  /** Dump: bytes copied so far of the resident total (an estimate: the exact page count comes at the end). */
  private pages(done: number, total: number): void {
    if (this.pagesFrom === undefined) this.pagesFrom = this.lastStepAt;
    this.total = total;
    this.lastDone = done;
    const now = uptimeMs();
    if (now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    this.draw(done, Math.max(done, total), now - this.pagesFrom);
  }

  /** The pages step ended: the last, exact line. */
  private pagesDone(now: number, stepMs: number): void {
    if (!this.showsProgress()) return;
    // Restore hears no byte counts: the whole step moved the image's pages.
    const done = this.pagesFrom === undefined ? this.total : this.lastDone;
    const ms = this.pagesFrom === undefined ? stepMs : now - this.pagesFrom;
    this.draw(done, done, ms);
    writeLine(2, '\n');
    this.drawn = '';
    this.pagesOver = true;
  }

  private lastDone = 0;
  private pagesOver = false;

  private showsProgress(): boolean {
    return this.total > PROGRESS_MIN_BYTES && (this.stderrTty ??= !!process.stderr.isTTY);
  }

  private draw(done: number, total: number, ms: number): void {
    if (!this.showsProgress()) return;
    const rate = ms > 0 && done > 0 ? `${Math.round(done / MiB / (ms / 1000))} MiB/s` : '';
    this.drawn = `ckpt: ${this.cmd}: ${mib(done)} / ${mib(total)} MiB  ${rate}`;
    writeLine(2, `\r${this.drawn}\x1b[K`);
  }

  /** A whole line on stderr, clearing the progress line first and redrawing it after. */
  private line(s: string): void {
    if (this.drawn) writeLine(2, '\r\x1b[K');
    writeLine(2, `${s}\n`);
    if (this.drawn) writeLine(2, this.drawn);
  }

  private file(msg: string): void {
    if (this.fd === undefined) return;
    try {
      fs.writeSync(this.fd, `${new Date().toISOString()} ${msg}\n`);
    } catch { /* a full disk must not fail the dump */ }
  }

  /** The command is over: a last line in the log file, which is closed. */
  end(code: number, error?: string): void {
    if (this.drawn) { writeLine(2, '\n'); this.drawn = ''; }
    const ms = (uptimeMs() - this.t0).toFixed(1);
    this.file(error === undefined ? `${this.cmd}: done after ${ms} ms, exit ${code}` : `${this.cmd}: failed after ${ms} ms, exit ${code}: ${error}`);
    if (this.fd !== undefined) { try { fs.closeSync(this.fd); } catch { /* nothing to do */ } }
    this.fd = undefined;
    if (current === this) current = undefined;
  }
}

/** Starts the report of one dump or restore (opens --log-file: a bad path fails before anything is touched). */
export function openReport(cmd: string, argv: string[], opts: ReportOptions): Report {
  return new Report(cmd, argv, opts);
}

/** The bytes of pages an image directory holds (pages.img), or undefined. */
export function imagePagesBytes(dir: unknown): number | undefined {
  if (typeof dir !== 'string') return undefined;
  try { return fs.statSync(path.join(dir, 'pages.img')).size; } catch { return undefined; }
}

/** For main.ts: the command ended with this exit code, or failed with this message. */
export function endReport(outcome: { code: number } | { error: string; code: number }): void {
  if (!current) return;
  current.end(outcome.code, 'error' in outcome ? outcome.error : undefined);
}
