/**
 * Mutations of an image for the fuzzer. Structure-aware ones find the records with a
 * lenient walk (walk()), "framed" edits fix the len/content_len of every enclosing record,
 * and reseal() recomputes every CRC the reader would check (children first), so that a
 * mutation reaches the checks behind the CRC.
 */
import { crc32 } from 'node:zlib';
import { Content, END, HEADER, PAGES_HDR_SIZE, RECORD_HDR_LEN, encodeRecord, resealRecord } from '../../src/image/index.js';
import { SCHEMAS, registry } from '../../src/kinds/index.js';
import { T } from '../../src/kinds/ids.js';
import { Rand } from './fuzz-rand.js';
import {
  ADDR_EDGES, INT_EDGES, PAGE, RAW_ADDR_EDGES, U64_EDGES, USER_TOP, randomRecord, type Input, type Seed,
} from './fuzz-synth.js';

export interface Node {
  offset: number;
  /** len as read if lenOk, else what is left of the parent. */
  len: number;
  lenOk: boolean;
  hdrlen: number;
  type: number;
  content: number;
  contentLen: number;
  depth: number;
  parent: number;
}

const MAX_NODES = 200_000;

/** Every record the reader would reach, in file order; a record with a bad len ends its list. */
export function walk(buf: Buffer): Node[] {
  const out: Node[] = [];
  const list = (start: number, end: number, depth: number, parent: number): void => {
    let at = start;
    while (at + RECORD_HDR_LEN <= end && out.length < MAX_NODES) {
      const len64 = buf.readBigUInt64LE(at);
      const lenOk = len64 >= BigInt(RECORD_HDR_LEN) && len64 % 8n === 0n && len64 <= BigInt(end - at);
      const len = lenOk ? Number(len64) : end - at;
      const n: Node = {
        offset: at, len, lenOk, hdrlen: buf.readUInt32LE(at + 8), type: buf.readUInt16LE(at + 12),
        content: buf.readUInt16LE(at + 14), contentLen: buf.readUInt32LE(at + 20), depth, parent,
      };
      const idx = out.push(n) - 1;
      if (!lenOk) return;
      if (n.content === Content.ARRAY && depth < 12 && n.hdrlen >= RECORD_HDR_LEN && n.hdrlen % 8 === 0 &&
          n.hdrlen <= len && n.contentLen <= len - n.hdrlen) {
        list(at + n.hdrlen, at + n.hdrlen + n.contentLen, depth + 1, idx);
      }
      at += len;
    }
  };
  list(0, buf.length, 0, -1);
  return out;
}

/** Recompute the CRC of every record the walk finds, innermost first. */
export function reseal(img: Buffer): void {
  const nodes = walk(img).filter((n) => n.lenOk).sort((a, b) => b.depth - a.depth);
  for (const n of nodes) resealRecord(img, n.offset);
}

/** Make END count the top-level records before it (when the last top-level record is an END). */
export function fixEnd(img: Buffer): void {
  const top = walk(img).filter((n) => n.depth === 0);
  const last = top[top.length - 1];
  if (last !== undefined && last.type === END.type && last.lenOk && last.hdrlen >= 32) {
    img.writeUInt32LE(top.length - 1, last.offset + 24);
  }
}

const PAGES_OFF_CRC = 20;

/** Recompute the CRC of pages.img's header page. */
export function resealPages(pages: Buffer): void {
  if (pages.length < PAGES_HDR_SIZE) return;
  let c = crc32(pages.subarray(0, PAGES_OFF_CRC));
  c = crc32(Buffer.alloc(4), c);
  pages.writeUInt32LE(crc32(pages.subarray(PAGES_OFF_CRC + 4, PAGES_HDR_SIZE), c), PAGES_OFF_CRC);
}

// ---- the mutable case ----

export interface Work {
  img: Buffer;
  pages: Buffer | null;
  pagesOwned: boolean;
  imgMissing: boolean;
  donors: readonly Seed[];
}

type Mutator = (w: Work, r: Rand) => string;

function ownPages(w: Work): Buffer | null {
  if (w.pages !== null && !w.pagesOwned) {
    w.pages = Buffer.from(w.pages);
    w.pagesOwned = true;
  }
  return w.pages;
}

function label(n: Node): string {
  return `${registry.label(n.type)}@${n.offset}`;
}

function pickNode(r: Rand, nodes: Node[], want?: (n: Node) => boolean): Node | undefined {
  const c = want === undefined ? nodes : nodes.filter(want);
  return c.length === 0 ? undefined : r.pick(c);
}

function schemaNodes(nodes: Node[], type: number): Node[] {
  return nodes.filter((n) => n.type === type && n.lenOk && n.hdrlen <= n.len);
}

/** A position biased to record headers and fixed fields. */
function position(r: Rand, w: Work): number {
  if (w.img.length === 0) return 0;
  if (r.chance(0.6)) {
    const n = pickNode(r, walk(w.img));
    if (n !== undefined) return Math.min(w.img.length - 1, n.offset + r.int(Math.min(n.len, r.chance(0.5) ? 24 : 96)));
  }
  return r.int(w.img.length);
}

function splice(buf: Buffer, at: number, del: number, ins: Buffer): Buffer {
  return Buffer.concat([buf.subarray(0, at), ins, buf.subarray(at + del)]);
}

/** Replace img[at, at+del) by ins, growing every record in the parent chain by the difference. */
function framedSplice(w: Work, nodes: Node[], parent: number, at: number, del: number, ins: Buffer): void {
  const delta = ins.length - del;
  for (let p = parent; p >= 0; p = nodes[p].parent) {
    const n = nodes[p];
    w.img.writeBigUInt64LE(BigInt.asUintN(64, BigInt(n.len + delta)), n.offset);
    w.img.writeUInt32LE((n.contentLen + delta) >>> 0, n.offset + 20);
  }
  w.img = splice(w.img, at, del, ins);
}

/** Where a record can go: before a record, or at the end of an ARRAY record's children. */
function slot(r: Rand, nodes: Node[]): { at: number; parent: number } | undefined {
  const arrays = nodes.map((n, i) => [n, i] as const)
    .filter(([n]) => n.lenOk && n.content === Content.ARRAY && n.hdrlen >= 24 && n.hdrlen + n.contentLen <= n.len);
  if (arrays.length && r.chance(0.4)) {
    const [n, i] = r.pick(arrays);
    return { at: n.offset + n.hdrlen + n.contentLen, parent: i };
  }
  const n = pickNode(r, nodes, (x) => x.lenOk);
  if (n === undefined) return undefined;
  return { at: n.offset, parent: n.parent };
}

// ---- byte-level ----

const bitflip: Mutator = (w, r) => {
  const out: number[] = [];
  for (let k = r.range(1, r.chance(0.7) ? 2 : 16); k > 0 && w.img.length; k--) {
    const at = position(r, w);
    w.img[at] ^= 1 << r.int(8);
    out.push(at);
  }
  return `bitflip at ${out.join(',')}`;
};

const byteset: Mutator = (w, r) => {
  if (w.img.length === 0) return 'byteset: empty';
  const at = position(r, w);
  const v = r.pick([0x00, 0xff, 0x7f, 0x80]);
  const n = Math.min(w.img.length - at, r.pick([1, 1, 2, 4, 8, 16]));
  w.img.fill(v, at, at + n);
  return `byteset ${n}x0x${v.toString(16)} at ${at}`;
};

const truncate: Mutator = (w, r) => {
  const nodes = walk(w.img);
  let at: number;
  if (r.chance(0.5) && nodes.length) {
    const n = r.pick(nodes);
    at = n.offset + r.pick([0, 8, 16, 23, 24, n.hdrlen, n.len - 8, n.len - 1]);
  } else {
    at = r.int(w.img.length + 1);
  }
  at = Math.max(0, Math.min(w.img.length, at));
  w.img = w.img.subarray(0, at);
  return `truncate to ${at}`;
};

const insertRaw: Mutator = (w, r) => {
  const at = r.chance(0.5) ? position(r, w) : r.int(w.img.length + 1);
  const ins = r.chance(0.5) ? r.bytes(r.range(1, 64)) : Buffer.alloc(r.range(1, 16) * (r.chance(0.5) ? 8 : 1), r.pick([0, 0xff]));
  w.img = splice(w.img, at, 0, ins);
  return `insert ${ins.length} raw bytes at ${at}`;
};

const deleteRaw: Mutator = (w, r) => {
  const at = position(r, w);
  const n = Math.min(w.img.length - at, r.chance(0.5) ? r.range(1, 8) : r.range(1, 256));
  w.img = splice(w.img, at, n, Buffer.alloc(0));
  return `delete ${n} raw bytes at ${at}`;
};

// ---- record-level (framed) ----

const insertRecord: Mutator = (w, r) => {
  const nodes = walk(w.img);
  const s = slot(r, nodes);
  if (s === undefined) return 'insert record: no slot';
  const what = r.int(4);
  let ins: Buffer;
  if (what === 0) ins = Buffer.alloc(8 * r.range(1, 8), r.pick([0, 0xff, 0x41]));
  else if (what === 1) {
    const n = pickNode(r, nodes, (x) => x.lenOk);
    ins = n ? Buffer.from(w.img.subarray(n.offset, n.offset + n.len)) : Buffer.alloc(24);
  } else ins = randomRecord(r, r.chance(0.2) ? undefined : r.pick(SCHEMAS), 2);
  framedSplice(w, nodes, s.parent, s.at, 0, ins);
  return `insert ${['zeros', 'copy', 'random record', 'random record'][what]} (${ins.length} bytes) at ${s.at}`;
};

const deleteRecord: Mutator = (w, r) => {
  const nodes = walk(w.img);
  const i = nodes.findIndex((n) => n === pickNode(r, nodes, (x) => x.lenOk));
  if (i < 0) return 'delete record: none';
  const n = nodes[i];
  framedSplice(w, nodes, n.parent, n.offset, n.len, Buffer.alloc(0));
  return `delete record ${label(n)}`;
};

const duplicateRecord: Mutator = (w, r) => {
  const nodes = walk(w.img);
  const n = pickNode(r, nodes, (x) => x.lenOk && x.type !== HEADER.type);
  if (n === undefined) return 'duplicate: none';
  const copy = Buffer.from(w.img.subarray(n.offset, n.offset + n.len));
  framedSplice(w, nodes, n.parent, n.offset + n.len, 0, copy);
  return `duplicate ${label(n)}`;
};

const moveRecord: Mutator = (w, r) => {
  let nodes = walk(w.img);
  const n = pickNode(r, nodes, (x) => x.lenOk && x.depth > 0);
  if (n === undefined) return 'move: none';
  const bytes = Buffer.from(w.img.subarray(n.offset, n.offset + n.len));
  framedSplice(w, nodes, n.parent, n.offset, n.len, Buffer.alloc(0));
  nodes = walk(w.img);
  const s = slot(r, nodes);
  if (s === undefined) return `move ${label(n)}: dropped`;
  framedSplice(w, nodes, s.parent, s.at, 0, bytes);
  return `move ${label(n)} to ${s.at}`;
};

const spliceDonor: Mutator = (w, r) => {
  const donor = r.pick(w.donors);
  const dn = pickNode(r, walk(donor.img), (x) => x.lenOk && x.type !== HEADER.type && x.type !== END.type);
  if (dn === undefined) return 'splice: no donor record';
  const bytes = Buffer.from(donor.img.subarray(dn.offset, dn.offset + dn.len));
  const nodes = walk(w.img);
  if (r.chance(0.5)) {
    const s = slot(r, nodes);
    if (s === undefined) return 'splice: no slot';
    framedSplice(w, nodes, s.parent, s.at, 0, bytes);
    return `splice ${registry.label(dn.type)} from ${donor.name} at ${s.at}`;
  }
  // replace a record of the same type if there is one, else any record
  const same = nodes.filter((x) => x.lenOk && x.type === dn.type);
  const n = same.length ? r.pick(same) : pickNode(r, nodes, (x) => x.lenOk && x.depth > 0);
  if (n === undefined) return 'splice: nothing to replace';
  framedSplice(w, nodes, n.parent, n.offset, n.len, bytes);
  return `replace ${label(n)} by ${registry.label(dn.type)} from ${donor.name}`;
};

const nest: Mutator = (w, r) => {
  const nodes = walk(w.img);
  const i = nodes.findIndex((n) => n === pickNode(r, nodes, (x) => x.lenOk && x.depth > 0));
  if (i < 0) return 'nest: none';
  const n = nodes[i];
  let rec: Buffer = Buffer.from(w.img.subarray(n.offset, n.offset + n.len));
  const k = r.range(1, 10);
  const arrays = SCHEMAS.filter((s) => s.content === Content.ARRAY);
  for (let j = 0; j < k; j++) {
    const s = r.chance(0.5) ? r.pick(arrays) : undefined;
    rec = encodeRecord(s?.type ?? 0x0777, Content.ARRAY, s ? Buffer.alloc(s.hdrlen - 24) : Buffer.alloc(0), rec);
  }
  framedSplice(w, nodes, n.parent, n.offset, n.len, rec);
  return `nest ${label(n)} ${k} deep`;
};

// ---- header fields ----

function lenValues(n: Node, left: number): bigint[] {
  return [0n, 8n, 16n, 23n, 24n, 25n, BigInt(n.len - 8), BigInt(n.len + 8), BigInt(n.len + 1), BigInt(left), BigInt(left + 8),
    BigInt(n.hdrlen), 2n ** 32n, 2n ** 32n + BigInt(n.len), 2n ** 53n, 2n ** 63n, 2n ** 64n - 8n, 2n ** 64n - 1n]
    .filter((v) => v >= 0n);
}

const forgeHeader: Mutator = (w, r) => {
  const nodes = walk(w.img);
  const n = pickNode(r, nodes);
  if (n === undefined) return 'forge header: none';
  const b = w.img;
  const left = b.length - n.offset;
  const field = r.pick(['len', 'len', 'hdrlen', 'hdrlen', 'content_len', 'content_len', 'content', 'type', 'crc']);
  switch (field) {
    case 'len': {
      const v = r.pick(lenValues(n, left));
      b.writeBigUInt64LE(v, n.offset);
      return `forge len of ${label(n)} = ${v}`;
    }
    case 'hdrlen': {
      const v = r.pick([0, 8, 16, 23, 24, 25, 32, n.hdrlen - 8, n.hdrlen + 8, n.hdrlen + 1, n.len, n.len + 8, n.len - 8,
        0x7ffffff8, 0xfffffff8, 0xffffffff].map((x) => x >>> 0));
      b.writeUInt32LE(v, n.offset + 8);
      return `forge hdrlen of ${label(n)} = ${v}`;
    }
    case 'content_len': {
      const room = n.len - n.hdrlen;
      const v = r.pick([0, 1, room, room + 1, room - 1, room + 8, n.contentLen + 1, n.contentLen - 1, n.contentLen + 8,
        0x7fffffff, 0x80000000, 0xffffffff].map((x) => x >>> 0));
      b.writeUInt32LE(v, n.offset + 20);
      return `forge content_len of ${label(n)} = ${v}`;
    }
    case 'content': {
      const v = r.pick([0, 1, 2, 3, 4, 5, 0x100, 0xffff]);
      b.writeUInt16LE(v, n.offset + 14);
      return `forge content kind of ${label(n)} = ${v}`;
    }
    case 'type': {
      const v = r.chance(0.7) ? r.pick(SCHEMAS).type : r.pick([0, 0x0005, 0x0777, 0xffff]);
      b.writeUInt16LE(v, n.offset + 12);
      return `forge type of ${label(n)} = 0x${v.toString(16)}`;
    }
    default: {
      b.writeUInt32LE(r.u32(), n.offset + 16);
      return `forge crc of ${label(n)}`;
    }
  }
};

// ---- schema fields ----

/** Addresses found in the image: other VMAs' bounds, for overlaps. */
function vmaBounds(w: Work, nodes: Node[]): number[] {
  const out: number[] = [];
  for (const n of schemaNodes(nodes, T.VMA)) {
    if (n.hdrlen >= VMA_END + 8) out.push(Number(w.img.readBigUInt64LE(n.offset + VMA_START)), Number(w.img.readBigUInt64LE(n.offset + VMA_END)));
  }
  return out;
}

function writeRaw(b: Buffer, at: number, size: number, v: bigint): void {
  switch (size) {
    case 1: b.writeUInt8(Number(BigInt.asUintN(8, v)), at); break;
    case 2: b.writeUInt16LE(Number(BigInt.asUintN(16, v)), at); break;
    case 4: b.writeUInt32LE(Number(BigInt.asUintN(32, v)), at); break;
    default: b.writeBigUInt64LE(BigInt.asUintN(64, v), at);
  }
}

function fieldValue(r: Rand, kind: string, old: bigint, near: number[]): bigint {
  if (kind === 'addr') {
    const c = r.int(5);
    if (c === 0) return BigInt(r.pick(ADDR_EDGES));
    if (c === 1) return r.pick(RAW_ADDR_EDGES);
    if (c === 2 && near.length) return BigInt(r.pick(near) + r.pick([0, PAGE, -PAGE, 1, -1, 8 * PAGE]));
    if (c === 3) return old + BigInt(r.pick([1, -1, PAGE, -PAGE, 0x100000, -0x100000]));
    return BigInt(r.int(2 ** 48));
  }
  if (kind === 'u64' || kind === 'i64') return r.chance(0.7) ? r.pick(U64_EDGES) : old + BigInt(r.pick([1, -1]));
  if (kind in INT_EDGES) return r.chance(0.7) ? BigInt(r.pick(INT_EDGES[kind])) : old + BigInt(r.pick([1, -1, 64, 65]));
  return r.u64();
}

const forgeField: Mutator = (w, r) => {
  const nodes = walk(w.img);
  const n = pickNode(r, nodes, (x) => {
    const s = registry.get(x.type);
    return s !== undefined && s.layout.length > 0 && x.lenOk && x.hdrlen <= x.len;
  });
  if (n === undefined) return 'forge field: none';
  const s = registry.get(n.type)!;
  const f = r.pick(s.layout);
  if (f.offset + f.size > n.hdrlen) return `forge field ${s.name}.${f.name}: beyond hdrlen`;
  const at = n.offset + f.offset;
  if (f.kind.startsWith('str')) {
    const bad = r.pick([Buffer.from([0xff]), Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.alloc(f.size, 0x41),
      Buffer.from([0xe2, 0x9c])]);
    w.img.fill(0, at, at + f.size);
    bad.copy(w.img, at, 0, Math.min(bad.length, f.size));
    return `forge ${s.name}.${f.name} string`;
  }
  if (f.kind.startsWith('bytes')) {
    w.img.fill(r.pick([0, 0xff]), at, at + f.size);
    return `forge ${s.name}.${f.name} bytes`;
  }
  const old = f.size === 8 ? w.img.readBigUInt64LE(at) : BigInt(f.size === 4 ? w.img.readUInt32LE(at) : f.size === 2 ? w.img.readUInt16LE(at) : w.img[at]);
  const v = fieldValue(r, f.kind, old, vmaBounds(w, nodes));
  writeRaw(w.img, at, f.size, v);
  return `forge ${s.name}.${f.name} = ${BigInt.asUintN(f.size * 8, v)}`;
};

// ---- what restore checks: VMAs, page runs, counts ----

/** The offset of a field in its record, from the schema (so that a schema change moves it here too). */
export function fieldOffset(type: number, name: string): number {
  const f = registry.get(type)?.layout.find((x) => x.name === name);
  if (f === undefined) throw new Error(`no field ${name} in type 0x${type.toString(16)}`);
  return f.offset;
}

const VMA_START = fieldOffset(T.VMA, 'start'), VMA_END = fieldOffset(T.VMA, 'end'), VMA_KIND = fieldOffset(T.VMA, 'kind');
const VMA_PAGES_OFF = fieldOffset(T.VMA, 'pages_off'), VMA_NR_PAGES = fieldOffset(T.VMA, 'nr_pages');
const VMA_CRC = fieldOffset(T.VMA, 'pages_crc');
const VMA_HDRLEN = registry.get(T.VMA)!.hdrlen;

const vmaAttack: Mutator = (w, r) => {
  const nodes = walk(w.img);
  const vmas = schemaNodes(nodes, T.VMA).filter((n) => n.hdrlen >= VMA_HDRLEN);
  if (vmas.length === 0) return 'vma: none';
  const n = r.pick(vmas);
  const b = w.img;
  const o = n.offset;
  const start = Number(b.readBigUInt64LE(o + VMA_START));
  const end = Number(b.readBigUInt64LE(o + VMA_END));
  const nr = Number(b.readBigUInt64LE(o + VMA_NR_PAGES));
  const set = (off: number, v: number | bigint) =>
    b.writeBigUInt64LE(BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(Number.isFinite(v) ? Math.trunc(v) : 0)), o + off);
  const pagesLen = w.pages?.length ?? 0;
  const what = r.int(12);
  switch (what) {
    case 0: { // overlap another VMA
      const other = r.pick(vmas);
      const os = Number(b.readBigUInt64LE(other.offset + VMA_START));
      const oe = Number(b.readBigUInt64LE(other.offset + VMA_END));
      const ns = r.pick([os, os + PAGE, Math.max(0, oe - PAGE), os - PAGE]);
      const ne = Math.max(ns + PAGE, r.pick([oe, ns + (end - start), oe + PAGE]));
      set(VMA_START, Math.max(0, ns)); set(VMA_END, ne);
      return `vma ${label(n)} overlaps ${label(other)}: ${ns.toString(16)}-${ne.toString(16)}`;
    }
    case 1: { // kernel space / above user space
      const v = r.chance(0.5) ? r.pick(RAW_ADDR_EDGES) : BigInt(r.pick([USER_TOP, USER_TOP + PAGE, 2 ** 47, 2 ** 47 + PAGE, 2 ** 52]));
      if (r.chance(0.5)) set(VMA_END, v);
      else { set(VMA_START, v); set(VMA_END, v + BigInt(end - start)); }
      return `vma ${label(n)} in kernel space: 0x${v.toString(16)}`;
    }
    case 2: { // unaligned
      const d = r.pick([1, 8, 0x800, PAGE - 1]);
      set(r.chance(0.5) ? VMA_START : VMA_END, (r.chance(0.5) ? start : end) + d);
      return `vma ${label(n)} unaligned by ${d}`;
    }
    case 3: // empty or inverted
      set(VMA_END, r.pick([start, start - PAGE, 0]));
      return `vma ${label(n)} empty/inverted`;
    case 4: // more pages than it has room for, or more than its runs
      set(VMA_NR_PAGES, r.pick([nr + 1, nr - 1, Math.floor((end - start) / PAGE) + 1, 2 ** 40, Number.MAX_SAFE_INTEGER, 0]));
      return `vma ${label(n)} nr_pages forged`;
    case 5: // page data beyond pages.img
      set(VMA_PAGES_OFF, r.pick([pagesLen, pagesLen + PAGE, pagesLen - PAGE, Number.MAX_SAFE_INTEGER - PAGE + 1, 2 ** 52, 2 ** 40]));
      return `vma ${label(n)} pages_off beyond pages.img (${pagesLen})`;
    case 6: // page data unaligned or in the header page
      set(VMA_PAGES_OFF, r.pick([0, 1, PAGE - 8, PAGE + 1, PAGE + 0x800]));
      return `vma ${label(n)} pages_off unaligned/in header`;
    case 7:
      b.writeUInt32LE((b.readUInt32LE(o + VMA_CRC) ^ (1 << r.int(32))) >>> 0, o + VMA_CRC);
      return `vma ${label(n)} pages_crc flipped`;
    case 8: // a file VMA without a path
      b.writeUInt32LE(r.pick([1, 2, 7, 0xffffffff]), o + VMA_KIND);
      return `vma ${label(n)} kind forged`;
    case 9: { // shrink: the runs now lie outside
      const ne = Math.max(start + PAGE, end - PAGE * r.range(1, 4));
      set(VMA_END, ne);
      return `vma ${label(n)} shrunk to ${ne.toString(16)}`;
    }
    case 10: { // move: the runs now lie outside
      const d = PAGE * r.pick([1, 16, -1, 0x100000]);
      set(VMA_START, start + d); set(VMA_END, end + d);
      return `vma ${label(n)} moved by ${d}`;
    }
    default: { // grow over the top of user space
      set(VMA_END, USER_TOP + PAGE * r.range(0, 2));
      return `vma ${label(n)} to the top of user space`;
    }
  }
};

const runsAttack: Mutator = (w, r) => {
  const nodes = walk(w.img);
  const runs = schemaNodes(nodes, T.PAGE_RUNS);
  if (runs.length === 0) return 'runs: none';
  const n = r.pick(runs);
  const parent = n.parent >= 0 ? nodes[n.parent] : undefined;
  const vs = parent && parent.type === T.VMA && parent.hdrlen >= VMA_END + 8 ? Number(w.img.readBigUInt64LE(parent.offset + VMA_START)) : 0x400000;
  const ve = parent && parent.type === T.VMA && parent.hdrlen >= VMA_END + 8 ? Number(w.img.readBigUInt64LE(parent.offset + VMA_END)) : 0x500000;
  const dataAt = n.offset + n.hdrlen;
  const count = Math.floor(Math.min(n.contentLen, n.len - n.hdrlen) / 16);
  const what = r.int(8);
  if (what < 5 && count > 0) {
    const i = r.int(count);
    const at = dataAt + i * 16;
    const [a, p] = [
      [vs - PAGE, 1], [ve, 1], [ve - PAGE, 2], [vs + 1, 1], [vs, 0], [vs, 2 ** 53], [2 ** 64 - PAGE, 1],
      [vs, (ve - vs) / PAGE + 1], [2 ** 63, 2 ** 52],
    ][r.int(9)];
    const big = (x: number) => BigInt.asUintN(64, BigInt(Number.isFinite(x) ? Math.trunc(x) : 0));
    w.img.writeBigUInt64LE(big(a), at);
    w.img.writeBigUInt64LE(big(p), at + 8);
    return `run ${i} of ${label(n)} = 0x${a.toString(16)}+${p}`;
  }
  // re-encode the DATA: overlapping runs (same total), a run too many, a half run, none
  const data = Buffer.from(w.img.subarray(dataAt, dataAt + Math.min(n.contentLen, n.len - n.hdrlen)));
  let body: Buffer;
  let desc: string;
  if (what === 5 && count > 0) {
    body = Buffer.concat([data, data.subarray(0, 16)]);
    desc = 'a run repeated';
  } else if (what === 6) {
    body = Buffer.concat([data, r.bytes(r.pick([1, 8, 15]))]);
    desc = 'trailing partial run';
  } else {
    body = r.chance(0.5) ? Buffer.alloc(0) : data.subarray(0, 16 * r.int(count));
    desc = 'runs cut';
  }
  const rec = encodeRecord(n.type, Content.DATA, Buffer.from(w.img.subarray(n.offset + 24, n.offset + n.hdrlen)), body);
  framedSplice(w, nodes, n.parent, n.offset, n.len, rec);
  return `${label(n)}: ${desc}`;
};

/** Counts that must agree with what follows them. */
const countAttack: Mutator = (w, r) => {
  const nodes = walk(w.img);
  const b = w.img;
  const what = r.int(7);
  const pickType = (t: number) => pickNode(r, schemaNodes(nodes, t));
  switch (what) {
    case 0: { // END count
      const n = pickType(END.type);
      if (!n || n.hdrlen < 28) return 'count: no END';
      const v = r.pick([0, 1, 2 ** 32 - 1, b.readUInt32LE(n.offset + 24) + r.pick([1, -1, 1000])]) >>> 0;
      b.writeUInt32LE(v, n.offset + 24);
      return `END count = ${v}`;
    }
    case 1: { // XSTATE size
      const n = pickType(T.XSTATE);
      const at = fieldOffset(T.XSTATE, 'size');
      if (!n || n.hdrlen < at + 4) return 'count: no xstate';
      const v = r.pick([0, 575, 576, n.contentLen + 1, n.contentLen - 1, 65536, 65537, 0xffffffff]) >>> 0;
      b.writeUInt32LE(v, n.offset + at);
      return `xstate size = ${v}`;
    }
    case 2: { // PIPE size/bytes
      const n = pickType(T.PIPE);
      const f = fieldOffset(T.PIPE, r.pick(['size', 'bytes']));
      if (!n || n.hdrlen < f + 4) return 'count: no pipe';
      const v = r.pick([0, n.contentLen + 1, n.contentLen - 1, 2 ** 30, 2 ** 30 + 1, 0xffffffff]) >>> 0;
      b.writeUInt32LE(v, n.offset + f);
      return `pipe field +${f} = ${v}`;
    }
    case 3: { // CREDS ngroups
      const n = pickType(T.CREDS);
      const at = fieldOffset(T.CREDS, 'ngroups');
      if (!n || n.hdrlen < at + 4) return 'count: no creds';
      b.writeUInt32LE(r.pick([0, 0xffffffff, 65536, Math.floor(n.contentLen / 4) + 1]) >>> 0, n.offset + at);
      return 'creds ngroups forged';
    }
    case 4: { // pid of a task / process
      const n = pickType(r.chance(0.5) ? T.TASK : T.PROCESS);
      if (!n) return 'count: no task';
      const at = n.offset + fieldOffset(n.type, 'pid');
      if (at + 4 > n.offset + n.hdrlen) return 'count: short task';
      b.writeUInt32LE(r.pick([0, 1, 4194304, 4194305, 0x7fffffff, 0xffffffff]) >>> 0, at);
      return `pid of ${label(n)} forged`;
    }
    case 5: { // sigaction signo
      const n = pickType(T.SIGACTION);
      const at = fieldOffset(T.SIGACTION, 'signo');
      if (!n || n.hdrlen < at + 4) return 'count: no sigaction';
      b.writeUInt32LE(r.pick([0, 65, 64, 1, 0xffffffff]) >>> 0, n.offset + at);
      return 'signo forged';
    }
    default: { // a second thread / a second task / mm / fs, or none
      const t = r.pick([T.THREAD, T.TASK, T.MM, T.FS, T.REGS, T.XSTATE, T.AUXV, T.EXE, T.VMA_PATH, T.PAGE_RUNS, T.CREDS]);
      const n = nodes.find((x) => x.type === t && x.lenOk);
      if (!n) return 'count: none';
      const copy = Buffer.from(b.subarray(n.offset, n.offset + n.len));
      if (r.chance(0.5)) framedSplice(w, nodes, n.parent, n.offset + n.len, 0, copy);
      else framedSplice(w, nodes, n.parent, n.offset, n.len, Buffer.alloc(0));
      return `count of ${registry.label(t)} changed`;
    }
  }
};

/** Re-encode one record with another hdrlen, content kind or content. */
const reencode: Mutator = (w, r) => {
  const nodes = walk(w.img);
  const n = pickNode(r, nodes, (x) => x.lenOk && x.hdrlen >= 24 && x.hdrlen % 8 === 0 && x.hdrlen <= x.len &&
    x.contentLen <= x.len - x.hdrlen && x.content <= 3);
  if (n === undefined) return 'reencode: none';
  let fixed = Buffer.from(w.img.subarray(n.offset + 24, n.offset + n.hdrlen));
  let body = Buffer.from(w.img.subarray(n.offset + n.hdrlen, n.offset + n.hdrlen + n.contentLen));
  let content = n.content as Content;
  const what = r.int(6);
  let desc: string;
  switch (what) {
    case 0: fixed = fixed.subarray(0, 8 * r.int(fixed.length / 8 + 1)); desc = `hdrlen ${24 + fixed.length} (older writer)`; break;
    case 1: fixed = Buffer.concat([fixed, r.bytes(8 * r.range(1, 8))]); desc = 'hdrlen grown (newer writer)'; break;
    case 2: content = r.pick([Content.VOID, Content.ARRAY, Content.DATA, Content.NAME]);
      if (content === Content.VOID) body = Buffer.alloc(0);
      desc = `content kind ${Content[content]}`; break;
    case 3: body = r.pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc0, 0xaf]), Buffer.from('/a\0b'), Buffer.alloc(0),
      Buffer.alloc(4096, 0x2f), Buffer.from([0xed, 0xb0, 0x80])]);
      desc = 'content replaced'; break;
    case 4: body = body.subarray(0, r.int(body.length + 1)); desc = `content cut to ${body.length}`; break;
    default: body = Buffer.concat([body, r.bytes(r.pick([1, 7, 8, 16, 575, 4096]))]); desc = 'content grown';
  }
  if (content === Content.VOID) body = Buffer.alloc(0);
  const rec = encodeRecord(n.type, content, fixed, body);
  framedSplice(w, nodes, n.parent, n.offset, n.len, rec);
  return `reencode ${label(n)}: ${desc}`;
};

// ---- pages.img and the directory ----

const pagesAttack: Mutator = (w, r) => {
  const p = ownPages(w);
  if (p === null) return 'pages: none';
  const what = r.int(9);
  switch (what) {
    case 0: { // a header field, resealed or not
      const at = r.pick([0, 3, 8, 10, 12, 16, 20, 100]);
      const size = at === 8 || at === 10 ? 2 : at === 0 || at === 3 || at === 100 ? 1 : 4;
      if (at + size > p.length) return `pages header +${at}: pages.img is ${p.length} bytes`;
      writeRaw(p, at, size, BigInt(r.pick([0, 1, 2, 0xff, 4096, 8192, 0xffffffff, 2048])));
      if (r.chance(0.6)) resealPages(p);
      return `pages header +${at} forged`;
    }
    case 1: { // truncate, whole pages or not
      const at = r.chance(0.5) ? PAGE * r.int(p.length / PAGE + 1) : r.int(p.length + 1);
      w.pages = p.subarray(0, at);
      return `pages truncated to ${at}`;
    }
    case 2: case 3: { // page data corrupt
      if (p.length <= PAGE) return 'pages: no data';
      const at = PAGE + r.int(p.length - PAGE);
      p[at] ^= 1 << r.int(8);
      return `pages data flipped at ${at}`;
    }
    case 4: // junk appended
      w.pages = Buffer.concat([p, r.bytes(r.pick([1, 100, PAGE]))]);
      return 'pages: junk appended';
    case 5:
      w.pages = null;
      return 'pages.img removed';
    case 6:
      if (r.chance(0.2)) { w.imgMissing = true; return 'ckpt.img removed'; }
      w.pages = Buffer.alloc(r.pick([0, 100, PAGE]));
      return 'pages.img empty/zero';
    default: { // swap two data pages (the CRC of both VMAs breaks unless they are equal)
      const pagesN = Math.floor(p.length / PAGE) - 1;
      if (pagesN < 2) return 'pages: too few pages';
      const a = PAGE * (1 + r.int(pagesN)), c = PAGE * (1 + r.int(pagesN));
      const tmp = Buffer.from(p.subarray(a, a + PAGE));
      p.copy(p, a, c, c + PAGE);
      tmp.copy(p, c);
      return `pages ${a} and ${c} swapped`;
    }
  }
};

export const MUTATORS: readonly (readonly [number, string, Mutator])[] = [
  [10, 'bitflip', bitflip],
  [8, 'byteset', byteset],
  [4, 'truncate', truncate],
  [4, 'insertRaw', insertRaw],
  [4, 'deleteRaw', deleteRaw],
  [6, 'insertRecord', insertRecord],
  [5, 'deleteRecord', deleteRecord],
  [4, 'duplicateRecord', duplicateRecord],
  [3, 'moveRecord', moveRecord],
  [6, 'spliceDonor', spliceDonor],
  [2, 'nest', nest],
  [10, 'forgeHeader', forgeHeader],
  [12, 'forgeField', forgeField],
  [12, 'vmaAttack', vmaAttack],
  [7, 'runsAttack', runsAttack],
  [8, 'countAttack', countAttack],
  [7, 'reencode', reencode],
  [6, 'pagesAttack', pagesAttack],
];

const WEIGHTED = MUTATORS.map(([wt, name, fn]) => [wt, [name, fn] as const] as const);

export const MUTATOR_ERROR = 'mutator error:';

export interface Mutated {
  input: Input;
  log: string[];
  resealed: boolean;
}

/** 1-4 stacked mutations of `seed`; then, half of the time, END fixed and every CRC resealed. */
export function mutate(seed: Seed, donors: readonly Seed[], r: Rand): Mutated {
  const w: Work = { img: Buffer.from(seed.img), pages: seed.pages, pagesOwned: false, imgMissing: false, donors };
  const log: string[] = [];
  const k = r.chance(0.6) ? 1 : r.range(2, 4);
  for (let i = 0; i < k; i++) {
    const [name, fn] = r.weighted(WEIGHTED);
    try {
      log.push(`${name}: ${fn(w, r)}`);
    } catch (e) {
      // a bug of the fuzzer, not of ckpt: counted by the campaign, the case goes on
      log.push(`${name}: ${MUTATOR_ERROR} ${(e as Error).message}`);
    }
  }
  const resealed = r.chance(0.5);
  if (resealed) {
    if (r.chance(0.8)) fixEnd(w.img);
    reseal(w.img);
    log.push('resealed');
  }
  return { input: { img: w.imgMissing ? null : w.img, pages: w.pages }, log, resealed };
}
