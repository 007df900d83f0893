/**
 * What the inspection commands (show --tree/--files/--maps/--env/--cmdline,
 * mem, diff) work on: every process of an image as plain data, read straight
 * from the records. Unlike restore's loadImage this accepts any number of
 * processes and threads: inspecting an image never needs to restore it.
 */
import { CkptError } from '../errors.js';
import { PAGE_CHUNKS } from '../kinds/page-chunks.js';
import { readImage, openImageDir, childOf, childrenOf, maybeChildOf, type Image, type ImageRecord } from '../image/index.js';
import { registry } from '../kinds/index.js';
import { PROCESS } from '../kinds/process.js';
import { TASK, type TaskFields } from '../kinds/task.js';
import { THREAD } from '../kinds/thread.js';
import { MM, EXE, type MmFields } from '../kinds/mm.js';
import { VMA, VMA_PATH, VmaKind, type VmaFields } from '../kinds/vma.js';
import { PAGE_RUNS, decodeRuns, type Run } from '../kinds/pages.js';
import { FS } from '../kinds/fs.js';
import { FD, FdKind, type FdFields } from '../kinds/files.js';
import { PIPE, type PipeFields } from '../kinds/pipes.js';
import { CTTY, PTY, type PtyFields } from '../kinds/tty.js';
import { FIFO_DATA } from '../kinds/fifo.js';
import { TERMIOS2_SIZE } from '../sys/tty.js';

export interface InspectVma {
  start: number;
  end: number;
  fields: VmaFields;
  path: string;
  kind: string;
  prot: string;
  runs: Run[];
}
export interface InspectFd {
  fields: FdFields; path: string; kind: string;
  /** A pty master's saved state; the FIFO bytes saved on this fd; this slave is the controlling terminal. */
  pty?: PtyFields & { rows: number; cols: number }; fifoBytes?: number; ctty?: boolean;
}
export interface InspectProcess {
  pid: number;
  task: TaskFields;
  threads: number;
  /** Absent for a zombie. */
  mm?: MmFields;
  exe: string;
  cwd: string;
  vmas: InspectVma[];
  fds: InspectFd[];
  pipes: PipeFields[];
}
export interface InspectImage {
  dir: string;
  image: Image;
  pagesPath: string;
  processes: InspectProcess[];
  /** The PAGE_CHUNKS record of a compressed image. */
  pageChunks?: { codec: number; count: number; data: Buffer };
}

export const protText = (p: number) => `${p & 1 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 4 ? 'x' : '-'}`;
export const hex = (n: number) => `0x${n.toString(16)}`;

function vmaOf(r: ReturnType<typeof childrenOf<typeof VMA>>[number]): InspectVma {
  const v = r.fields;
  const runsRec = maybeChildOf(r, PAGE_RUNS);
  return {
    start: v.start, end: v.end, fields: v, path: maybeChildOf(r, VMA_PATH)?.name ?? '',
    kind: VmaKind[v.kind] ?? String(v.kind), prot: protText(v.prot),
    runs: runsRec ? decodeRuns(runsRec.data ?? Buffer.alloc(0), v) : [],
  };
}

function fdOf(proc: ImageRecord, fields: FdFields, path: string): InspectFd {
  const f: InspectFd = { fields, path, kind: FdKind[fields.kind] ?? String(fields.kind) };
  const pty = childrenOf(proc, PTY).find((r) => r.fields.fd === fields.fd);
  const win = pty?.data?.subarray(TERMIOS2_SIZE);
  if (pty) f.pty = { ...pty.fields, rows: win && win.length >= 4 ? win.readUInt16LE(0) : 0, cols: win && win.length >= 4 ? win.readUInt16LE(2) : 0 };
  const fifo = childrenOf(proc, FIFO_DATA).find((r) => r.fields.fd === fields.fd);
  if (fifo) f.fifoBytes = fifo.fields.bytes;
  if (childrenOf(proc, CTTY).some((r) => r.fields.fd === fields.fd)) f.ctty = true;
  return f;
}

/** Open DIR (NO_IMAGE if it holds none) and read every process's model. */
export function openInspect(dir: string): InspectImage {
  const paths = openImageDir(dir);
  const image = readImage(paths.image, registry);
  const processes = childrenOf(image.records, PROCESS).map((proc): InspectProcess => {
    const task = childOf(proc, TASK).fields;
    // A zombie has no mm (nor vmas, fds or threads).
    const mm = maybeChildOf(proc, MM);
    const vmas = childrenOf(proc, VMA).map(vmaOf).sort((a, b) => a.start - b.start);
    return {
      pid: task.pid, task, threads: childrenOf(proc, THREAD).length, mm: mm?.fields,
      exe: mm ? maybeChildOf(mm, EXE)?.name ?? '' : '', cwd: maybeChildOf(proc, FS)?.name ?? '',
      vmas,
      fds: childrenOf(proc, FD).map((r) => fdOf(proc, r.fields, r.name ?? '')).sort((a, b) => a.fields.fd - b.fields.fd),
      pipes: childrenOf(proc, PIPE).map((r) => r.fields),
    };
  });
  if (processes.length === 0) throw new CkptError('BAD_IMAGE', `bad image ${paths.image}: it holds no process`);
  const chunks = maybeChildOf(image.records, PAGE_CHUNKS);
  const pageChunks = chunks && { codec: chunks.fields.codec, count: chunks.fields.count, data: chunks.data ?? Buffer.alloc(0) };
  return { dir, image, pagesPath: paths.pages, processes, pageChunks };
}

/** The process P of the image; USAGE naming the pids it holds otherwise. */
export function processOf(img: InspectImage, pid: number, cmd: string): InspectProcess {
  const p = img.processes.find((x) => x.pid === pid);
  if (!p) {
    throw new CkptError('USAGE', `${cmd}: no process ${pid} in the image at ${img.dir} (it holds pid${img.processes.length > 1 ? 's' : ''} ${img.processes.map((x) => x.pid).join(', ')})`, { pid });
  }
  return p;
}

/** The VMA holding addr, if any (vmas sorted by start). */
export function vmaAt(p: InspectProcess, addr: number): InspectVma | undefined {
  let lo = 0, hi = p.vmas.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = p.vmas[mid];
    if (addr < v.start) hi = mid - 1;
    else if (addr >= v.end) lo = mid + 1;
    else return v;
  }
  return undefined;
}

export function vmaLabel(v: InspectVma): string {
  return `${hex(v.start)}-${hex(v.end)} ${v.prot} ${v.kind}${v.path ? ' ' + v.path : ''}`;
}
