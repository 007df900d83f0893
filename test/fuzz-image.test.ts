/**
 * Fuzzing of everything restore reads from an image before it creates a process:
 * parseImage (in memory), loadImage and the pages.img checks, on real and synthetic images
 * mutated at the byte, record and field level, CRCs resealed half of the time.
 * A bounded run with a fixed seed (the long campaign is scripts/fuzz.mjs), and hostile
 * images written by hand, each with its exact message and offset.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CkptError } from '../src/errors.js';
import { END, encodeRecord, Content, parseImage } from '../src/image/index.js';
import { SCHEMAS, registry } from '../src/kinds/index.js';
import { T } from '../src/kinds/ids.js';
import { VmaKind } from '../src/kinds/vma.js';
import { PROCESS } from '../src/kinds/process.js';
import { loadImage, TASK_SIZE } from '../src/restore/load.js';
import { dumpRealSeed } from './lib/fuzz-dump.js';
import { fieldOffset, reseal, walk, type Node } from './lib/fuzz-mutate.js';
import {
  caseDir, checkPages, makeCase, runCampaign, runInput, syntheticCorpus, writeInput, type Failure,
} from './lib/fuzz-run.js';
import { buildImage, type Input, type ProcessSpec, type Seed } from './lib/fuzz-synth.js';
import { fifoImageDir, sharedPagesImage } from './lib/fuzz-repro.js';
import { REPO_ROOT } from './lib/paths.js';

const SEED = 0x5eed;
const CASES = 3000;

let dir = '';
let real: Seed;
let corpus: Seed[] = [];

before(async () => {
  dir = caseDir('ckpt-fuzz-test-');
  real = await dumpRealSeed();
  corpus = [...syntheticCorpus(SEED), real, real, real]; // the real image weighs three
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function describeFailures(fs_: Failure[]): string {
  return fs_.map((f) => `case ${f.n} (seed ${f.seed}, ${f.seedName}): ${f.verdict}\n  ${f.log.join('; ')}\n  ${f.message}`).join('\n');
}

// ---- the seeds ----

test('seeds: the real dump and the consistent synthetic images load and verify', () => {
  assert.ok(real.img.length > 0 && real.pages !== null && real.pages.length > 4096);
  for (const s of corpus) {
    const o = runInput(s, true, { dir });
    if (s.name.startsWith('random-schemas')) {
      assert.equal(o.parse, 'ok', `${s.name}: ${(o.error as Error)?.message}`);
      assert.ok(o.verdict === 'valid' || o.verdict === 'rejected', `${s.name}: ${o.verdict}`);
    } else {
      assert.equal(o.verdict, 'valid', `${s.name}: ${(o.error as Error)?.stack}`);
    }
  }
});

test('seeds: every schema of src/kinds is in the corpus, the real dump has the main ones', () => {
  const types = new Set(corpus.flatMap((s) => walk(s.img).map((n) => n.type)));
  for (const s of SCHEMAS) assert.ok(types.has(s.type), `no ${s.name} record in the corpus`);
  const inReal = new Set(walk(real.img).map((n) => n.type));
  for (const t of [T.PROCESS, T.TASK, T.THREAD, T.REGS, T.XSTATE, T.MM, T.VMA, T.VMA_PATH, T.PAGE_RUNS, T.FD, T.PIPE, T.SIGACTION]) {
    assert.ok(inReal.has(t), `the real dump has no ${registry.label(t)} record`);
  }
});

test('cases replay: the same seed and case number give the same bytes', () => {
  for (const n of [0, 1, 17, 2999]) {
    const a = makeCase(corpus, SEED, n);
    const b = makeCase(corpus, SEED, n);
    assert.deepEqual(a.log, b.log);
    assert.ok((a.input.img === null && b.input.img === null) || a.input.img!.equals(b.input.img!));
  }
});

// ---- the bounded run ----

test(`fuzz: ${CASES} cases, seed 0x${SEED.toString(16)}: no crash, no hang, no runaway heap`, () => {
  const s = runCampaign(corpus, { seed: SEED, cases: CASES, dir, maxFailures: 5 });
  assert.equal(s.failures.length, 0, describeFailures(s.failures));
  assert.equal(s.cases, CASES);
  assert.equal(s.mutatorErrors, 0, s.firstMutatorError);
  assert.ok(s.valid > 0 && s.rejected > CASES / 2, `valid ${s.valid}, rejected ${s.rejected}`);
  assert.ok(s.loaded > CASES / 10, `only ${s.loaded} cases went through loadImage`);
  assert.ok(s.resealed > CASES / 3 && s.resealed < (2 * CASES) / 3, `${s.resealed} resealed`);
  // The mutations get past the CRCs to the checks behind them, in the codec and in load.
  const seen = [...s.messages.keys()].join('\n');
  for (const re of [
    /CRC mismatch/, /bad hdrlen/, /exceeds the N bytes after hdrlen/, /END counts N records/, /holds no \w+ record/,
    /is not a page-aligned range of user space/, /lies outside its VMA/, /fails its CRC/, /is not inside the N-byte file/,
    /is above N\^N/, /content is \w+, a \w+ record holds/, /pages\.img: /,
  ]) {
    assert.match(seen, re, `no rejection matched ${re}`);
  }
});

// ---- hostile images, by hand ----

const PID = 4242;
const SPEC: ProcessSpec = {
  pid: PID,
  vmas: [
    { start: 0x400000, end: 0x403000, prot: 3, kind: VmaKind.ANON, saved: [0, 2] }, // runs 0x400000+1, 0x402000+1
    { start: 0x600000, end: 0x601000, prot: 5, kind: VmaKind.FILE_PRIVATE, path: '/usr/bin/true' },
  ],
};
const BASE = buildImage([SPEC]);

function nth(img: Buffer, type: number, k = 0): Node {
  const n = walk(img).filter((x) => x.type === type)[k];
  assert.ok(n, `no ${registry.label(type)} #${k}`);
  return n;
}

/** A copy of the image, patched, every CRC resealed. */
function patched(fn: (b: Buffer) => void, img = BASE.img): Buffer {
  const b = Buffer.from(img);
  fn(b);
  reseal(b);
  return b;
}

function expectRejected(fn: () => unknown): CkptError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CkptError && (e.code === 'BAD_IMAGE' || e.code === 'NO_IMAGE')) return e;
    throw new assert.AssertionError({ message: `expected BAD_IMAGE or NO_IMAGE, got ${(e as Error)?.stack ?? String(e)}` });
  }
  throw new assert.AssertionError({ message: 'expected BAD_IMAGE or NO_IMAGE, nothing thrown' });
}

const parseErr = (img: Buffer) => expectRejected(() => parseImage(img, registry));
const loadErr = (input: Input) => expectRejected(() => {
  writeInput(dir, input);
  checkPages(loadImage(dir));
});

function assertError(e: CkptError, message: string, offset: number | undefined): void {
  assert.equal(e.message, message);
  assert.equal(e.data.offset, offset);
}

const u64 = (b: Buffer, at: number, v: bigint | number) => b.writeBigUInt64LE(BigInt(v), at);
const VMA_START = fieldOffset(T.VMA, 'start');
const VMA_END = fieldOffset(T.VMA, 'end');
const VMA_PAGES_OFF = fieldOffset(T.VMA, 'pages_off');

test('hostile: the hand-written base image is valid', () => {
  writeInput(dir, BASE);
  const img = loadImage(dir);
  checkPages(img);
  assert.deepEqual(img.processes[0].vmas.map((v) => v.runs), [[[0x400000, 1], [0x402000, 1]], []]);
});

test('hostile: a nested VMA with a huge len, the process around it resealed', () => {
  const v = nth(BASE.img, T.VMA);
  const p = nth(BASE.img, T.PROCESS);
  const left = p.offset + p.hdrlen + p.contentLen - v.offset;
  assertError(parseErr(patched((b) => u64(b, v.offset, 2n ** 63n))),
    `bad image: record at offset ${v.offset} (vma): len 9223372036854775808 exceeds the ${left} bytes left`, v.offset);
});

test('hostile: hdrlen above len', () => {
  const t = nth(BASE.img, T.TASK);
  assertError(parseErr(patched((b) => b.writeUInt32LE(t.len + 8, t.offset + 8))),
    `bad image: record at offset ${t.offset} (task): bad hdrlen ${t.len + 8} (len ${t.len})`, t.offset);
});

test('hostile: content_len of page runs 2^32-1', () => {
  const r = nth(BASE.img, T.PAGE_RUNS);
  assertError(parseErr(patched((b) => b.writeUInt32LE(0xffffffff, r.offset + 20))),
    `bad image: record at offset ${r.offset} (page_runs): content_len 4294967295 exceeds the ${r.len - r.hdrlen} bytes after hdrlen`, r.offset);
});

test('hostile: END counts more records than there are', () => {
  const e = nth(BASE.img, END.type);
  assertError(parseErr(patched((b) => b.writeUInt32LE(7, e.offset + 24))),
    `bad image: record at offset ${e.offset} (end): END counts 7 records, the file holds 2`, e.offset);
});

test('hostile: records nested 9 deep inside a process', () => {
  const v = nth(BASE.img, T.VMA, 1);
  let rec: Buffer = Buffer.from(BASE.img.subarray(v.offset, v.offset + v.len));
  for (let i = 0; i < 8; i++) rec = encodeRecord(PROCESS.type, Content.ARRAY, Buffer.alloc(PROCESS.hdrlen - 24), rec);
  const p = nth(BASE.img, T.PROCESS);
  const grow = rec.length - v.len;
  const img = patched((b) => {
    u64(b, p.offset, p.len + grow);
    b.writeUInt32LE(p.contentLen + grow, p.offset + 20);
  }, Buffer.concat([BASE.img.subarray(0, v.offset), rec, BASE.img.subarray(v.offset + v.len)]));
  const deepest = walk(img).filter((n) => n.depth === 8)[0];
  assertError(parseErr(img), `bad image: record at offset ${deepest.offset} (process): records nested deeper than 8`, deepest.offset);
});

test('hostile: a VMA in kernel space (above 2^53) is refused by the codec', () => {
  const v = nth(BASE.img, T.VMA, 1);
  assertError(parseErr(patched((b) => u64(b, v.offset + VMA_END, 0xffff800000001000n))),
    `bad image: record at offset ${v.offset} (vma): field end = 0xffff800000001000 is above 2^53`, v.offset);
});

test('hostile: a VMA above user space is refused by load', () => {
  const v = nth(BASE.img, T.VMA, 1);
  const img = patched((b) => u64(b, v.offset + VMA_END, TASK_SIZE + 0x1000));
  assertError(loadErr({ img, pages: BASE.pages }),
    `bad image: record at offset ${v.offset} (vma): VMA 0x600000-0x800000000000 is not a page-aligned range of user space`, v.offset);
});

test('hostile: an unaligned VMA', () => {
  const v = nth(BASE.img, T.VMA, 1);
  const img = patched((b) => u64(b, v.offset + VMA_START, 0x600001));
  assertError(loadErr({ img, pages: BASE.pages }),
    `bad image: record at offset ${v.offset} (vma): VMA 0x600001-0x601000 is not a page-aligned range of user space`, v.offset);
});

test('hostile: overlapping VMAs (the error carries no offset)', () => {
  const v = nth(BASE.img, T.VMA, 1);
  const img = patched((b) => { u64(b, v.offset + VMA_START, 0x402000); u64(b, v.offset + VMA_END, 0x404000); });
  assertError(loadErr({ img, pages: BASE.pages }), 'bad image: VMAs 0x400000 and 0x402000 overlap', undefined);
});

test('hostile: a page run outside its VMA (the error carries no offset)', () => {
  const r = nth(BASE.img, T.PAGE_RUNS);
  const img = patched((b) => u64(b, r.offset + r.hdrlen + 16, 0x403000)); // the second run
  assertError(loadErr({ img, pages: BASE.pages }), 'bad image: page run 0x403000+1 lies outside its VMA 0x400000-0x403000', undefined);
});

test('hostile: page data beyond the end of pages.img', () => {
  const v = nth(BASE.img, T.VMA);
  const size = BASE.pages.length;
  const img = patched((b) => u64(b, v.offset + VMA_PAGES_OFF, size));
  assertError(loadErr({ img, pages: BASE.pages }),
    `bad image ${path.join(dir, 'pages.img')}: page data [${size}, +8192) is not inside the ${size}-byte file`, size);
});

test('hostile: page data in the header page of pages.img', () => {
  const v = nth(BASE.img, T.VMA);
  const img = patched((b) => u64(b, v.offset + VMA_PAGES_OFF, 0));
  assertError(loadErr({ img, pages: BASE.pages }),
    `bad image ${path.join(dir, 'pages.img')}: page data [0, +8192) is not inside the ${BASE.pages.length}-byte file`, 0);
});

test('hostile: page data that fails its CRC', () => {
  const pages = Buffer.from(BASE.pages);
  pages[4096 + 4096 + 100] ^= 1;
  assertError(loadErr({ img: BASE.img, pages }),
    `bad image ${path.join(dir, 'pages.img')}: page data at offset 4096 (VMA 0x400000 of pid ${PID}) fails its CRC`, 4096);
});

test('hostile: pages.img cut short of a whole page', () => {
  const pages = BASE.pages.subarray(0, BASE.pages.length - 100);
  assertError(loadErr({ img: BASE.img, pages }),
    `bad image ${path.join(dir, 'pages.img')}: truncated: size ${pages.length} is not whole pages`, pages.length - (pages.length % 4096));
});

test('hostile: an xsave area shorter than its size field', () => {
  const x = nth(BASE.img, T.XSTATE);
  const img = patched((b) => b.writeUInt32LE(1024, x.offset + fieldOffset(T.XSTATE, 'size')));
  assertError(loadErr({ img, pages: BASE.pages }), `bad image: record at offset ${x.offset} (xstate): xsave area of 576 bytes`, x.offset);
});

test('hostile: no ckpt.img, no pages.img', () => {
  assertError(loadErr({ img: null, pages: BASE.pages }), `${dir} is not a ckpt image (no ckpt.img)`, undefined);
  assertError(loadErr({ img: BASE.img, pages: null }), `bad image ${path.join(dir, 'pages.img')}: missing`, 0);
});

// ---- found by this fuzzer, reported, not fixed yet ----

/** Run loadImage + the page checks on `d` in a child, which a hang cannot take down with it. */
function loadInChild(d: string, ms: number): { status: number | null; out: string } {
  const code = `
    import { loadImage } from ${JSON.stringify(path.join(REPO_ROOT, 'dist/src/restore/load.js'))};
    import { checkPages } from ${JSON.stringify(path.join(REPO_ROOT, 'dist/test/lib/fuzz-run.js'))};
    try { checkPages(loadImage(process.argv[1])); console.log('loaded'); }
    catch (e) { console.log(e.code + ': ' + e.message); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code, d], { encoding: 'utf8', timeout: ms });
  return { status: r.status, out: r.stdout.trim() };
}

test('hostile: a FIFO as ckpt.img or pages.img is refused, not waited on', () => {
  for (const name of ['ckpt.img', 'pages.img'] as const) {
    const d = path.join(dir, `fifo-${name}`);
    fifoImageDir(d, name);
    const r = loadInChild(d, 1500);
    assert.match(r.out, /^BAD_IMAGE: bad image .*: not a regular file$/, `${name} as a FIFO: ${r.status === null ? 'hung' : r.out}`);
  }
});

test('hostile: VMAs that share their page data are refused', () => {
  // Two VMAs, one page of data between them: each VMA is fine alone, together they read
  // twice what pages.img holds; with n VMAs the CRC work (and the restored memory) is n x.
  const e = loadErr(sharedPagesImage(2, 1));
  assert.equal(e.code, 'BAD_IMAGE');
});
