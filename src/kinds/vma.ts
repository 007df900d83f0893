/**
 * VMAs: every mapping with its address, size, protection, flags and backing.
 * Which pages of a VMA are saved is the pages kind's business (pages.ts).
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import type { SmapsVma } from '../proc/index.js';
import { MAP, PROT } from '../sys/constants.js';
import { NR } from '../sys/nr.js';
import { T } from './ids.js';
import { shmOfVma } from './sysvipc.js';
import { callAll, throwIfFailed, type RestoreTarget, type TargetCall } from './target.js';

export enum VmaKind {
  ANON = 0,          // private anonymous: heap, stack, malloc arenas
  FILE_PRIVATE = 1,  // private file mapping (text, data, copied-on-write pages)
  FILE_SHARED = 2,   // shared file mapping: the file holds the data
  SHARED_ANON = 3,   // MAP_SHARED|MAP_ANONYMOUS
  VDSO = 4,
  VVAR = 5,
  VVAR_VCLOCK = 6,
  SYSV_SHM = 7,      // a SysV shared memory attach: `ino` is the shm id; its bytes are in the CONTAINER record
}

/** VmFlags of smaps kept in the image (a bit each). */
export const VM_FLAG_BITS: Record<string, number> = {
  gd: 1 << 0, // VM_GROWSDOWN
  dd: 1 << 1, // VM_DONTDUMP
  dc: 1 << 2, // VM_DONTCOPY (MADV_DONTFORK)
  wf: 1 << 3, // VM_WIPEONFORK
  hg: 1 << 4, // VM_HUGEPAGE
  nh: 1 << 5, // VM_NOHUGEPAGE
  lo: 1 << 6, // VM_LOCKED
  mg: 1 << 7, // VM_MERGEABLE
};
export const VM_GROWSDOWN = VM_FLAG_BITS.gd;

export const VMA = defineRecord({
  type: T.VMA, name: 'vma', content: Content.ARRAY,
  fields: {
    start: 'addr', end: 'addr', pgoff: 'addr', prot: 'u32', kind: 'u32', vm_flags: 'u32',
    dev_major: 'u32', dev_minor: 'u32', ino: 'addr', file_size: 'addr', file_mtime_ns: 'u64',
    pages_off: 'addr', nr_pages: 'addr', pages_crc: 'u32',
  },
});
export const VMA_PATH = defineRecord({ type: T.VMA_PATH, name: 'vma_path', content: Content.NAME, fields: {} });
export type VmaFields = FieldsOf<typeof VMA>;

const SPECIAL: Record<string, VmaKind> = { '[vdso]': VmaKind.VDSO, '[vvar]': VmaKind.VVAR, '[vvar_vclock]': VmaKind.VVAR_VCLOCK };

export function isSpecial(kind: number): boolean {
  return kind === VmaKind.VDSO || kind === VmaKind.VVAR || kind === VmaKind.VVAR_VCLOCK;
}

export interface VmaPlan {
  vma: SmapsVma;
  kind: VmaKind;
  vmFlags: number;
  fileSize: number;
  fileMtimeNs: bigint;
}

/** A mapped file's size and mtime, by its device and inode (`${major}:${minor}:${ino}`). */
export type MappedFiles = Map<string, { size: number; mtimeNs: bigint }>;

/**
 * Decide how a VMA is saved, or refuse it; undefined means skip ([vsyscall]).
 * `files`: the files stat'ed already for this process (a library maps one file
 * in four or five VMAs), filled in as it goes.
 */
export function planVma(pid: number, vma: SmapsVma, opts: { sysvShm?: boolean; files?: MappedFiles } = {}): VmaPlan | undefined {
  if (vma.path === '[vsyscall]') return undefined;
  const vmFlags = vma.vmFlags.reduce((acc, f) => acc | (VM_FLAG_BITS[f] ?? 0), 0);
  const plan = (kind: VmaKind, fileSize = 0, fileMtimeNs = 0n): VmaPlan => ({ vma, kind, vmFlags, fileSize, fileMtimeNs });
  const range = `0x${vma.start.toString(16)}-0x${vma.end.toString(16)}`;
  if (vma.path in SPECIAL) return plan(SPECIAL[vma.path]);
  if (vma.ino === 0 || vma.path === '' || vma.path.startsWith('[')) {
    if (vma.shared) return plan(VmaKind.SHARED_ANON);
    return plan(VmaKind.ANON);
  }
  if (vma.shared && vma.path === '/dev/zero' && vma.deleted) return plan(VmaKind.SHARED_ANON);
  if (vma.path.startsWith('/SYSV')) {
    // A container's segments are saved with its ipc namespace; the host's are not ckpt's to save.
    if (opts.sysvShm && shmOfVma(vma)) return plan(VmaKind.SYSV_SHM);
    throw new CkptError('UNSUPPORTED', `not supported yet: pid ${pid} maps SysV shared memory of the host's ipc namespace at ${range}`, { pid, resource: vma.path });
  }
  // A shared memfd mapping is shared memory with a name: one object again at restore (restore/shmem.ts).
  if (vma.path.startsWith('/memfd:') && vma.shared) return plan(VmaKind.SHARED_ANON);
  if (vma.path.startsWith('/memfd:')) {
    throw new CkptError('UNSUPPORTED', `not supported yet: pid ${pid} maps memfd ${vma.path} privately at ${range}`, { pid, resource: vma.path });
  }
  if (vma.deleted) {
    throw new CkptError('UNSUPPORTED', `not supported yet: pid ${pid} maps deleted file ${vma.path} at ${range}`, { pid, resource: vma.path });
  }
  const key = `${vma.major}:${vma.minor}:${vma.ino}`;
  let file = opts.files?.get(key);
  if (!file) {
    try {
      const st = fs.statSync(`/proc/${pid}/map_files/${vma.start.toString(16)}-${vma.end.toString(16)}`, { bigint: true });
      file = { size: Number(st.size), mtimeNs: st.mtimeNs };
    } catch (e) {
      throw new CkptError('UNSUPPORTED', `pid ${pid}: cannot stat the file mapped at ${range} (${vma.path}): ${(e as Error).message}`, { pid, resource: vma.path });
    }
    opts.files?.set(key, file);
  }
  return plan(vma.shared ? VmaKind.FILE_SHARED : VmaKind.FILE_PRIVATE, file.size, file.mtimeNs);
}

export function vmaFields(p: VmaPlan, pagesOff: number, nrPages: number, crc: number): VmaFields {
  const v = p.vma;
  return {
    start: v.start, end: v.end, pgoff: v.pgoff, prot: v.prot, kind: p.kind, vm_flags: p.vmFlags,
    dev_major: v.major, dev_minor: v.minor, ino: v.ino, file_size: p.fileSize, file_mtime_ns: p.fileMtimeNs,
    pages_off: pagesOff, nr_pages: nrPages, pages_crc: crc,
  };
}

export function isFileBacked(kind: number): boolean {
  return kind === VmaKind.FILE_PRIVATE || kind === VmaKind.FILE_SHARED;
}

/**
 * Before anything is created: every mapped file is still the one that was
 * dumped. `seen`: the files stat'ed already, by path (filled in as it goes).
 */
export function checkMappedFile(v: VmaFields, path: string, seen?: Map<string, fs.BigIntStats>): void {
  let st = seen?.get(path);
  if (!st) {
    try {
      st = fs.statSync(path, { bigint: true });
    } catch (e) {
      throw new CkptError('FILE_CHANGED', `mapped file ${path} is gone since the dump (${(e as NodeJS.ErrnoException).code})`, { path });
    }
    seen?.set(path, st);
  }
  if (Number(st.size) !== v.file_size || st.mtimeNs !== v.file_mtime_ns) {
    throw new CkptError('FILE_CHANGED', `mapped file ${path} changed since the dump (size ${v.file_size} → ${st.size})`, { path });
  }
}

export interface VmaToMap { fields: VmaFields; path: string }

/**
 * mmap every saved VMA at its address (MAP_FIXED). A VMA that will receive
 * pages is mapped writable first; protectVmas() puts the saved protection back.
 */
export interface MapHooks {
  /** A SHARED_ANON VMA's object, as an fd in the target (one memfd for the tree). */
  sharedFd?: (v: VmaToMap) => number;
  /** Attach a SYSV_SHM VMA at its address (kinds/sysvipc.ts). */
  attachShm?: (v: VmaToMap) => void;
}

export function mapVmas(t: RestoreTarget, vmas: VmaToMap[], hooks: MapHooks = {}): void {
  const { sharedFd } = hooks;
  const maps = vmas.filter((m) => !isSpecial(m.fields.kind));
  // The files first, each opened once (one batch), then every mmap (another).
  const fileKey = ({ fields: v, path }: VmaToMap) => `${v.kind === VmaKind.FILE_SHARED && (v.prot & PROT.WRITE) ? 2 : 0}:${path}`;
  const files = [...new Set(maps.filter((m) => isFileBacked(m.fields.kind)).map(fileKey))];
  t.scratch.reset();
  const opens = files.map((key) => {
    const [mode, path] = [Number(key.slice(0, 1)), key.slice(2)];
    return { nr: NR.openat, args: [-100, t.scratch.put(Buffer.from(path + '\0')), mode | 0o2000000, 0], what: `openat(${path})` };
  });
  const opened = callAll(t, opens);
  const fileFds = new Map<string, number>();
  opened.forEach((r, i) => { if (r >= 0n) fileFds.set(files[i], Number(r)); });
  try {
    const failed = opened.findIndex((r) => r < 0n);
    if (failed >= 0) throwIfFailed(t, opens[failed], opened[failed]);
    const calls: TargetCall[] = [];
    /** Per VMA mapped here: its index among `calls` (its mmap), or -1 (attached by its hook). */
    const at: { v: VmaFields; path: string; call: number }[] = [];
    for (const m of maps) {
      const { fields: v, path } = m;
      if (v.kind === VmaKind.SYSV_SHM) {
        if (!hooks.attachShm) throw new CkptError('BAD_IMAGE', `bad image: SysV shared memory at 0x${v.start.toString(16)} outside a container`);
        hooks.attachShm(m);
        continue;
      }
      const writable = v.nr_pages > 0 ? PROT.WRITE : 0;
      let flags = MAP.FIXED;
      let fd = -1;
      let offset = 0;
      if (v.kind === VmaKind.ANON) flags |= MAP.PRIVATE | MAP.ANONYMOUS;
      else if (v.kind === VmaKind.SHARED_ANON && sharedFd) {
        // One object for every process that maps it: a memfd of the tree's (restore/shmem.ts).
        fd = sharedFd(m);
        offset = v.pgoff;
        flags |= MAP.SHARED;
      } else if (v.kind === VmaKind.SHARED_ANON) flags |= MAP.SHARED | MAP.ANONYMOUS;
      else {
        fd = fileFds.get(fileKey(m))!;
        offset = v.pgoff;
        flags |= v.kind === VmaKind.FILE_SHARED ? MAP.SHARED : MAP.PRIVATE;
      }
      if (v.vm_flags & VM_GROWSDOWN) flags |= MAP.GROWSDOWN;
      at.push({ v, path, call: calls.length });
      calls.push({ nr: NR.mmap, args: [v.start, v.end - v.start, v.prot | writable, flags, fd, offset], what: `mmap(0x${v.start.toString(16)}, ${path || 'anon'})` });
      if (v.kind === VmaKind.SHARED_ANON && fd >= 0) calls.push({ nr: NR.close, args: [fd], what: 'close' });
    }
    // The hooks may have used the scratch area: the batch's table goes after what is there.
    const got = callAll(t, calls);
    for (const { v, call } of at) {
      const r = got[call];
      throwIfFailed(t, calls[call], r);
      if (Number(r) !== v.start) {
        throw new CkptError('INTERNAL', `pid ${t.pid}: mmap at 0x${v.start.toString(16)} landed at 0x${r.toString(16)}`, { pid: t.pid });
      }
    }
  } finally {
    callAll(t, [...fileFds.values()].map((fd) => ({ nr: NR.close, args: [fd], what: 'close' })));
  }
}

export function protectVmas(t: RestoreTarget, vmas: VmaToMap[]): void {
  t.scratch.reset();
  callAll(t, vmas.filter(({ fields: v }) => !(isSpecial(v.kind) || v.nr_pages === 0 || (v.prot & PROT.WRITE)))
    .map(({ fields: v }) => ({ nr: NR.mprotect, args: [v.start, v.end - v.start, v.prot], what: `mprotect(0x${v.start.toString(16)})` })), { check: true });
}

/** madvise(2) advice (and mlock) that a VMA's saved VmFlags call for. */
const ADVICE: [flag: string, advice: number][] = [
  ['dc', 10 /* MADV_DONTFORK */], ['wf', 18 /* MADV_WIPEONFORK */], ['dd', 16 /* MADV_DONTDUMP */],
  ['hg', 14 /* MADV_HUGEPAGE */], ['nh', 15 /* MADV_NOHUGEPAGE */], ['mg', 12 /* MADV_MERGEABLE */],
];

export function adviseVmas(t: RestoreTarget, vmas: VmaToMap[]): void {
  const calls: TargetCall[] = [];
  for (const { fields: v } of vmas) {
    if (isSpecial(v.kind) || !v.vm_flags) continue;
    const len = v.end - v.start;
    for (const [flag, advice] of ADVICE) {
      if (v.vm_flags & VM_FLAG_BITS[flag]) calls.push({ nr: NR.madvise, args: [v.start, len, advice], what: `madvise(0x${v.start.toString(16)}, ${flag})` });
    }
    if (v.vm_flags & VM_FLAG_BITS.lo) calls.push({ nr: NR.mlock, args: [v.start, len], what: `mlock(0x${v.start.toString(16)})` });
  }
  t.scratch.reset();
  callAll(t, calls, { check: true });
}
