/**
 * The sections `ckpt show` prints on request: --tree, --files, --maps,
 * --cmdline, --env. Each has a JSON form (what --json prints) and a text form.
 */
import { CkptError } from '../errors.js';
import { PAGE_SIZE } from '../sys/constants.js';
import { openInspect, hex, type InspectImage, type InspectProcess } from './model.js';
import { SavedMemory } from './memory.js';

export const SECTIONS = ['tree', 'files', 'maps', 'cmdline', 'env'] as const;
export type Section = typeof SECTIONS[number];

type Json = number | string | boolean | null | Json[] | { [k: string]: Json };

// ---- tree ----------------------------------------------------------------------

export interface TreeNode { pid: number; ppid: number; comm: string; state: string; threads: number; pgrp: number; session: number; children: TreeNode[] }

export function treeOf(img: InspectImage): TreeNode[] {
  const nodes = new Map<number, TreeNode>();
  for (const p of img.processes) {
    nodes.set(p.pid, { pid: p.pid, ppid: p.task.ppid, comm: p.task.comm, state: p.task.state, threads: p.threads, pgrp: p.task.pgrp, session: p.task.session, children: [] });
  }
  const roots: TreeNode[] = [];
  for (const n of nodes.values()) {
    const parent = n.ppid !== n.pid ? nodes.get(n.ppid) : undefined;
    if (parent) parent.children.push(n); else roots.push(n);
  }
  const sort = (l: TreeNode[]) => { l.sort((a, b) => a.pid - b.pid); l.forEach((c) => sort(c.children)); };
  sort(roots);
  // A cycle of ppids (a forged image) leaves nodes unreachable: show them as roots.
  const seen = new Set<number>();
  const walk = (n: TreeNode) => { if (seen.has(n.pid)) return; seen.add(n.pid); n.children.forEach(walk); };
  roots.forEach(walk);
  for (const n of nodes.values()) if (!seen.has(n.pid)) { n.children = n.children.filter((c) => !seen.has(c.pid)); roots.push(n); walk(n); }
  return roots;
}

function formatTree(roots: TreeNode[]): string[] {
  const lines = [`${'PID'.padEnd(24)} ${'COMM'.padEnd(16)} STATE THREADS`];
  const rec = (n: TreeNode, lead: string, childLead: string) => {
    lines.push(`${(lead + n.pid).padEnd(24)} ${n.comm.padEnd(16)} ${n.state.padEnd(5)} ${n.threads}`);
    n.children.forEach((c, i) => {
      const last = i === n.children.length - 1;
      rec(c, childLead + (last ? '└─ ' : '├─ '), childLead + (last ? '   ' : '│  '));
    });
  };
  for (const r of roots) rec(r, '', '');
  return lines;
}

// ---- files ---------------------------------------------------------------------

const O_FLAG_NAMES: [number, string][] = [
  [0o100, 'O_CREAT'], [0o200, 'O_EXCL'], [0o400, 'O_NOCTTY'], [0o1000, 'O_TRUNC'], [0o2000, 'O_APPEND'],
  [0o4000, 'O_NONBLOCK'], [0o10000, 'O_DSYNC'], [0o20000, 'O_ASYNC'], [0o40000, 'O_DIRECT'], [0o100000, 'O_LARGEFILE'],
  [0o200000, 'O_DIRECTORY'], [0o400000, 'O_NOFOLLOW'], [0o1000000, 'O_NOATIME'], [0o4000000, '__O_SYNC'], [0o10000000, 'O_PATH'],
];
export function openFlagsText(flags: number): string {
  const names = [['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'][flags & 3]];
  for (const [bit, name] of O_FLAG_NAMES) if (flags & bit) names.push(name);
  return names.join('|');
}

function filesJson(p: InspectProcess): { [k: string]: Json } {
  const pipes = new Map(p.pipes.map((x) => [x.ino, x]));
  return {
    pid: p.pid, comm: p.task.comm,
    fds: p.fds.map((f) => {
      const pipe = f.kind === 'PIPE' ? pipes.get(f.fields.ino) : undefined;
      const o: { [k: string]: Json } = {
        fd: f.fields.fd, kind: f.kind, path: f.path, flags: `0${f.fields.flags.toString(8)}`, flags_text: openFlagsText(f.fields.flags),
        offset: f.fields.pos, cloexec: f.fields.cloexec === 1,
      };
      if (f.kind === 'PIPE') o.pipe = pipe ? { ino: Number(pipe.ino), end: (f.fields.flags & 3) === 0 ? 'read' : 'write', bytes: pipe.bytes, size: pipe.size } : null;
      const note = fdNote(f);
      if (note) o.note = note;
      return o;
    }),
    pipes: p.pipes.map((x) => ({ ino: Number(x.ino), bytes: x.bytes, size: x.size })),
  };
}

/** What a terminal or FIFO fd is, in words: ptys by index, the controlling terminal, bytes saved. */
function fdNote(f: InspectProcess['fds'][number]): string | undefined {
  const p = f.pty;
  if (p) {
    const dropped = p.master_unread + p.slave_unread;
    return [`pty ${p.index} master`, `${p.rows}x${p.cols}`, p.locked ? 'locked' : '', p.packet ? 'packet mode' : '',
      p.sid > 0 ? `session ${p.sid}, foreground ${p.fg_pgrp}` : '', dropped ? `${dropped} bytes in flight not saved` : ''].filter(Boolean).join(', ');
  }
  if (f.kind === 'PTS') return `pty ${/\d+$/.exec(f.path)?.[0] ?? '?'} slave${f.ctty ? ', the controlling terminal' : ''}`;
  if (f.kind === 'DEVTTY') return 'the controlling terminal, reopened by the process';
  if (f.kind === 'FIFO') return f.fifoBytes !== undefined ? `FIFO, ${f.fifoBytes} bytes in flight saved here` : 'FIFO';
  if (f.kind === 'PATH') return 'O_PATH';
  return undefined;
}

function formatFiles(j: { [k: string]: Json }): string[] {
  const lines = [`process ${j.pid} (${j.comm})`, `  ${'FD'.padStart(4)} ${'KIND'.padEnd(6)} ${'FLAGS'.padEnd(34)} ${'OFFSET'.padStart(10)} CLOEXEC PATH`];
  for (const f of j.fds as { [k: string]: Json }[]) {
    const pipe = f.pipe as { [k: string]: Json } | null | undefined;
    const extra = pipe ? `  (${pipe.end} end, ${pipe.bytes} byte${pipe.bytes === 1 ? '' : 's'} in the pipe, capacity ${pipe.size})` : pipe === null ? '  (no pipe record)' : f.note ? `  (${f.note})` : '';
    lines.push(`  ${String(f.fd).padStart(4)} ${String(f.kind).padEnd(6)} ${`${f.flags} ${f.flags_text}`.padEnd(34)} ${String(f.offset).padStart(10)} ${(f.cloexec ? 'yes' : 'no').padEnd(7)} ${f.path}${extra}`);
  }
  return lines;
}

// ---- maps ----------------------------------------------------------------------

function mapsJson(p: InspectProcess): { [k: string]: Json } {
  return {
    pid: p.pid, comm: p.task.comm,
    vmas: p.vmas.map((v) => ({
      start: hex(v.start), end: hex(v.end), size: v.end - v.start, prot: v.prot, kind: v.kind,
      pgoff: v.fields.pgoff, saved_pages: v.fields.nr_pages, saved_bytes: v.fields.nr_pages * PAGE_SIZE,
      runs: v.runs.length, path: v.path,
    })),
  };
}

const size = (n: number) => (n >= 1 << 30 ? `${(n / 2 ** 30).toFixed(1)}G` : n >= 1 << 20 ? `${(n / 2 ** 20).toFixed(1)}M` : `${Math.round(n / 1024)}K`);

function formatMaps(j: { [k: string]: Json }): string[] {
  const vmas = j.vmas as { [k: string]: Json }[];
  const saved = vmas.reduce((n, v) => n + (v.saved_pages as number), 0);
  const lines = [`process ${j.pid} (${j.comm}): ${vmas.length} VMAs, ${saved} pages saved (${size(saved * PAGE_SIZE)})`,
    `  ${'START-END'.padEnd(29)} PROT ${'KIND'.padEnd(12)} ${'SIZE'.padStart(8)} ${'SAVED'.padStart(8)} ${'(SIZE)'.padStart(8)}  PATH`];
  for (const v of vmas) {
    lines.push(`  ${`${v.start}-${v.end}`.padEnd(29)} ${String(v.prot).padEnd(4)} ${String(v.kind).padEnd(12)} ${size(v.size as number).padStart(8)} ${String(v.saved_pages).padStart(8)} ${size(v.saved_bytes as number).padStart(8)}  ${v.path}`);
  }
  return lines;
}

// ---- cmdline / env ---------------------------------------------------------------

/** The NUL-separated strings in [start, end) of the saved memory (unsaved pages read as zeros). */
export function savedStrings(mem: SavedMemory, start: number, end: number, what: string): string[] {
  if (start === 0 && end === 0) return [];
  if (end < start || end - start > 64 * 1024 * 1024) throw new CkptError('BAD_IMAGE', `bad image: ${what} range ${hex(start)}-${hex(end)}`);
  if (end === start) return [];
  const bytes = mem.read(start, end - start);
  const parts = bytes.toString('utf8').split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

function stringsJson(img: InspectImage, p: InspectProcess, which: 'cmdline' | 'env'): { [k: string]: Json } {
  if (!p.mm) return { pid: p.pid, comm: p.task.comm, zombie: true, [which === 'cmdline' ? 'argv' : 'env']: [] };
  const mm = p.mm;
  const mem = SavedMemory.open(img, p);
  try {
    const [s, e] = which === 'cmdline' ? [mm.arg_start, mm.arg_end] : [mm.env_start, mm.env_end];
    return { pid: p.pid, comm: p.task.comm, start: hex(s), end: hex(e), [which === 'cmdline' ? 'argv' : 'env']: savedStrings(mem, s, e, which) };
  } finally {
    mem.close();
  }
}

// ---- all together -----------------------------------------------------------------

export function showSections(dir: string, sections: Section[]): { [k: string]: Json } {
  const img = openInspect(dir);
  const out: { [k: string]: Json } = {};
  for (const s of sections) {
    if (s === 'tree') out.tree = treeOf(img) as unknown as Json;
    else if (s === 'files') out.files = img.processes.map(filesJson);
    else if (s === 'maps') out.maps = img.processes.map(mapsJson);
    else out[s] = img.processes.map((p) => stringsJson(img, p, s));
  }
  return out;
}

export function formatSections(j: { [k: string]: Json }): string {
  const blocks: string[][] = [];
  for (const [s, v] of Object.entries(j)) {
    const many = Object.keys(j).length > 1;
    const lines: string[] = many ? [`== ${s}`] : [];
    if (s === 'tree') lines.push(...formatTree(v as unknown as TreeNode[]));
    else if (s === 'files') (v as { [k: string]: Json }[]).forEach((p) => lines.push(...formatFiles(p)));
    else if (s === 'maps') (v as { [k: string]: Json }[]).forEach((p) => lines.push(...formatMaps(p)));
    else {
      const procs = v as { [k: string]: Json }[];
      for (const p of procs) {
        if (procs.length > 1) lines.push(`process ${p.pid} (${p.comm})`);
        for (const str of (p.argv ?? p.env) as string[]) lines.push(str);
      }
    }
    blocks.push(lines);
  }
  return blocks.map((b) => b.join('\n')).join('\n\n') + '\n';
}
