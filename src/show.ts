/**
 * What `ckpt show` prints and readImage() returns: the image as plain data,
 * field names as the seed's records name them (without the cpt_ prefix).
 */
import { readImage, openImageDir, childOf, childrenOf, maybeChildOf, viewValue, type ImageRecord, type AnyFieldValue } from './image/index.js';
import { archName } from './image/index.js';
import { registry } from './kinds/index.js';
import { PROCESS } from './kinds/process.js';
import { TASK } from './kinds/task.js';
import { THREAD } from './kinds/thread.js';
import { REGS, XSTATE } from './kinds/regs.js';
import { MM, EXE } from './kinds/mm.js';
import { VMA, VMA_PATH, VmaKind, VM_FLAG_BITS } from './kinds/vma.js';
import { SIGACTION } from './kinds/sigactions.js';
import { FS, FS_ROOT } from './kinds/fs.js';
import { CREDS, decodeGroups } from './kinds/creds.js';
import { FD, FdKind } from './kinds/files.js';
import { PIPE } from './kinds/pipes.js';
import { SOCKET, showSocket } from './kinds/sockets/records.js';
import { RLIMITS, decodeRlimits } from './kinds/rlimits.js';
import { MISC } from './kinds/misc.js';
import { SIGNALS, SIGINFO } from './kinds/signals.js';
import { ITIMER, POSIX_TIMER } from './kinds/timers.js';
import { SECCOMP, SECCOMP_FILTER } from './kinds/seccomp.js';
import { RLIMIT_NAMES, RLIM_INFINITY } from './proc/index.js';
import { loadContainer, containerJson } from './kinds/container.js';

type Json = number | string | boolean | null | Json[] | { [k: string]: Json };
export type ImageJson = { [k: string]: Json };

function plain(fields: Record<string, AnyFieldValue>, hex: readonly string[] = []): { [k: string]: Json } {
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = hex.includes(k) && (typeof v === 'number' || typeof v === 'bigint') ? `0x${v.toString(16)}` : viewValue(v);
  }
  return out;
}

const XFEATURE_NAMES = ['x87', 'SSE', 'AVX', 'BNDREGS', 'BNDCSR', 'AVX-512 opmask', 'AVX-512 ZMM_Hi256', 'AVX-512 Hi16_ZMM', 'PT', 'PKRU', 'PASID', 'CET_U', 'CET_S', 'HDC', 'UINTR', 'LBR', 'HWP', 'AMX TILECFG', 'AMX TILEDATA', 'APX'];
export function xfeatureNames(mask: bigint): string[] {
  return XFEATURE_NAMES.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

const PROT_TEXT = (p: number) => `${p & 1 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 4 ? 'x' : '-'}`;

function processJson(proc: ImageRecord): { [k: string]: Json } {
  const threads = childrenOf(proc, THREAD).map((t) => {
    const x = childOf(t, XSTATE).fields;
    return {
      ...plain(t.fields, ['clear_child_tid', 'rseq_ptr', 'sigmask', 'rseq_sig']),
      regs: plain(childOf(t, REGS).fields, Object.keys(REGS.fields)),
      xstate: { size: x.size, xfeatures: `0x${x.xfeatures.toString(16)}`, xstate_bv: `0x${x.xstate_bv.toString(16)}`, features: xfeatureNames(x.xfeatures), in_use: xfeatureNames(x.xstate_bv) },
    };
  });
  const mm = maybeChildOf(proc, MM);
  const fsRec = maybeChildOf(proc, FS);
  const creds = maybeChildOf(proc, CREDS);
  const rl = maybeChildOf(proc, RLIMITS);
  const misc = maybeChildOf(proc, MISC);
  const signals = maybeChildOf(proc, SIGNALS);
  const seccomp = maybeChildOf(proc, SECCOMP);
  const limit = (v: bigint): Json => (v === RLIM_INFINITY ? 'unlimited' : Number(v));
  return {
    task: plain(childOf(proc, TASK).fields, ['flags', 'tls']),
    groups: creds ? decodeGroups(creds.data ?? Buffer.alloc(0)) : [],
    creds: creds ? plain(creds.fields, ['cap_inh', 'cap_prm', 'cap_eff', 'cap_bnd', 'cap_amb', 'securebits']) : {},
    rlimits: rl ? decodeRlimits(rl.data ?? Buffer.alloc(0)).map((l, i) => ({ resource: RLIMIT_NAMES[i] ?? String(i), soft: limit(l.soft), hard: limit(l.hard) })) : [],
    misc: misc ? { ...plain(misc.fields, ['personality']), affinity: (misc.data ?? Buffer.alloc(0)).toString('hex') } : {},
    signals: signals ? {
      ...plain(signals.fields, ['altstack_sp']),
      pending: childrenOf(signals, SIGINFO).map((r) => ({ signo: r.fields.signo, queue: r.fields.shared ? 'process' : 'thread', code: (r.data ?? Buffer.alloc(12)).readInt32LE(8) })),
    } : {},
    itimers: childrenOf(proc, ITIMER).map((r) => plain(r.fields)),
    posix_timers: childrenOf(proc, POSIX_TIMER).map((r) => plain(r.fields, ['sigval'])),
    seccomp: seccomp ? { mode: seccomp.fields.mode, filters: childrenOf(seccomp, SECCOMP_FILTER).map((r) => r.fields.insns) } : {},
    // A zombie has no mm (nor fs, vmas, fds or threads): only its task.
    mm: mm ? { ...plain(mm.fields, Object.keys(MM.fields)), exe: maybeChildOf(mm, EXE)?.name ?? '' } : {},
    fs: fsRec ? { cwd: fsRec.name ?? '', root: maybeChildOf(proc, FS_ROOT)?.name ?? '/', umask: `0${fsRec.fields.umask.toString(8)}` } : {},
    vmas: childrenOf(proc, VMA).map((r) => ({
      start: `0x${r.fields.start.toString(16)}`, end: `0x${r.fields.end.toString(16)}`,
      prot: PROT_TEXT(r.fields.prot), kind: VmaKind[r.fields.kind] ?? String(r.fields.kind),
      pgoff: r.fields.pgoff, pages: r.fields.nr_pages, path: maybeChildOf(r, VMA_PATH)?.name ?? '',
      vm_flags: Object.entries(VM_FLAG_BITS).filter(([, bit]) => r.fields.vm_flags & bit).map(([name]) => name).join(' '),
    })),
    sigactions: childrenOf(proc, SIGACTION).map((r) => plain(r.fields, ['handler', 'flags', 'restorer', 'mask'])),
    fds: childrenOf(proc, FD).map((r) => ({
      fd: r.fields.fd, kind: FdKind[r.fields.kind] ?? String(r.fields.kind), path: r.name ?? '',
      flags: `0${r.fields.flags.toString(8)}`, cloexec: r.fields.cloexec === 1, pos: r.fields.pos,
    })),
    pipes: childrenOf(proc, PIPE).map((r) => ({ ino: Number(r.fields.ino), size: r.fields.size, bytes: r.fields.bytes })),
    sockets: childrenOf(proc, SOCKET).map(showSocket),
    threads,
  };
}

export function showImage(dir: string): ImageJson {
  const img = readImage(openImageDir(dir).image, registry);
  const i = img.info;
  return {
    image: {
      format: `${i.versionMajor}.${i.versionMinor}`, arch: archName(i.arch), page_size: i.pageSize,
      kernel: i.utsRelease, tool: i.tool, created: new Date(Number(i.createdNs / 1_000_000n)).toISOString(),
    },
    processes: childrenOf(img.records, PROCESS).map(processJson),
    ...containerOf(img.records),
  };
}

/** `container` only for an image of a container (kinds/container.ts). */
function containerOf(records: ImageRecord[]): ImageJson {
  const c = loadContainer(records);
  return c ? { container: containerJson(c) as Json } : {};
}

function kv(o: Json, keys?: string[]): string {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return String(o);
  return Object.entries(o).filter(([k]) => !keys || keys.includes(k)).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
}

/** The same data for a person. */
export function formatImage(j: ImageJson): string {
  const lines: string[] = [];
  lines.push(`image: ${kv(j.image)}`);
  if (j.container) {
    const { shm, sem, msg, ...names } = j.container as { [k: string]: Json };
    lines.push(`container: ${kv(names)}`);
    for (const [what, list] of [['shm', shm], ['sem', sem], ['msg queue', msg]] as const) for (const o of list as Json[]) lines.push(`  ${what}: ${kv(o)}`);
  }
  for (const p of j.processes as { [k: string]: Json }[]) {
    const task = p.task as { [k: string]: Json };
    lines.push('', `process ${task.pid} (${task.comm})`);
    lines.push(`  task: ${kv(task)}`);
    lines.push(`  creds: groups=${JSON.stringify(p.groups)} ${kv(p.creds)}`);
    lines.push(`  misc: ${kv(p.misc)}`);
    lines.push(`  rlimits: ${(p.rlimits as { [k: string]: Json }[]).map((l) => `${l.resource}=${l.soft}/${l.hard}`).join(', ')}`);
    lines.push(`  signals: ${kv(p.signals)}`);
    for (const tm of p.itimers as Json[]) lines.push(`  itimer: ${kv(tm)}`);
    for (const tm of p.posix_timers as Json[]) lines.push(`  posix timer: ${kv(tm)}`);
    lines.push(`  seccomp: ${kv(p.seccomp)}`);
    lines.push(`  mm: ${kv(p.mm)}`);
    lines.push(`  fs: ${kv(p.fs)}`);
    for (const th of p.threads as { [k: string]: Json }[]) {
      const { regs, xstate, ...rest } = th;
      lines.push(`  thread: ${kv(rest)}`);
      const r = Object.entries(regs as { [k: string]: Json });
      for (let k = 0; k < r.length; k += 4) lines.push('    ' + r.slice(k, k + 4).map(([n, v]) => `${n.padEnd(8)} ${String(v).padStart(18)}`).join('  '));
      const x = xstate as { [k: string]: Json };
      lines.push(`    fpu: xsave area ${x.size} bytes; CPU features ${x.xfeatures} (${(x.features as string[]).join(', ')}); in use ${x.xstate_bv} (${(x.in_use as string[]).join(', ')})`);
    }
    const vmas = p.vmas as { [k: string]: Json }[];
    const total = vmas.reduce((n, v) => n + (v.pages as number), 0);
    lines.push(`  vmas: ${vmas.length}, ${total} pages saved (${(total * 4096 / 1048576).toFixed(1)} MiB)`);
    for (const v of vmas) {
      lines.push(`    ${String(v.start).padStart(14)}-${String(v.end).padEnd(14)} ${v.prot} ${String(v.kind).padEnd(12)} ${String(v.pages).padStart(8)} pages  ${v.path}${v.vm_flags ? `  [${v.vm_flags}]` : ''}`);
    }
    const sa = p.sigactions as { [k: string]: Json }[];
    lines.push(`  sigactions: ${sa.length}`);
    for (const a of sa) lines.push(`    ${kv(a)}`);
    const fds = p.fds as { [k: string]: Json }[];
    lines.push(`  fds: ${fds.length}`);
    for (const f of fds) lines.push(`    ${kv(f)}`);
    for (const pp of p.pipes as { [k: string]: Json }[]) lines.push(`    pipe ${kv(pp)}`);
    for (const s of (p.sockets ?? []) as { [k: string]: Json }[]) lines.push(`    socket ${kv(s)}`);
  }
  return lines.join('\n') + '\n';
}
