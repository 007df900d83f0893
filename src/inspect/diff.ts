/**
 * ckpt diff A B: what changed between two images of the same process. Pages
 * are compared one by one, streaming both pages.img files in chunks; VMAs are
 * matched by start address, fds by number, processes by pid.
 */
import { PAGE_SIZE } from '../sys/constants.js';
import { openInspect, hex, type InspectImage, type InspectProcess, type InspectVma } from './model.js';
import { SavedMemory, type Piece } from './memory.js';
import { vmaJson, type VmaJson } from './mem.js';
import { openFlagsText } from './sections.js';

const CHUNK_PAGES = 1024; // 4 MiB of each image per read

/** Task fields that move on their own (times, counters): listed apart from the state. */
export const COUNTER_FIELDS = ['utime', 'stime', 'start_time', 'nvcsw', 'nivcsw', 'min_flt', 'maj_flt'];

type Scalar = number | string | boolean;
export interface FieldChange { field: string; a: Scalar; b: Scalar }
export interface PageRange { start: string; end: string; pages: number; how: 'changed' | 'saved in A only' | 'saved in B only' }
export interface VmaPages { vma: VmaJson; saved_a: number; saved_b: number; changed: number; only_a: number; only_b: number; ranges: PageRange[] }
export interface ProcessDiff {
  pid: number;
  pid_b: number;
  state: FieldChange[];
  counters: (FieldChange & { delta?: number })[];
  vmas: { added: VmaJson[]; removed: VmaJson[]; changed: { start: string; a: VmaJson; b: VmaJson; fields: FieldChange[] }[] };
  pages: { compared_vmas: number; changed: number; only_a: number; only_b: number; vmas: VmaPages[] };
  fds: { added: FdJson[]; removed: FdJson[]; changed: { fd: number; fields: FieldChange[] }[] };
}
export interface FdJson { fd: number; kind: string; path: string; flags: string; offset: number; cloexec: boolean }
export interface DiffResult {
  a: { dir: string; created: string; pids: number[] };
  b: { dir: string; created: string; pids: number[] };
  processes_added: number[];
  processes_removed: number[];
  processes: ProcessDiff[];
  identical: boolean;
}

const plainValue = (v: unknown): Scalar => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : Buffer.isBuffer(v) ? v.toString('hex') : (v as Scalar));

function changes(a: Record<string, unknown>, b: Record<string, unknown>, keys: string[], prefix = ''): FieldChange[] {
  const out: FieldChange[] = [];
  for (const k of keys) {
    const x = plainValue(a[k]), y = plainValue(b[k]);
    if (x !== y) out.push({ field: prefix + k, a: x, b: y });
  }
  return out;
}

const fdJson = (f: InspectProcess['fds'][number]): FdJson => ({
  fd: f.fields.fd, kind: f.kind, path: f.path, flags: `0${f.fields.flags.toString(8)}`, offset: f.fields.pos, cloexec: f.fields.cloexec === 1,
});

/** Whether an unsaved page of this VMA reads as zeros (anonymous kinds) rather than a file's contents. */
const zeroBacked = (v: InspectVma) => v.kind === 'ANON' || v.kind === 'SHARED_ANON';

function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i += 8) if (buf.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

/** Compare the pages of two VMAs with the same start over their common range. */
function comparePages(ma: SavedMemory, va: InspectVma, mb: SavedMemory, vb: InspectVma, bufA: Buffer, bufB: Buffer): VmaPages {
  const lo = va.start, hi = Math.min(va.end, vb.end);
  const pa = ma.piecesOf(va), pb = mb.piecesOf(vb);
  const cuts = new Set<number>([lo, hi]);
  for (const p of [...pa, ...pb]) for (const x of [p.addr, p.addr + p.len]) if (x > lo && x < hi) cuts.add(x);
  const bounds = [...cuts].sort((x, y) => x - y);
  const at = (pieces: Piece[], addr: number) => pieces.find((p) => addr >= p.addr && addr < p.addr + p.len);
  const r: VmaPages = { vma: vmaJson(vb), saved_a: va.fields.nr_pages, saved_b: vb.fields.nr_pages, changed: 0, only_a: 0, only_b: 0, ranges: [] };
  const zeroOk = zeroBacked(va) && zeroBacked(vb);
  const mark = (addr: number, how: PageRange['how']) => {
    if (how === 'changed') r.changed++; else if (how === 'saved in A only') r.only_a++; else r.only_b++;
    const last = r.ranges[r.ranges.length - 1];
    if (last && last.how === how && Number(BigInt(last.end)) === addr) { last.end = hex(addr + PAGE_SIZE); last.pages++; }
    else r.ranges.push({ start: hex(addr), end: hex(addr + PAGE_SIZE), pages: 1, how });
  };
  for (let i = 0; i + 1 < bounds.length; i++) {
    const s = bounds[i], e = bounds[i + 1];
    const a = at(pa, s), b = at(pb, s);
    if (!a && !b) continue;
    for (let pos = s; pos < e; pos += CHUNK_PAGES * PAGE_SIZE) {
      const len = Math.min(CHUNK_PAGES * PAGE_SIZE, e - pos);
      if (a) ma.pread(bufA, 0, len, a.fileOff + (pos - a.addr));
      if (b) mb.pread(bufB, 0, len, b.fileOff + (pos - b.addr));
      for (let off = 0; off < len; off += PAGE_SIZE) {
        const x = bufA.subarray(off, off + PAGE_SIZE), y = bufB.subarray(off, off + PAGE_SIZE);
        if (a && b) { if (!x.equals(y)) mark(pos + off, 'changed'); }
        else if (a) { if (!(zeroOk && isZero(x))) mark(pos + off, 'saved in A only'); }
        else if (!(zeroOk && isZero(y))) mark(pos + off, 'saved in B only');
      }
    }
  }
  return r;
}

const VMA_FIELDS = ['end', 'prot', 'kind', 'pgoff', 'vm_flags', 'dev_major', 'dev_minor', 'ino', 'file_size', 'file_mtime_ns'];

function diffProcess(ia: InspectImage, pa: InspectProcess, ib: InspectImage, pb: InspectProcess): ProcessDiff {
  const taskKeys = Object.keys(pa.task);
  const state = [
    ...changes(pa.task, pb.task, taskKeys.filter((k) => !COUNTER_FIELDS.includes(k)), 'task.'),
    ...changes(pa.mm ?? {}, pb.mm ?? {}, Object.keys(pa.mm ?? pb.mm ?? {}), 'mm.'),
    ...changes({ threads: pa.threads, exe: pa.exe, cwd: pa.cwd }, { threads: pb.threads, exe: pb.exe, cwd: pb.cwd }, ['threads', 'exe', 'cwd']),
  ];
  const counters = changes(pa.task, pb.task, COUNTER_FIELDS, 'task.').map((c) => (typeof c.a === 'number' && typeof c.b === 'number' ? { ...c, delta: c.b - c.a } : c));

  const byStartB = new Map(pb.vmas.map((v) => [v.start, v]));
  const byStartA = new Map(pa.vmas.map((v) => [v.start, v]));
  const vmas: ProcessDiff['vmas'] = { added: pb.vmas.filter((v) => !byStartA.has(v.start)).map(vmaJson), removed: pa.vmas.filter((v) => !byStartB.has(v.start)).map(vmaJson), changed: [] };
  const pages: ProcessDiff['pages'] = { compared_vmas: 0, changed: 0, only_a: 0, only_b: 0, vmas: [] };
  const ma = SavedMemory.open(ia, pa);
  try {
    const mb = SavedMemory.open(ib, pb);
    try {
      const bufA = Buffer.alloc(CHUNK_PAGES * PAGE_SIZE), bufB = Buffer.alloc(CHUNK_PAGES * PAGE_SIZE);
      for (const va of pa.vmas) {
        const vb = byStartB.get(va.start);
        if (!vb) continue;
        const f = [...changes(va.fields, vb.fields, VMA_FIELDS), ...changes({ path: va.path }, { path: vb.path }, ['path'])]
          .map((c) => (c.field === 'end' ? { ...c, a: hex(Number(c.a)), b: hex(Number(c.b)) } : c));
        if (f.length) vmas.changed.push({ start: hex(va.start), a: vmaJson(va), b: vmaJson(vb), fields: f });
        pages.compared_vmas++;
        const r = comparePages(ma, va, mb, vb, bufA, bufB);
        pages.changed += r.changed; pages.only_a += r.only_a; pages.only_b += r.only_b;
        if (r.ranges.length) pages.vmas.push(r);
      }
    } finally {
      mb.close();
    }
  } finally {
    ma.close();
  }

  const fdsA = new Map(pa.fds.map((f) => [f.fields.fd, f])), fdsB = new Map(pb.fds.map((f) => [f.fields.fd, f]));
  const fds: ProcessDiff['fds'] = { added: pb.fds.filter((f) => !fdsA.has(f.fields.fd)).map(fdJson), removed: pa.fds.filter((f) => !fdsB.has(f.fields.fd)).map(fdJson), changed: [] };
  for (const fa of pa.fds) {
    const fb = fdsB.get(fa.fields.fd);
    if (!fb) continue;
    const ja = fdJson(fa) as unknown as Record<string, unknown>, jb = fdJson(fb) as unknown as Record<string, unknown>;
    const f = changes(ja, jb, ['kind', 'path', 'flags', 'offset', 'cloexec']).map((c) => (c.field === 'flags' ? { ...c, a: `${c.a} ${openFlagsText(parseInt(String(c.a), 8))}`, b: `${c.b} ${openFlagsText(parseInt(String(c.b), 8))}` } : c));
    if (fa.kind === 'PIPE' && fb.kind === 'PIPE') {
      const pipeA = pa.pipes.find((p) => p.ino === fa.fields.ino), pipeB = pb.pipes.find((p) => p.ino === fb.fields.ino);
      if ((pipeA?.bytes ?? 0) !== (pipeB?.bytes ?? 0)) f.push({ field: 'pipe_bytes', a: pipeA?.bytes ?? 0, b: pipeB?.bytes ?? 0 });
    }
    if (f.length) fds.changed.push({ fd: fa.fields.fd, fields: f });
  }
  return { pid: pa.pid, pid_b: pb.pid, state, counters, vmas, pages, fds };
}

export function diffImages(dirA: string, dirB: string): DiffResult {
  const ia = openInspect(dirA), ib = openInspect(dirB);
  const created = (i: InspectImage) => new Date(Number(i.image.info.createdNs / 1_000_000n)).toISOString();
  const pidsA = ia.processes.map((p) => p.pid), pidsB = ib.processes.map((p) => p.pid);
  const pairs: [InspectProcess, InspectProcess][] = [];
  if (pidsA.length === 1 && pidsB.length === 1) pairs.push([ia.processes[0], ib.processes[0]]);
  else for (const p of ia.processes) { const q = ib.processes.find((x) => x.pid === p.pid); if (q) pairs.push([p, q]); }
  const matchedA = new Set(pairs.map(([p]) => p.pid)), matchedB = new Set(pairs.map(([, q]) => q.pid));
  const processes = pairs.map(([p, q]) => diffProcess(ia, p, ib, q));
  const r: DiffResult = {
    a: { dir: dirA, created: created(ia), pids: pidsA }, b: { dir: dirB, created: created(ib), pids: pidsB },
    processes_added: pidsB.filter((p) => !matchedB.has(p)), processes_removed: pidsA.filter((p) => !matchedA.has(p)),
    processes, identical: false,
  };
  r.identical = r.processes_added.length === 0 && r.processes_removed.length === 0 && processes.every((d) =>
    d.state.length === 0 && d.vmas.added.length + d.vmas.removed.length + d.vmas.changed.length === 0 &&
    d.pages.changed + d.pages.only_a + d.pages.only_b === 0 && d.fds.added.length + d.fds.removed.length + d.fds.changed.length === 0);
  return r;
}

const vmaText = (v: VmaJson) => `${v.start}-${v.end} ${v.prot} ${v.kind}${v.path ? ' ' + v.path : ''}`;
const fdText = (f: FdJson) => `fd ${f.fd} ${f.kind} ${f.path} flags=${f.flags} offset=${f.offset}${f.cloexec ? ' cloexec' : ''}`;
const changeText = (c: FieldChange) => `${c.field}: ${c.a} -> ${c.b}`;

export function formatDiff(r: DiffResult): string {
  const L: string[] = [`A: ${r.a.dir} (${r.a.created}, pid ${r.a.pids.join(', ')})`, `B: ${r.b.dir} (${r.b.created}, pid ${r.b.pids.join(', ')})`];
  if (r.processes_removed.length) L.push(`processes only in A: ${r.processes_removed.join(', ')}`);
  if (r.processes_added.length) L.push(`processes only in B: ${r.processes_added.join(', ')}`);
  for (const d of r.processes) {
    L.push('', d.pid === d.pid_b ? `process ${d.pid}` : `process ${d.pid} (A) / ${d.pid_b} (B)`);
    const p = d.pages;
    L.push(`  pages: ${p.changed} changed, ${p.only_a} saved in A only, ${p.only_b} saved in B only (${p.vmas.length} of ${p.compared_vmas} common VMAs differ)`);
    for (const v of p.vmas) {
      L.push(`    ${vmaText(v.vma)}: ${v.changed} changed, ${v.only_a} A only, ${v.only_b} B only (saved ${v.saved_a} -> ${v.saved_b})`);
      const shown = v.ranges.slice(0, 20);
      for (const g of shown) L.push(`      ${g.start}-${g.end} ${String(g.pages).padStart(6)} page${g.pages === 1 ? ' ' : 's'} ${g.how}`);
      if (v.ranges.length > shown.length) L.push(`      ... ${v.ranges.length - shown.length} more ranges (--json lists them all)`);
    }
    L.push(`  vmas: ${d.vmas.added.length} added, ${d.vmas.removed.length} removed, ${d.vmas.changed.length} changed`);
    for (const v of d.vmas.added) L.push(`    + ${vmaText(v)}`);
    for (const v of d.vmas.removed) L.push(`    - ${vmaText(v)}`);
    for (const c of d.vmas.changed) L.push(`    ~ ${c.start}: ${c.fields.map(changeText).join(', ')}`);
    L.push(`  fds: ${d.fds.added.length} added, ${d.fds.removed.length} removed, ${d.fds.changed.length} changed`);
    for (const f of d.fds.added) L.push(`    + ${fdText(f)}`);
    for (const f of d.fds.removed) L.push(`    - ${fdText(f)}`);
    for (const c of d.fds.changed) L.push(`    ~ fd ${c.fd}: ${c.fields.map(changeText).join(', ')}`);
    L.push(`  state: ${d.state.length ? '' : 'no change'}`.trimEnd());
    for (const c of d.state) L.push(`    ${changeText(c)}`);
    L.push(`  times and counters: ${d.counters.length ? '' : 'no change'}`.trimEnd());
    for (const c of d.counters) L.push(`    ${changeText(c)}${c.delta !== undefined ? ` (${c.delta >= 0 ? '+' : ''}${c.delta})` : ''}`);
  }
  L.push('', r.identical ? 'The images are the same (apart from times and counters).' : 'The images differ.');
  return L.join('\n') + '\n';
}
