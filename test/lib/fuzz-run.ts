/**
 * The image fuzzer's engine: build a case (seed + mutations, replayable from the campaign
 * seed and the case number), run everything restore checks before creating a process
 * (parseImage in memory; loadImage + verifyPages on a temp dir), and judge the outcome.
 *
 * Pass: success, or a CkptError with code BAD_IMAGE or NO_IMAGE.
 * Fail: any other exception (crash), a case slower than hangMs (hang), heap growth in one
 * case beyond a bound (memory), or an image parseImage refuses but loadImage accepts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { CkptError } from '../../src/errors.js';
import { parseImage } from '../../src/image/index.js';
import { registry } from '../../src/kinds/index.js';
import * as restoreLoad from '../../src/restore/load.js';
import { Rand, caseSeed } from './fuzz-rand.js';
import { MUTATOR_ERROR, mutate } from './fuzz-mutate.js';
import { buildImage, randomBuiltImage, randomProcessSpec, randomSchemaImage, type Input, type Seed } from './fuzz-synth.js';

export type Verdict = 'valid' | 'rejected' | 'crash' | 'hang' | 'memory' | 'inconsistent';
export type Stage = 'ok' | 'rejected' | 'crash' | 'skipped';

export interface Outcome {
  verdict: Verdict;
  parse: Stage;
  load: Stage;
  ms: number;
  /** The error that failed the case, or the last rejection. */
  error?: unknown;
  /** Heap (used + external) growth over the case, bytes. */
  heapGrowth: number;
}

export interface RunOptions {
  /** A directory of its own, reused for every case. */
  dir: string;
  hangMs?: number;
  /** Fail a case whose heap grows by more than max(this, 64 x the input size). Default 64 MiB. */
  heapGrowthBytes?: number;
}

export function accepted(e: unknown): e is CkptError {
  return e instanceof CkptError && (e.code === 'BAD_IMAGE' || e.code === 'NO_IMAGE');
}

function heapNow(): number {
  const h = v8.getHeapStatistics();
  return h.used_heap_size + h.external_memory;
}

/** A fresh directory for the cases: on tmpfs (/dev/shm) when there is one, it is written for every case. */
export function caseDir(label = 'ckpt-fuzz-'): string {
  for (const root of ['/dev/shm', os.tmpdir()]) {
    try {
      fs.accessSync(root, fs.constants.W_OK);
      return fs.mkdtempSync(path.join(root, label));
    } catch { /* next */ }
  }
  throw new Error('no writable temp directory');
}

export function writeInput(dir: string, input: Input): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of [['ckpt.img', input.img], ['pages.img', input.pages]] as const) {
    const p = path.join(dir, name);
    if (bytes === null) fs.rmSync(p, { force: true });
    else fs.writeFileSync(p, bytes, { mode: 0o600 });
  }
}

type Closable = { close(): void };
const loadApi = restoreLoad as unknown as {
  verifyPages?: (img: restoreLoad.LoadedImage) => Closable;
  openPages?: (img: restoreLoad.LoadedImage) => { reader: Closable; verdict: { wait(): void } };
};

/**
 * What restore checks of pages.img before the process runs: verifyPages(img), or (since
 * the CRC check went asynchronous) openPages(img) and its verdict.
 */
export function checkPages(img: restoreLoad.LoadedImage): void {
  if (loadApi.openPages !== undefined) {
    const { reader, verdict } = loadApi.openPages(img);
    try {
      verdict.wait();
    } finally {
      reader.close();
    }
  } else if (loadApi.verifyPages !== undefined) {
    loadApi.verifyPages(img).close();
  } else {
    throw new Error('src/restore/load.ts exports neither openPages nor verifyPages');
  }
}

/** Run one input through parseImage and (if `load`) loadImage + verifyPages. */
export function runInput(input: Input, load: boolean | 'if-parsed', opts: RunOptions): Outcome {
  const hangMs = opts.hangMs ?? 2000;
  const size = (input.img?.length ?? 0) + (input.pages?.length ?? 0);
  const bound = Math.max(opts.heapGrowthBytes ?? 64 * 1024 * 1024, 64 * size);
  const heap0 = heapNow();
  let peak = 0;
  const t0 = performance.now();
  const out = (verdict: Verdict, parse: Stage, loadStage: Stage, error?: unknown): Outcome => {
    const ms = performance.now() - t0;
    const heapGrowth = Math.max(peak, heapNow() - heap0);
    if (verdict === 'valid' || verdict === 'rejected') {
      if (ms > hangMs) return { verdict: 'hang', parse, load: loadStage, ms, error, heapGrowth };
      if (heapGrowth > bound) return { verdict: 'memory', parse, load: loadStage, ms, error, heapGrowth };
    }
    return { verdict, parse, load: loadStage, ms, error, heapGrowth };
  };
  let parse: Stage = 'skipped';
  let rejection: unknown;
  if (input.img !== null) {
    try {
      parseImage(input.img, registry);
      parse = 'ok';
    } catch (e) {
      if (!accepted(e)) return out('crash', 'crash', 'skipped', e);
      parse = 'rejected';
      rejection = e;
    }
    peak = heapNow() - heap0;
  }
  if (input.img !== null && (load === 'if-parsed' ? parse !== 'ok' : !load)) {
    return out(parse === 'ok' ? 'valid' : 'rejected', parse, 'skipped', rejection);
  }
  writeInput(opts.dir, input);
  let loadStage: Stage;
  try {
    checkPages(restoreLoad.loadImage(opts.dir));
    loadStage = 'ok';
  } catch (e) {
    if (!accepted(e)) return out('crash', parse, 'crash', e);
    loadStage = 'rejected';
    rejection = e;
  }
  if (parse === 'rejected' && loadStage === 'ok') {
    return out('inconsistent', parse, loadStage, new Error(`parseImage refused the image (${(rejection as Error).message}) but loadImage took it`));
  }
  return out(loadStage === 'ok' ? 'valid' : 'rejected', parse, loadStage, rejection);
}

// ---- the corpus ----

/** Synthetic seeds, all determined by `seed`: consistent images and every-schema images. */
export function syntheticCorpus(seed: number, n = 12): Seed[] {
  const r = new Rand(caseSeed(seed, -1 >>> 0));
  const out: Seed[] = [];
  const minimal = buildImage([{ pid: 4242, vmas: [{ start: 0x400000, end: 0x402000, prot: 3, kind: 0, saved: [1] }] }]);
  out.push({ ...minimal, name: 'minimal' });
  for (let i = 0; i < n; i++) {
    if (i % 3 === 2) out.push({ ...randomSchemaImage(r), name: `random-schemas-${i}` });
    else out.push({ ...randomBuiltImage(r), name: `random-built-${i}` });
  }
  // a process with many VMAs and runs
  const big = randomProcessSpec(r, 77);
  out.push({ ...buildImage([big, randomProcessSpec(r, 78), randomProcessSpec(r, 79)]), name: 'three-processes' });
  return out;
}

// ---- cases and campaigns ----

export interface Case {
  n: number;
  seedName: string;
  input: Input;
  log: string[];
  resealed: boolean;
  load: boolean | 'if-parsed';
}

/** Case n of the campaign `seed` over `corpus`: the same arguments give the same bytes. */
export function makeCase(corpus: readonly Seed[], seed: number, n: number, loadFraction = 0.15): Case {
  const r = new Rand(caseSeed(seed, n));
  const base = r.pick(corpus);
  const m = mutate(base, corpus, r);
  // Images the parser takes are always loaded (that is where the deep checks are); a
  // fraction of the others too, through readImage.
  const load = r.chance(loadFraction) ? true : 'if-parsed';
  return { n, seedName: base.name, input: m.input, log: m.log, resealed: m.resealed, load };
}

export interface Failure {
  seed: number;
  n: number;
  verdict: Verdict;
  message: string;
  ms: number;
  heapGrowth: number;
  log: string[];
  seedName: string;
  input: Input;
}

export interface Stats {
  cases: number;
  valid: number;
  rejected: number;
  loaded: number;
  resealed: number;
  /** Mutations that threw (bugs of the fuzzer itself), with the first message. */
  mutatorErrors: number;
  firstMutatorError?: string;
  failures: Failure[];
  /** Rejection messages with the numbers taken out, and how often each was seen. */
  messages: Map<string, number>;
  /** The same, for BAD_IMAGE errors that carry no offset. */
  noOffset: Map<string, number>;
  slowestMs: number;
  slowestCase: number;
  peakHeap: number;
  elapsedMs: number;
}

export function newStats(): Stats {
  return {
    cases: 0, valid: 0, rejected: 0, loaded: 0, resealed: 0, mutatorErrors: 0, failures: [], messages: new Map(), noOffset: new Map(),
    slowestMs: 0, slowestCase: -1, peakHeap: 0, elapsedMs: 0,
  };
}

/** A message with paths, numbers and hex taken out: one key per kind of check. */
export function messageShape(msg: string): string {
  return msg
    .replace(/\/[^\s:()]*\/(ckpt|pages)\.img/g, '$1.img')
    .replace(/(^|\s)\/[^\s:()]+/g, '$1DIR')
    .replace(/0x[0-9a-f]+/gi, 'X')
    .replace(/magic [0-9a-f]+/g, 'magic X')
    .replace(/'[^']*'/g, "'S'")
    .replace(/\b\d+\b/g, 'N')
    .replace(/\((stored|computed) X, computed X\)/, '(CRC)')
    .slice(0, 160);
}

export interface CampaignOptions {
  seed: number;
  /** Run cases [first, first + cases). */
  first?: number;
  cases: number;
  /** Stop after this long even if cases remain. */
  seconds?: number;
  loadFraction?: number;
  dir: string;
  hangMs?: number;
  heapGrowthBytes?: number;
  /** Fail when the heap in use exceeds this (a leak across cases). Default 1 GiB. */
  heapLimitBytes?: number;
  maxFailures?: number;
  onCaseStart?: (n: number) => void;
  onCaseEnd?: (s: Stats, n: number) => void;
  onProgress?: (s: Stats, n: number) => void;
  progressEvery?: number;
  onFailure?: (f: Failure) => void;
}

export function failureOf(seed: number, c: Case, o: Outcome): Failure {
  const e = o.error as Error | undefined;
  const message = o.verdict === 'hang' ? `case took ${o.ms.toFixed(0)} ms (limit exceeded)`
    : o.verdict === 'memory' ? `heap grew by ${(o.heapGrowth / 1048576).toFixed(1)} MiB in one case`
    : e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
  return {
    seed, n: c.n, verdict: o.verdict, message, ms: o.ms, heapGrowth: o.heapGrowth, log: c.log, seedName: c.seedName,
    input: c.input,
  };
}

/** Run a campaign in this thread (the test's bounded run; the worker of scripts/fuzz.mjs). */
export function runCampaign(corpus: readonly Seed[], opts: CampaignOptions): Stats {
  const s = newStats();
  const t0 = performance.now();
  const first = opts.first ?? 0;
  const deadline = opts.seconds === undefined ? Infinity : t0 + opts.seconds * 1000;
  const limit = opts.heapLimitBytes ?? 1024 * 1024 * 1024;
  const every = opts.progressEvery ?? 1000;
  for (let n = first; n < first + opts.cases; n++) {
    if (performance.now() > deadline) break;
    opts.onCaseStart?.(n);
    const c = makeCase(corpus, opts.seed, n, opts.loadFraction);
    let o = runInput(c.input, c.load, { dir: opts.dir, hangMs: opts.hangMs, heapGrowthBytes: opts.heapGrowthBytes });
    s.cases++;
    if (c.resealed) s.resealed++;
    const me = c.log.find((l) => l.includes(MUTATOR_ERROR));
    if (me !== undefined) {
      s.mutatorErrors++;
      s.firstMutatorError ??= `case ${n}: ${me}`;
    }
    if (o.load !== 'skipped') s.loaded++;
    if (o.ms > s.slowestMs) { s.slowestMs = o.ms; s.slowestCase = n; }
    const heap = v8.getHeapStatistics().used_heap_size;
    if (heap > s.peakHeap) s.peakHeap = heap;
    if ((o.verdict === 'valid' || o.verdict === 'rejected') && heap > limit) {
      o = { ...o, verdict: 'memory', error: new Error(`heap in use ${heap} bytes after this case`) };
    }
    if (o.verdict === 'valid') s.valid++;
    else if (o.verdict === 'rejected') {
      s.rejected++;
      const e = o.error as CkptError;
      const shape = `${e.code}: ${messageShape(e.message)}`;
      s.messages.set(shape, (s.messages.get(shape) ?? 0) + 1);
      if (e.code === 'BAD_IMAGE' && typeof e.data.offset !== 'number') s.noOffset.set(shape, (s.noOffset.get(shape) ?? 0) + 1);
    } else {
      const f = failureOf(opts.seed, c, o);
      s.failures.push(f);
      opts.onFailure?.(f);
      if (s.failures.length >= (opts.maxFailures ?? 20)) break;
    }
    opts.onCaseEnd?.(s, n);
    if (opts.onProgress && (n - first + 1) % every === 0) opts.onProgress(s, n);
  }
  s.elapsedMs = performance.now() - t0;
  return s;
}

/** Save a failing input (an image directory: ckpt show / ckpt restore / fuzz.mjs --input reproduce it). */
export function saveFailure(f: Failure, root = '/tmp'): string {
  const dir = path.join(root, `ckpt-fuzz-fail-s${f.seed}-c${f.n}`);
  fs.rmSync(dir, { recursive: true, force: true });
  writeInput(dir, f.input);
  fs.writeFileSync(path.join(dir, 'README.txt'), [
    `ckpt image fuzzer: failure (${f.verdict}) at seed ${f.seed}, case ${f.n} (seed image: ${f.seedName})`,
    `mutations: ${f.log.join('; ')}`,
    `took ${f.ms.toFixed(1)} ms, heap growth ${f.heapGrowth} bytes`,
    '',
    f.message,
    '',
    'reproduce: node scripts/fuzz.mjs --input ' + dir,
    '',
  ].join('\n'));
  return dir;
}
