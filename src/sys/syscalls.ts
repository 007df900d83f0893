/** Typed wrappers of the syscalls ckpt makes in its own process. */
import { allocNative, syscall, sysError, trySyscall, type NativeMemory } from './libc.js';
import { NR } from './nr.js';
import { IOVEC_SIZE, encodeIovec } from './structs.js';
import { WALL } from './constants.js';
import { E } from './errno.js';

let scratch: NativeMemory | undefined;
/** A small native block for out-parameters; valid until the next wrapper call. */
function out(): NativeMemory {
  scratch ??= allocNative(64 * 1024);
  return scratch;
}

export function getpid(): number { return trySyscall(NR.getpid); }
export function gettid(): number { return trySyscall(NR.gettid); }

export function kill(pid: number, sig: number): void {
  syscall(NR.kill, [pid, sig], { pid, what: `kill(${sig})` });
}
export function tryKill(pid: number, sig: number): number { return trySyscall(NR.kill, pid, sig); }

export interface WaitResult { pid: number; status: number }
/** wait4 with __WALL; retries on EINTR. Returns pid 0 with WNOHANG and nothing ready. */
export function wait4(pid: number, options = 0): WaitResult {
  const mem = out();
  for (;;) {
    const r = trySyscall(NR.wait4, pid, mem.addr, options | WALL, 0);
    if (r === -E.EINTR) continue;
    if (r < 0) syscall(NR.wait4, [pid, mem.addr, options | WALL, 0], { pid, what: 'wait4' });
    return { pid: r, status: mem.buf.readInt32LE(0) };
  }
}

export const W = {
  ifExited: (s: number) => (s & 0x7f) === 0,
  exitStatus: (s: number) => (s >> 8) & 0xff,
  ifSignaled: (s: number) => (s & 0x7f) !== 0 && (s & 0x7f) !== 0x7f,
  termSig: (s: number) => s & 0x7f,
  ifStopped: (s: number) => (s & 0xff) === 0x7f,
  stopSig: (s: number) => (s >> 8) & 0xff,
  event: (s: number) => (s >> 16) & 0xffff,
};

/** ptrace(2) as the raw syscall: no glibc PEEK quirks. */
export function ptrace(req: number, pid: number, addr: number | bigint = 0, data: number | bigint = 0, what?: string): number {
  return syscall(NR.ptrace, [req, pid, addr, data], { pid, what: what ?? `ptrace(${req})` });
}
export function tryPtrace(req: number, pid: number, addr: number | bigint = 0, data: number | bigint = 0): number {
  return trySyscall(NR.ptrace, req, pid, addr, data);
}

/** The native out-parameter block, for ptrace requests that fill memory. */
export function outBuffer(): NativeMemory { return out(); }

/**
 * Copy memory between another process and a native buffer, with many iovecs.
 * `remote` is a list of [address, length]; the local side is one contiguous
 * range of `local`. Returns bytes moved (may be short at an unmapped page).
 */
export function processVmIo(
  write: boolean, pid: number, local: NativeMemory, localOff: number,
  remote: ReadonlyArray<readonly [number, number]>,
): number {
  const iovMem = out();
  const maxIov = Math.min(1024, Math.floor((iovMem.size - IOVEC_SIZE) / IOVEC_SIZE));
  let moved = 0;
  for (let i = 0; i < remote.length; i += maxIov) {
    const batch = remote.slice(i, i + maxIov);
    let total = 0;
    for (const [, len] of batch) total += len;
    const liov = iovMem.buf.subarray(0, IOVEC_SIZE);
    encodeIovec(liov, 0, local.addr + BigInt(localOff + moved), total);
    const riov = iovMem.buf.subarray(IOVEC_SIZE);
    batch.forEach(([addr, len], j) => encodeIovec(riov, j, addr, len));
    const nr = write ? NR.process_vm_writev : NR.process_vm_readv;
    const r = syscall(nr, [pid, iovMem.addr, 1, iovMem.addr + BigInt(IOVEC_SIZE), batch.length, 0],
      { pid, what: write ? 'process_vm_writev' : 'process_vm_readv' });
    moved += r;
    if (r !== total) break;
  }
  return moved;
}

export function pidfdOpen(pid: number): number {
  return syscall(NR.pidfd_open, [pid, 0], { pid, what: 'pidfd_open' });
}
export function pidfdGetfd(pidfd: number, fd: number, pid?: number): number {
  return syscall(NR.pidfd_getfd, [pidfd, fd, 0], { pid, what: 'pidfd_getfd', resource: `fd ${fd}` });
}

export function memfdCreate(name: string, flags: number): number {
  const mem = out();
  mem.buf.write(name + '\0', 0, 'utf8');
  return syscall(NR.memfd_create, [mem.addr, flags], { what: 'memfd_create' });
}

/**
 * Start writing a file's dirty pages to its disk, without waiting
 * (sync_file_range SYNC_FILE_RANGE_WRITE): an fsync later finds them on their
 * way or written. Not on tmpfs or ramfs, which have no disk: there the call
 * walks every page of the file (a 1 GiB pages.img took 0.2 s), and with swap
 * would push them out to it.
 */
export function startWriteback(fd: number): void {
  const SYNC_FILE_RANGE_WRITE = 2;
  if (onMemoryFs(fd) !== false) return;
  trySyscall(NR.sync_file_range, fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/** Whether fd's file is on tmpfs or ramfs (no disk behind it); undefined if fstatfs fails. */
export function onMemoryFs(fd: number): boolean | undefined {
  const TMPFS_MAGIC = 0x01021994, RAMFS_MAGIC = 0x858458f6;
  const m = out();
  if (trySyscall(NR.fstatfs, fd, m.addr) !== 0) return undefined;
  const type = Number(m.buf.readBigUInt64LE(0));
  return type === TMPFS_MAGIC || type === RAMFS_MAGIC;
}

/** Free the blocks of [offset, offset + len) of a file, its size unchanged; false where the filesystem cannot. */
export function punchHole(fd: number, offset: number, len: number): boolean {
  const FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2;
  return trySyscall(NR.fallocate, fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, offset, len) === 0;
}

export function lseek(fd: number, offset: number, whence: number): number {
  return syscall(NR.lseek, [fd, offset, whence], { what: 'lseek', resource: `fd ${fd}` });
}

export function close(fd: number): void { trySyscall(NR.close, fd); }

export function fcntl(fd: number, cmd: number, arg = 0): number {
  return syscall(NR.fcntl, [fd, cmd, arg], { what: 'fcntl', resource: `fd ${fd}` });
}

/** pipe2(2): returns [read end, write end]. */
export function pipe2(flags: number): [number, number] {
  const mem = out();
  syscall(NR.pipe2, [mem.addr, flags], { what: 'pipe2' });
  return [mem.buf.readInt32LE(0), mem.buf.readInt32LE(4)];
}

/** poll(2) of one fd without waiting: its revents (POLLHUP, POLLERR...). */
export function pollNow(fd: number, events: number): number {
  const mem = out();
  mem.buf.writeInt32LE(fd, 0);
  mem.buf.writeInt16LE(events, 4);
  mem.buf.writeInt16LE(0, 6);
  syscall(NR.poll, [mem.addr, 1, 0], { what: `poll(fd ${fd})` });
  return mem.buf.readUInt16LE(6);
}

/** tee(2): copy up to len bytes from one pipe to another without consuming them. */
export function tryTee(fdIn: number, fdOut: number, len: number, flags: number): number {
  return trySyscall(NR.tee, fdIn, fdOut, len, flags);
}

/** sched_getaffinity(2) of another task: the CPU mask bytes. */
export function schedGetaffinity(pid: number): Buffer {
  const mem = out();
  const n = syscall(NR.sched_getaffinity, [pid, 128, mem.addr], { pid, what: 'sched_getaffinity' });
  return Buffer.from(mem.buf.subarray(0, n));
}

/** sched_setaffinity(2): task `tid` (0: the calling thread) may run only on the CPUs in `mask`. */
export function schedSetaffinity(tid: number, mask: Buffer): void {
  const mem = out();
  mask.copy(mem.buf, 0);
  syscall(NR.sched_setaffinity, [tid, mask.length, mem.addr], { pid: tid, what: 'sched_setaffinity' });
}

/** getcpu(2): the CPU the calling thread runs on now. */
export function getcpu(): number {
  const mem = out();
  syscall(NR.getcpu, [mem.addr, 0, 0], { what: 'getcpu' });
  return mem.buf.readUInt32LE(0);
}

/** PTRACE_PEEKSIGINFO: queued siginfos (128 bytes each), private or shared queue. */
export function peekSiginfo(pid: number, shared: boolean): Buffer[] {
  const mem = out();
  const out_: Buffer[] = [];
  const ARGS = 0, BUF = 64, MAX = 32;
  for (let off = 0; ; off += MAX) {
    mem.buf.writeBigUInt64LE(BigInt(off), ARGS);
    mem.buf.writeUInt32LE(shared ? 1 : 0, ARGS + 8);
    mem.buf.writeInt32LE(MAX, ARGS + 12);
    const n = syscall(NR.ptrace, [0x4209, pid, mem.addr + BigInt(ARGS), mem.addr + BigInt(BUF)], { pid, what: 'ptrace(PTRACE_PEEKSIGINFO)' });
    for (let i = 0; i < n; i++) out_.push(Buffer.from(mem.buf.subarray(BUF + i * 128, BUF + (i + 1) * 128)));
    if (n < MAX) return out_;
  }
}

/** PTRACE_SECCOMP_GET_FILTER: the BPF program of filter `index`, or undefined past the last. */
export function seccompGetFilter(pid: number, index: number): Buffer | undefined {
  const count = trySyscall(NR.ptrace, 0x420c, pid, index, 0);
  if (count === -E.ENOENT) return undefined;
  if (count < 0) syscall(NR.ptrace, [0x420c, pid, index, 0], { pid, what: 'ptrace(PTRACE_SECCOMP_GET_FILTER)' });
  const mem = out();
  syscall(NR.ptrace, [0x420c, pid, index, mem.addr], { pid, what: 'ptrace(PTRACE_SECCOMP_GET_FILTER)' });
  return Buffer.from(mem.buf.subarray(0, count * 8));
}

const scratchBuf = () => out();

export function eventfd2(count: number, flags: number): number {
  return syscall(NR.eventfd2, [count, flags], { what: 'eventfd2' });
}

export function signalfd4(mask: bigint, flags: number): number {
  const mem = scratchBuf();
  mem.buf.writeBigUInt64LE(mask, 0);
  return syscall(NR.signalfd4, [-1, mem.addr, 8, flags], { what: 'signalfd4' });
}

export function timerfdCreate(clockid: number, flags: number): number {
  return syscall(NR.timerfd_create, [clockid, flags], { what: 'timerfd_create' });
}

/** timerfd_settime with a relative value: [interval sec, nsec, value sec, nsec]. */
export function timerfdSettime(fd: number, spec: [bigint, bigint, bigint, bigint]): void {
  const mem = scratchBuf();
  spec.forEach((v, i) => mem.buf.writeBigUInt64LE(v, i * 8));
  syscall(NR.timerfd_settime, [fd, 0, mem.addr, 0], { what: 'timerfd_settime' });
}

/** TFD_IOC_SET_TICKS: the expirations not yet read (CONFIG_CHECKPOINT_RESTORE). */
export function timerfdSetTicks(fd: number, ticks: bigint): void {
  const mem = scratchBuf();
  mem.buf.writeBigUInt64LE(ticks, 0);
  syscall(NR.ioctl, [fd, 0x40085400, mem.addr], { what: 'ioctl(TFD_IOC_SET_TICKS)' });
}

export function epollCreate1(flags: number): number {
  return syscall(NR.epoll_create1, [flags], { what: 'epoll_create1' });
}

/** kcmp(KCMP_FILE): do two fds of two processes share one open file description? */
export function sameFile(pid1: number, fd1: number, pid2: number, fd2: number): boolean {
  return trySyscall(NR.kcmp, pid1, pid2, 0 /* KCMP_FILE */, fd1, fd2) === 0;
}

export function inotifyInit1(flags: number): number {
  return syscall(NR.inotify_init1, [flags], { what: 'inotify_init1' });
}

export function inotifyAddWatch(fd: number, path: string, mask: number): number {
  const mem = scratchBuf();
  mem.buf.write(path + '\0', 0, 'utf8');
  return syscall(NR.inotify_add_watch, [fd, mem.addr, mask >>> 0], { what: 'inotify_add_watch', resource: path });
}

/** open_by_handle_at(2) with O_PATH: the file a struct file_handle names, on the filesystem of mountFd. */
export function openByHandle(mountFd: number, type: number, handle: Buffer): number {
  const mem = scratchBuf();
  mem.buf.writeUInt32LE(handle.length, 0);
  mem.buf.writeInt32LE(type, 4);
  handle.copy(mem.buf, 8);
  return syscall(NR.open_by_handle_at, [mountFd, mem.addr, 0o10000000 /* O_PATH */ | 0o2000000], { what: 'open_by_handle_at' });
}

/** flock(2) without blocking. */
export function flock(fd: number, op: number): void {
  syscall(NR.flock, [fd, op | 4 /* LOCK_NB */], { what: 'flock', resource: `fd ${fd}` });
}

/** struct flock for F_SETLK / F_OFD_SETLK: 32 bytes on x86_64. */
export function encodeFlock(write: boolean, start: number, len: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeInt16LE(write ? 1 : 0, 0); // F_WRLCK : F_RDLCK
  b.writeInt16LE(0, 2);             // SEEK_SET
  b.writeBigInt64LE(BigInt(start), 8);
  b.writeBigInt64LE(BigInt(len), 16);
  return b;
}

/** An OFD lock (owned by the open file description), without blocking. */
export function ofdSetlk(fd: number, write: boolean, start: number, len: number): void {
  const mem = scratchBuf();
  encodeFlock(write, start, len).copy(mem.buf, 0);
  syscall(NR.fcntl, [fd, 37 /* F_OFD_SETLK */, mem.addr], { what: 'fcntl(F_OFD_SETLK)', resource: `fd ${fd}` });
}

/** ioctl(pagemap_fd, PAGEMAP_SCAN): _IOWR('f', 16, struct pm_scan_arg). */
const PAGEMAP_SCAN = 0xc0606610;
const PM_SCAN_ARG_SIZE = 96;
const PAGE_REGION_SIZE = 24;
const SCAN_REGIONS = 4096;
export const PAGE_IS = { WRITTEN: 1 << 1, FILE: 1 << 2, PRESENT: 1 << 3, SWAPPED: 1 << 4 } as const;
let scanMem: NativeMemory | undefined;
let scanMissing = false;

/**
 * The pages of [start, end) whose categories match, as [address, bytes]
 * ranges, from the kernel's own page-table walk (PAGEMAP_SCAN, Linux 6.7):
 * a page matches when it has every bit of `all` (after flipping those in
 * `inverted`) and one of `any`. Undefined where the kernel lacks the ioctl;
 * the caller then reads /proc/PID/pagemap itself.
 */
export function pagemapScan(fd: number, start: number, end: number, m: { inverted: number; all: number; any: number }): [number, number][] | undefined {
  if (scanMissing) return undefined;
  scanMem ??= allocNative(PM_SCAN_ARG_SIZE + SCAN_REGIONS * PAGE_REGION_SIZE);
  const arg = scanMem.buf;
  const vec = scanMem.addr + BigInt(PM_SCAN_ARG_SIZE);
  const out: [number, number][] = [];
  let from = start;
  while (from < end) {
    arg.fill(0, 0, PM_SCAN_ARG_SIZE);
    arg.writeBigUInt64LE(BigInt(PM_SCAN_ARG_SIZE), 0);
    arg.writeBigUInt64LE(BigInt(from), 16);
    arg.writeBigUInt64LE(BigInt(end), 24);
    arg.writeBigUInt64LE(vec, 40);
    arg.writeBigUInt64LE(BigInt(SCAN_REGIONS), 48);
    arg.writeBigUInt64LE(BigInt(m.inverted), 64);
    arg.writeBigUInt64LE(BigInt(m.all), 72);
    arg.writeBigUInt64LE(BigInt(m.any), 80);
    const n = trySyscall(NR.ioctl, fd, PAGEMAP_SCAN, scanMem.addr);
    if (n < 0) {
      if (n === -E.ENOTTY || n === -E.EINVAL) { scanMissing = true; return undefined; }
      throw sysError(-n, 'ioctl(PAGEMAP_SCAN)', { resource: `pagemap fd ${fd}` });
    }
    for (let i = 0; i < n; i++) {
      const at = PM_SCAN_ARG_SIZE + i * PAGE_REGION_SIZE;
      const s = Number(arg.readBigUInt64LE(at));
      const e = Number(arg.readBigUInt64LE(at + 8));
      const last = out.at(-1);
      if (last && last[0] + last[1] === s) last[1] += e - s;
      else out.push([s, e - s]);
    }
    const walkEnd = Number(arg.readBigUInt64LE(32));
    if (walkEnd <= from) break;
    from = walkEnd;
  }
  return out;
}
