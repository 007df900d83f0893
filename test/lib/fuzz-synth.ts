/**
 * Synthetic seeds for the image fuzzer, made with the codec itself:
 *  - buildImage(): a consistent image (ckpt.img + pages.img) that loadImage and verifyPages
 *    accept, from an explicit spec (hand-written hostile tests) or a random one;
 *  - randomSchemaImage(): records of every schema in src/kinds with random field values and
 *    random nesting: parseImage accepts it, loadImage mostly does not.
 */
import { crc32 } from 'node:zlib';
import {
  Content, END, HEADER, encode, encodeHeader, encodePagesHeader, encodeRecord,
  type AnySchema, type FieldLayout,
} from '../../src/image/index.js';
import { SCHEMAS } from '../../src/kinds/index.js';
import { PROCESS } from '../../src/kinds/process.js';
import { TASK } from '../../src/kinds/task.js';
import { THREAD } from '../../src/kinds/thread.js';
import { REGS, XSTATE } from '../../src/kinds/regs.js';
import { MM, AUXV, EXE } from '../../src/kinds/mm.js';
import { VMA, VMA_PATH, VmaKind } from '../../src/kinds/vma.js';
import { PAGE_RUNS, encodeRuns, type Run } from '../../src/kinds/pages.js';
import { SIGACTION } from '../../src/kinds/sigactions.js';
import { FS } from '../../src/kinds/fs.js';
import { CREDS, encodeGroups } from '../../src/kinds/creds.js';
import { FD, FdKind } from '../../src/kinds/files.js';
import { PIPE } from '../../src/kinds/pipes.js';
import { RLIMITS } from '../../src/kinds/rlimits.js';
import { MISC } from '../../src/kinds/misc.js';
import { SIGNALS, SIGINFO } from '../../src/kinds/signals.js';
import { ITIMER, POSIX_TIMER } from '../../src/kinds/timers.js';
import { SECCOMP, SECCOMP_FILTER } from '../../src/kinds/seccomp.js';
import { Rand } from './fuzz-rand.js';

export const PAGE = 4096;
/** The top of x86_64 user space, as src/restore/load.ts has it. */
export const USER_TOP = 0x7ffffffff000;

/** One image as restore reads it: DIR/ckpt.img and DIR/pages.img (null: no pages.img). */
export interface Input {
  img: Buffer | null;
  pages: Buffer | null;
}

export interface Seed extends Input {
  img: Buffer;
  name: string;
}

// ---- interesting values ----

export const INT_EDGES: Record<string, readonly number[]> = {
  u8: [0, 1, 0x7f, 0x80, 0xfe, 0xff],
  u16: [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff],
  u32: [0, 1, 7, 8, 23, 24, 0x7f, 0x80, 0xff, 0x1000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff],
  i32: [0, 1, -1, 64, 65, 0x7fffffff, -0x80000000, -0x7fffffff],
};
export const U64_EDGES: readonly bigint[] = [
  0n, 1n, 0x7fn, 0x80n, 0xffn, 0xffffffffn, 0x100000000n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n,
  2n ** 64n - 8n, 2n ** 64n - 1n,
];
/** addr values (the codec refuses to encode one above 2^53; mutations write raw u64s instead). */
export const ADDR_EDGES: readonly number[] = [
  0, 1, PAGE - 1, PAGE, PAGE + 1, 0x10000, 0x400000, USER_TOP - PAGE, USER_TOP, USER_TOP + PAGE, 2 ** 47,
  2 ** 47 + PAGE, 2 ** 48, 2 ** 52, Number.MAX_SAFE_INTEGER - PAGE + 1, Number.MAX_SAFE_INTEGER,
];
/** Raw u64 addresses: kernel space, above 2^53, the top of the address space. */
export const RAW_ADDR_EDGES: readonly bigint[] = [
  0xffff800000000000n, 0xffffffff80000000n, 0xffffffffff600000n, 0xfffffffffffff000n, 2n ** 64n - 1n, 2n ** 53n,
  2n ** 53n + 4096n, 2n ** 63n,
];

function randomString(r: Rand, maxBytes: number): string {
  const alphabets = ['abcxyz/._-0129', 'éü✓€', '𝄞😀', ' \t\n[]'];
  let s = '';
  const n = r.int(Math.min(maxBytes, 24) + 1);
  for (let i = 0; i < n; i++) {
    const a = r.pick(alphabets);
    const cps = [...a];
    const c = r.pick(cps);
    if (Buffer.byteLength(s + c) > maxBytes) break;
    s += c;
  }
  return s;
}

/** A random value of a field's kind that the encoder accepts (edges half of the time). */
export function randomFieldValue(r: Rand, f: FieldLayout): number | bigint | Buffer | string {
  const k = f.kind;
  if (k === 'u64' || k === 'i64') {
    const v = r.chance(0.5) ? r.pick(U64_EDGES) : r.u64();
    return k === 'u64' ? v : BigInt.asIntN(64, v);
  }
  if (k === 'addr') {
    if (r.chance(0.5)) return r.pick(ADDR_EDGES);
    return r.chance(0.5) ? r.int(USER_TOP / PAGE) * PAGE : r.int(Number.MAX_SAFE_INTEGER);
  }
  if (k.startsWith('bytes')) return r.bytes(f.size);
  if (k.startsWith('str')) return randomString(r, f.size);
  if (r.chance(0.5)) return r.pick(INT_EDGES[k]);
  switch (k) {
    case 'u8': return r.int(0x100);
    case 'u16': return r.int(0x10000);
    case 'u32': return r.u32();
    default: return r.u32() | 0; // i32
  }
}

export function randomFields(r: Rand, schema: AnySchema): Record<string, number | bigint | Buffer | string> {
  const out: Record<string, number | bigint | Buffer | string> = {};
  for (const f of schema.layout) out[f.name] = randomFieldValue(r, f);
  return out;
}

/** An unknown record type (kinds/ids.ts has the kinds' types, image/ 0x0001-0x0004). */
export function unknownType(r: Rand): number {
  return r.pick([0x0000, 0x0005, 0x00ff, 0x0105, 0x0125, 0x0fff, 0x7777, 0xffff]);
}

/** A random record of `schema` (or of an unknown type), children nested up to `depth` more levels. */
export function randomRecord(r: Rand, schema: AnySchema | undefined, depth: number): Buffer {
  if (schema === undefined) {
    const content = r.int(4) as Content;
    const body = content === Content.VOID ? Buffer.alloc(0)
      : content === Content.ARRAY ? Buffer.concat(randomChildren(r, depth - 1))
      : content === Content.NAME ? Buffer.from(randomString(r, 40)) : r.bytes(r.int(48));
    return encodeRecord(unknownType(r), content, r.bytes(r.pick([0, 4, 8, 13, 40])), body);
  }
  const fields = randomFields(r, schema);
  switch (schema.content) {
    case Content.VOID: return rec(schema, fields);
    case Content.DATA: return rec(schema, fields, r.bytes(r.chance(0.5) ? 16 * r.int(4) : r.int(80)));
    case Content.NAME: return rec(schema, fields, randomString(r, 64));
    default: return rec(schema, fields, randomChildren(r, depth - 1));
  }
}

function randomChildren(r: Rand, depth: number): Buffer[] {
  if (depth <= 0) return [];
  const out: Buffer[] = [];
  for (let n = r.int(5); n > 0; n--) {
    out.push(randomRecord(r, r.chance(0.15) ? undefined : r.pick(SCHEMAS), depth));
  }
  return out;
}

/** A whole ckpt.img: HEADER, recs, END (with the right count). */
export function wrapImage(recs: Buffer[], createdNs = 1_700_000_000_000_000_000n): Buffer {
  return Buffer.concat([
    encodeHeader({ utsRelease: '6.0.0-fuzz', tool: 'ckpt fuzz', createdNs }), ...recs, encode(END, { records: recs.length + 1 }),
  ]);
}

/** Every schema of src/kinds at least once, random values, random nesting; plus unknown types. */
export function randomSchemaImage(r: Rand): Seed {
  const recs: Buffer[] = [];
  for (const s of SCHEMAS) {
    if (s === HEADER || s === END) continue;
    recs.push(randomRecord(r, s, 1 + r.int(3)));
  }
  recs.push(randomRecord(r, undefined, 2));
  // a PROCESS holding one of everything, so that children sit where restore looks for them
  const inner = SCHEMAS.filter((s) => s !== HEADER && s !== END).map((s) => randomRecord(r, s, 1 + r.int(2)));
  recs.push(rec(PROCESS, { pid: r.int(0x10000) }, inner));
  for (let i = recs.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [recs[i], recs[j]] = [recs[j], recs[i]];
  }
  return { name: 'random-schemas', img: wrapImage(recs), pages: encodePagesHeader() };
}

// ---- consistent images ----

export interface VmaSpec {
  start: number;
  end: number;
  prot: number;
  kind: VmaKind;
  vmFlags?: number;
  path?: string;
  /** Indices (in pages from start) of the pages saved, ascending, no duplicates. */
  saved?: number[];
  /** The data of the saved pages (saved.length * 4096 bytes); a fill pattern if absent. */
  data?: Buffer;
}

export interface ProcessSpec {
  pid: number;
  comm?: string;
  groups?: number[];
  cwd?: string;
  exe?: string;
  auxv?: Buffer;
  xstateSize?: number;
  vmas: VmaSpec[];
  sigactions?: number[];
  fds?: { fd: number; kind: FdKind; path: string }[];
  pipes?: { ino: bigint; size: number; data: Buffer }[];
  rlimits?: boolean;
  misc?: boolean;
  /** Pending signal numbers (a SIGNALS record with one SIGINFO each); undefined: no SIGNALS. */
  pending?: number[];
  itimers?: number[];
  posixTimers?: number[];
  seccomp?: { mode: number; filters: number[] };
}

export interface Built extends Seed {
  pages: Buffer;
  /** Where each VMA's data landed in pages.img (0 if none), in spec order, per process. */
  pagesOff: number[][];
}

/** Saved page indices as runs of addresses. */
export function runsOf(start: number, saved: number[]): Run[] {
  const runs: Run[] = [];
  for (const i of saved) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] * PAGE === start + i * PAGE) last[1]++;
    else runs.push([start + i * PAGE, 1]);
  }
  return runs;
}

function pattern(n: number, salt: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((Math.imul(i + 1, 0x9e3779b1) ^ salt) >>> 0, i);
  return b;
}

/** Every field of `schema` zero (so that fields added to a schema later need no change here), then `over`. */
export function fill(schema: AnySchema, over: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of schema.layout) {
    const k = f.kind;
    out[f.name] = k === 'u64' || k === 'i64' ? 0n : k.startsWith('bytes') ? Buffer.alloc(f.size) : k.startsWith('str') ? '' : 0;
  }
  for (const [k, v] of Object.entries(over)) if (Object.hasOwn(out, k)) out[k] = v;
  return out;
}

/** encode() with fill(): rec(VMA, { start, end }, children). */
export function rec(schema: AnySchema, over: Record<string, unknown> = {}, content?: Buffer | string | Buffer[]): Buffer {
  const enc = encode as (s: AnySchema, f: unknown, c?: unknown) => Buffer;
  return enc(schema, fill(schema, over), content);
}

/** A consistent ckpt.img + pages.img: loadImage and verifyPages accept it. */
export function buildImage(procs: ProcessSpec[], extraTop: Buffer[] = []): Built {
  const pageChunks: Buffer[] = [encodePagesHeader()];
  let pagesSize = pageChunks[0].length;
  const pagesOff: number[][] = [];
  const recs: Buffer[] = [];
  for (const p of procs) {
    const offs: number[] = [];
    const vmaRecs = p.vmas.map((v, vi) => {
      const saved = v.saved ?? [];
      const data = saved.length === 0 ? Buffer.alloc(0) : (v.data ?? pattern(saved.length * PAGE, p.pid * 31 + vi));
      const off = data.length === 0 ? 0 : pagesSize;
      if (data.length) {
        pageChunks.push(data);
        pagesSize += data.length;
      }
      offs.push(off);
      const children: Buffer[] = [];
      if (v.path !== undefined) children.push(rec(VMA_PATH, {}, v.path));
      if (saved.length) children.push(rec(PAGE_RUNS, {}, encodeRuns(runsOf(v.start, saved))));
      return rec(VMA, {
        start: v.start, end: v.end, prot: v.prot, kind: v.kind, vm_flags: v.vmFlags ?? 0,
        pages_off: off, nr_pages: saved.length, pages_crc: data.length ? crc32(data) : 0,
      }, children);
    });
    pagesOff.push(offs);
    const xsize = p.xstateSize ?? 576;
    const groups = p.groups ?? [];
    const children: Buffer[] = [
      rec(TASK, {
        state: 'S', flags: 0x400000, pid: p.pid, tgid: p.pid, ppid: 1, rppid: 1, pgrp: p.pid, session: p.pid, leader: 1,
        exit_signal: 17, comm: p.comm ?? 'fuzz', start_time: 1n,
      }),
      rec(CREDS, { ngroups: groups.length }, encodeGroups(groups)),
      rec(MM, {
        start_code: 0x400000, end_code: 0x401000, start_data: 0x402000, end_data: 0x403000, start_brk: 0x500000,
        brk: 0x500000, start_stack: 0x7ffffffde000, arg_start: 0x7ffffffde100, arg_end: 0x7ffffffde200,
        env_start: 0x7ffffffde200, env_end: 0x7ffffffde300,
      }, [rec(AUXV, {}, p.auxv ?? Buffer.alloc(16)), rec(EXE, {}, p.exe ?? '/usr/bin/true')]),
      rec(FS, { umask: 0o22 }, p.cwd ?? '/'),
      rec(THREAD, { tid: p.pid }, [
        rec(REGS, { rip: 0x401000n, cs: 0x33n, eflags: 0x202n, rsp: 0x7ffffff000n, ss: 0x2bn }),
        rec(XSTATE, { xfeatures: 3n, xstate_bv: 3n, size: xsize }, pattern(xsize, 7)),
      ]),
      ...vmaRecs,
      ...(p.sigactions ?? []).map((signo) => rec(SIGACTION, { signo, handler: 1n })),
      ...(p.fds ?? []).map((f) => rec(FD, { fd: f.fd, kind: f.kind, mode: 0o20666 }, f.path)),
      ...(p.pipes ?? []).map((pp) => rec(PIPE, { ino: pp.ino, size: pp.size, bytes: pp.data.length }, pp.data)),
    ];
    if (p.rlimits) children.push(rec(RLIMITS, { count: 16 }, pattern(256, 3)));
    if (p.misc) children.push(rec(MISC, { dumpable: 1 }, Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0])));
    if (p.pending !== undefined) {
      children.push(rec(SIGNALS, { altstack_flags: 2 }, p.pending.map((signo, i) => {
        const info = Buffer.alloc(128);
        info.writeInt32LE(signo, 0);
        return rec(SIGINFO, { shared: i % 2, signo }, info);
      })));
    }
    for (const which of p.itimers ?? []) children.push(rec(ITIMER, { which, value_sec: 100n }));
    for (const id of p.posixTimers ?? []) children.push(rec(POSIX_TIMER, { id, signo: 14, value_sec: 5n }));
    if (p.seccomp) {
      children.push(rec(SECCOMP, { mode: p.seccomp.mode, filters: p.seccomp.filters.length }, p.seccomp.filters.map((insns) => {
        const prog = Buffer.alloc(insns * 8);
        for (let i = 0; i < insns; i++) prog.writeUInt16LE(0x06, i * 8); // BPF_RET
        return rec(SECCOMP_FILTER, { insns }, prog);
      })));
    }
    recs.push(rec(PROCESS, { pid: p.pid }, children));
  }
  return { name: 'built', img: wrapImage([...recs, ...extraTop]), pages: Buffer.concat(pageChunks), pagesOff };
}

/** A random consistent process: a few VMAs (disjoint, aligned, in user space), some pages saved. */
export function randomProcessSpec(r: Rand, pid = r.range(1, 4194304)): ProcessSpec {
  const vmas: VmaSpec[] = [];
  let at = (r.range(0x10, 0x1000) * PAGE) * (r.chance(0.5) ? 1 : 0x1000);
  const n = r.range(1, 6);
  for (let i = 0; i < n && at < USER_TOP - 64 * PAGE; i++) {
    const pages = r.range(1, 12);
    const kind = r.pick([VmaKind.ANON, VmaKind.ANON, VmaKind.FILE_PRIVATE, VmaKind.SHARED_ANON, VmaKind.VDSO]);
    const saved: number[] = [];
    if (kind !== VmaKind.VDSO) for (let k = 0; k < pages; k++) if (r.chance(0.3)) saved.push(k);
    vmas.push({
      start: at, end: at + pages * PAGE, prot: r.pick([1, 3, 5, 7, 0]), kind,
      path: kind === VmaKind.FILE_PRIVATE ? '/usr/lib/libfuzz.so' : (r.chance(0.3) ? '[heap]' : undefined),
      saved, data: saved.length ? r.bytes(saved.length * PAGE) : undefined,
    });
    at += (pages + r.int(3)) * PAGE;
    if (r.chance(0.2)) at = Math.min(USER_TOP - 64 * PAGE, at + r.int(0x100000) * PAGE);
  }
  if (r.chance(0.2)) vmas.reverse(); // the file order of VMAs is free
  return {
    pid, comm: randomString(r, 15), groups: Array.from({ length: r.int(4) }, () => r.u32()), cwd: '/tmp',
    xstateSize: r.pick([576, 832, 1088, 2440, 2696]), vmas,
    sigactions: Array.from({ length: r.int(4) }, () => r.range(1, 64)),
    fds: Array.from({ length: r.int(4) }, (_, i) => ({ fd: i, kind: r.pick([FdKind.CHR, FdKind.REG, FdKind.PIPE]), path: '/dev/null' })),
    pipes: r.chance(0.5) ? [{ ino: r.u64(), size: 65536, data: r.bytes(r.int(40)) }] : [],
    rlimits: r.chance(0.7),
    misc: r.chance(0.7),
    pending: r.chance(0.6) ? Array.from({ length: r.int(3) }, () => r.range(1, 64)) : undefined,
    itimers: Array.from({ length: r.int(3) }, (_, i) => i),
    posixTimers: Array.from({ length: r.int(3) }, (_, i) => i),
    seccomp: r.chance(0.4) ? { mode: 2, filters: Array.from({ length: r.range(1, 3) }, () => r.range(1, 8)) } : undefined,
  };
}

export function randomBuiltImage(r: Rand): Built {
  const procs = [randomProcessSpec(r)];
  if (r.chance(0.3)) procs.push(randomProcessSpec(r));
  const extra = r.chance(0.3) ? [randomRecord(r, undefined, 2)] : [];
  const b = buildImage(procs, extra);
  return { ...b, name: 'random-built' };
}
