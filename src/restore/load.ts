/**
 * Read and check a whole image before anything is created: every record,
 * every address, every page run, every CRC. What comes out is a plain model
 * the restore steps can trust.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import {
  readImage, openImageDir, PagesReader, PAGES_HDR_SIZE, childOf, childrenOf, maybeChildOf, get, type ImageRecord, type Image, type TypedRecord,
} from '../image/index.js';
import { registry } from '../kinds/index.js';
import { PROCESS } from '../kinds/process.js';
import { TASK, type TaskFields } from '../kinds/task.js';
import { THREAD, type ThreadFields } from '../kinds/thread.js';
import { REGS, XSTATE } from '../kinds/regs.js';
import { MM, AUXV, EXE, type MmFields } from '../kinds/mm.js';
import { VMA, VMA_PATH, VmaKind, type VmaFields, isFileBacked } from '../kinds/vma.js';
import { PAGE_RUNS, COW_RUNS, decodeRuns, type Run } from '../kinds/pages.js';
import { PAGE_CHUNKS, decodeChunks, type ChunkTable } from '../kinds/page-chunks.js';
import { SIGACTION, type SigactionFields } from '../kinds/sigactions.js';
import { FS, FS_ROOT, type FsFields } from '../kinds/fs.js';
import { CREDS, decodeGroups, type CredsFields } from '../kinds/creds.js';
import { RLIMITS, decodeRlimits } from '../kinds/rlimits.js';
import { MISC, type MiscFields } from '../kinds/misc.js';
import { SIGNALS, SIGINFO, type SignalsFields, type Pending } from '../kinds/signals.js';
import { ITIMER, POSIX_TIMER, type ItimerFields, type PosixTimerFields } from '../kinds/timers.js';
import { SECCOMP, SECCOMP_FILTER } from '../kinds/seccomp.js';
import { FD, type SavedFd } from '../kinds/files.js';
import { attachFdExtras } from '../kinds/fd-records.js';
import { linkPtys } from '../kinds/tty.js';
import { PIPE, type SavedPipe } from '../kinds/pipes.js';
import { loadSockets, type SavedSocket } from '../kinds/sockets/index.js';
import type { UserRegs } from '../sys/structs.js';
import { PAGE_SIZE } from '../sys/constants.js';
import { verifyPagesAsync, type PendingVerdict } from './verify-pages.js';
import type { PageCheck } from './page-crc.js';

/** The top of x86_64 user space (4-level paging): nothing may be mapped above. */
export const TASK_SIZE = 0x7ffffffff000;

export interface VmaImage {
  fields: VmaFields;
  path: string;
  runs: Run[];
  /** Pages shared copy-on-write with the parent at dump time: inherited at restore. */
  cow: Run[];
}
export interface ThreadImage { fields: ThreadFields; regs: UserRegs; xstate: Buffer; xstateBv: bigint; xfeatures: bigint; pending: Pending[] }
export interface ProcessImage {
  pid: number;
  task: TaskFields;
  groups: number[];
  creds?: CredsFields;
  rlimits: { soft: bigint; hard: bigint }[];
  misc?: { fields: MiscFields; affinity: Buffer };
  signals?: SignalsFields;
  pending: Pending[];
  itimers: ItimerFields[];
  posixTimers: PosixTimerFields[];
  seccomp: { mode: number; filters: Buffer[] };
  /** Absent for a zombie (as are its fs, vmas, fds and threads). */
  mm?: MmFields;
  auxv: Buffer;
  exe: string;
  fs?: FsFields;
  cwd: string;
  root: string;
  vmas: VmaImage[];
  sigactions: SigactionFields[];
  fds: SavedFd[];
  pipes: SavedPipe[];
  sockets: SavedSocket[];
  threads: ThreadImage[];
}
export interface LoadedImage {
  dir: string;
  image: Image;
  processes: ProcessImage[];
  pagesPath: string;
  pagesBytes: number;
  /** The PAGE_CHUNKS record of a compressed image (checked against pages.img by openPages). */
  pageChunks?: { codec: number; count: number; data: Buffer; offset: number };
}

const bad = (rec: ImageRecord, what: string) =>
  new CkptError('BAD_IMAGE', `bad image: record at offset ${rec.offset} (${rec.schema ?? rec.type}): ${what}`, { offset: rec.offset });

function loadVmas(proc: ImageRecord): VmaImage[] {
  const vmas = childrenOf(proc, VMA).map((r) => {
    const v = r.fields;
    if (v.start % PAGE_SIZE || v.end % PAGE_SIZE || v.start >= v.end || v.end > TASK_SIZE) {
      throw bad(r, `VMA 0x${v.start.toString(16)}-0x${v.end.toString(16)} is not a page-aligned range of user space`);
    }
    if (v.nr_pages > (v.end - v.start) / PAGE_SIZE) throw bad(r, `VMA holds ${v.nr_pages} pages, more than its size`);
    const path = maybeChildOf(r, VMA_PATH)?.name ?? '';
    const runsRec = maybeChildOf(r, PAGE_RUNS);
    const runs = runsRec ? decodeRuns(runsRec.data ?? Buffer.alloc(0), v) : [];
    if (!runsRec && v.nr_pages) throw bad(r, 'VMA has pages but no page runs');
    if (isFileBacked(v.kind) && !path.startsWith('/')) throw bad(r, `file VMA with path '${path}'`);
    const cowRec = maybeChildOf(r, COW_RUNS);
    const cow = cowRec ? decodeRuns(cowRec.data ?? Buffer.alloc(0), v, -1) : [];
    if (cow.length && v.kind !== VmaKind.ANON && v.kind !== VmaKind.FILE_PRIVATE) throw bad(r, 'copy-on-write pages in a VMA that fork does not copy');
    return { fields: v, path, runs, cow };
  });
  vmas.sort((a, b) => a.fields.start - b.fields.start);
  for (let i = 1; i < vmas.length; i++) {
    if (vmas[i].fields.start < vmas[i - 1].fields.end) {
      throw new CkptError('BAD_IMAGE', `bad image: VMAs 0x${vmas[i - 1].fields.start.toString(16)} and 0x${vmas[i].fields.start.toString(16)} overlap`);
    }
  }
  return vmas;
}

function loadSiginfo(r: TypedRecord<typeof SIGINFO>): Pending {
  const info = r.data ?? Buffer.alloc(0);
  if (info.length !== 128 || r.fields.signo < 1 || r.fields.signo > 64) throw bad(r, 'bad siginfo');
  return { shared: r.fields.shared === 1, signo: r.fields.signo, info };
}

function loadThread(r: ImageRecord): ThreadImage {
  const x = childOf(r, XSTATE);
  const xstate = x.data ?? Buffer.alloc(0);
  if (xstate.length !== x.fields.size || xstate.length < 576 || xstate.length > 64 * 1024) {
    throw bad(x, `xsave area of ${xstate.length} bytes`);
  }
  return {
    fields: get(r, THREAD), regs: childOf(r, REGS).fields as UserRegs, xstate,
    xstateBv: x.fields.xstate_bv, xfeatures: x.fields.xfeatures,
    pending: childrenOf(r, SIGINFO).map(loadSiginfo),
  };
}

function loadFds(proc: ImageRecord): SavedFd[] {
  const fds = childrenOf(proc, FD).map((r) => ({ fields: r.fields, path: r.name ?? '' }));
  attachFdExtras(proc, fds);
  return fds;
}

/** A zombie holds only its task record (its exit status): everything else is gone. */
function loadZombie(proc: ImageRecord, task: TaskFields): ProcessImage {
  if (task.pid < 1 || task.pid > 4194304) throw bad(proc, `pid ${task.pid} is out of range`);
  return {
    pid: task.pid, task, groups: [], rlimits: [], pending: [], itimers: [], posixTimers: [], seccomp: { mode: 0, filters: [] },
    auxv: Buffer.alloc(0), exe: '', cwd: '/', root: '/',
    vmas: [], sigactions: [], fds: [], pipes: [], sockets: [], threads: [],
  };
}

function loadProcess(proc: ImageRecord): ProcessImage {
  const task = childOf(proc, TASK).fields;
  if (task.state === 'Z') return loadZombie(proc, task);
  const mm = childOf(proc, MM);
  const fsRec = childOf(proc, FS);
  const threads = childrenOf(proc, THREAD).map(loadThread);
  if (threads[0]?.fields.tid !== task.pid) throw bad(proc, `the first thread of pid ${task.pid} is not its main thread`);
  if (new Set(threads.map((t) => t.fields.tid)).size !== threads.length) throw bad(proc, 'two threads with one tid');
  if (threads.length > 65536) throw bad(proc, `${threads.length} threads`);
  if (task.pid < 1 || task.pid > 4194304) throw bad(proc, `pid ${task.pid} is out of range`);
  const creds = maybeChildOf(proc, CREDS);
  const misc = maybeChildOf(proc, MISC);
  const signals = maybeChildOf(proc, SIGNALS);
  const seccomp = maybeChildOf(proc, SECCOMP);
  const rlimits = maybeChildOf(proc, RLIMITS);
  return {
    pid: task.pid, task, groups: creds ? decodeGroups(creds.data ?? Buffer.alloc(0)) : [],
    creds: creds?.fields,
    rlimits: rlimits ? decodeRlimits(rlimits.data ?? Buffer.alloc(0)) : [],
    misc: misc ? { fields: misc.fields, affinity: misc.data ?? Buffer.alloc(0) } : undefined,
    signals: signals?.fields,
    pending: signals ? childrenOf(signals, SIGINFO).map(loadSiginfo) : [],
    itimers: childrenOf(proc, ITIMER).map((r) => {
      if (r.fields.which > 2) throw bad(r, `itimer ${r.fields.which}`);
      return r.fields;
    }),
    posixTimers: childrenOf(proc, POSIX_TIMER).map((r) => r.fields),
    seccomp: {
      mode: seccomp?.fields.mode ?? 0,
      filters: seccomp ? childrenOf(seccomp, SECCOMP_FILTER).map((r) => {
        const d = r.data ?? Buffer.alloc(0);
        if (d.length % 8 || d.length === 0 || d.length > 4096 * 8) throw bad(r, `seccomp filter of ${d.length} bytes`);
        return d;
      }) : [],
    },
    mm: mm.fields, auxv: childOf(mm, AUXV).data ?? Buffer.alloc(0), exe: childOf(mm, EXE).name ?? '',
    fs: fsRec.fields, cwd: fsRec.name ?? '/', root: maybeChildOf(proc, FS_ROOT)?.name ?? '/',
    vmas: loadVmas(proc),
    sigactions: childrenOf(proc, SIGACTION).map((r) => {
      if (r.fields.signo < 1 || r.fields.signo > 64) throw bad(r, `signal ${r.fields.signo}`);
      return r.fields;
    }),
    fds: loadFds(proc),
    pipes: childrenOf(proc, PIPE).map((r) => {
      const data = r.data ?? Buffer.alloc(0);
      if (data.length !== r.fields.bytes || data.length > r.fields.size || r.fields.size > 1 << 30) {
        throw bad(r, `pipe of ${r.fields.size} bytes holding ${data.length}`);
      }
      return { fields: r.fields, data };
    }),
    sockets: loadSockets(proc),
    threads,
  };
}

export function loadImage(dir: string): LoadedImage {
  const paths = openImageDir(dir);
  const image = readImage(paths.image, registry);
  const processes = childrenOf(image.records, PROCESS).map(loadProcess);
  // A pty slave whose master another process holds (a terminal multiplexer's session).
  linkPtys(processes.map((p) => p.fds));
  if (processes.length === 0) throw new CkptError('BAD_IMAGE', `bad image ${paths.image}: it holds no process`);
  let pagesBytes = 0;
  try { pagesBytes = fs.statSync(paths.pages).size; } catch { /* checked below */ }
  const chunkRecs = childrenOf(image.records, PAGE_CHUNKS);
  if (chunkRecs.length > 1) throw bad(chunkRecs[1], 'a second page_chunks record');
  const pc = chunkRecs[0];
  const pageChunks = pc && { codec: pc.fields.codec, count: pc.fields.count, data: pc.data ?? Buffer.alloc(0), offset: pc.offset };
  return { dir, image, processes, pagesPath: paths.pages, pagesBytes, pageChunks };
}

/**
 * Check that every VMA's page data lies inside pages.img and start checking
 * its CRC (in parallel for large images): call wait() before the process runs.
 */
export function openPages(img: LoadedImage): { reader: PagesReader; verdict: PendingVerdict; chunks?: ChunkTable } {
  const reader = PagesReader.open(img.pagesPath);
  try {
    // A compressed image: VMA offsets are in the uncompressed page stream; the CRCs are checked as chunks are decompressed.
    const chunks = img.pageChunks && decodeChunks(img.pageChunks.codec, img.pageChunks.count, img.pageChunks.data, { path: img.pagesPath, size: reader.size, start: PAGES_HDR_SIZE });
    const checks: PageCheck[] = [];
    for (const p of img.processes) {
      for (const v of p.vmas) {
        const len = v.fields.nr_pages * PAGE_SIZE;
        if (len === 0) continue;
        if (!chunks) reader.check(v.fields.pages_off, len);
        else if (!Number.isSafeInteger(v.fields.pages_off) || v.fields.pages_off % PAGE_SIZE || v.fields.pages_off < chunks.rawStart || v.fields.pages_off + len > chunks.rawEnd) {
          throw new CkptError('BAD_IMAGE', `bad image ${img.pagesPath}: page data [${v.fields.pages_off}, +${len}) of VMA 0x${v.fields.start.toString(16)} is not inside the ${chunks.rawEnd - chunks.rawStart} bytes its chunks hold`, { offset: v.fields.pages_off });
        }
        checks.push({ offset: v.fields.pages_off, len, crc: v.fields.pages_crc, what: `VMA 0x${v.fields.start.toString(16)} of pid ${p.pid}` });
      }
    }
    // Each byte of page data belongs to one VMA: shared ranges would multiply the work and the memory.
    const byOffset = [...checks].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < byOffset.length; i++) {
      if (byOffset[i].offset < byOffset[i - 1].offset + byOffset[i - 1].len) {
        throw new CkptError('BAD_IMAGE', `bad image ${img.pagesPath}: page data of ${byOffset[i].what} overlaps that of ${byOffset[i - 1].what}`, { offset: byOffset[i].offset });
      }
    }
    if (chunks) return { reader, verdict: { wait() {} }, chunks };
    return { reader, verdict: verifyPagesAsync(img.pagesPath, reader.fd, checks) };
  } catch (e) {
    reader.close();
    throw e;
  }
}
