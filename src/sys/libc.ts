/**
 * The FFI boundary: the only module that loads koffi. Everything above sys/
 * calls typed wrappers and never sees a raw -1.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type Koffi from 'koffi';
import { CkptError } from '../errors.js';
import { errnoName } from './errno.js';
import { NR, syscallName } from './nr.js';

type Arg = number | bigint;
type Fn = (...args: any[]) => any;

/**
 * koffi and libc's functions, loaded at the first call that needs them:
 * a command that makes no syscall (ckpt --version, show, help) never pays
 * for loading the addon (~3 ms here, loaded the direct way below).
 */
interface Native {
  koffi: typeof Koffi;
  libc: ReturnType<typeof Koffi.load>;
  syscall: (nr: number, a: Arg, b: Arg, c: Arg, d: Arg, e: Arg, f: Arg) => number | bigint;
  posixSpawn: Fn; spawnattrInit: Fn; spawnattrSetflags: Fn; spawnattrSetsigdefault: Fn;
  spawnattrSetsigmask: Fn; spawnattrDestroy: Fn; mmap: Fn; munmap: Fn;
}
let loaded: Native | undefined;

/**
 * koffi's addon for glibc on x86_64, straight from the package npm installs
 * it in: what koffi's own loader ends up loading here, without first reading
 * node's ELF headers to tell glibc from musl and resolving koffi's exports
 * (~5 ms of every CLI command). Taken only beside a koffi of the very same
 * version, the check koffi itself makes; anywhere else (musl, another
 * layout), koffi's own loader chooses.
 */
function loadKoffi(): typeof Koffi {
  const require = createRequire(import.meta.url);
  if (process.arch === 'x64') {
    try {
      const pkg = require.resolve('@koromix/koffi-linux-x64/package.json');
      const koffiPkg = JSON.parse(fs.readFileSync(path.join(path.dirname(pkg), '..', '..', 'koffi', 'package.json'), 'utf8')) as { version?: string };
      const addon = require('@koromix/koffi-linux-x64/linux_x64/koffi.node') as typeof Koffi & { version?: string };
      if (addon.version === koffiPkg.version) return addon;
    } catch { /* not this layout, or not glibc */ }
  }
  return require('koffi') as typeof Koffi;
}

function native(): Native {
  if (loaded) return loaded;
  const koffi = loadKoffi();
  const libc = koffi.load('libc.so.6');
  loaded = {
    koffi,
    libc,
    syscall: libc.func('intptr_t syscall(intptr_t nr, intptr_t a, intptr_t b, intptr_t c, intptr_t d, intptr_t e, intptr_t f)'),
    posixSpawn: libc.func('int posix_spawn(_Out_ int *pid, const char *path, void *file_actions, void *attrp, const char **argv, const char **envp)'),
    spawnattrInit: libc.func('int posix_spawnattr_init(void *attr)'),
    spawnattrSetflags: libc.func('int posix_spawnattr_setflags(void *attr, short flags)'),
    spawnattrSetsigdefault: libc.func('int posix_spawnattr_setsigdefault(void *attr, void *sigset)'),
    spawnattrSetsigmask: libc.func('int posix_spawnattr_setsigmask(void *attr, void *sigset)'),
    spawnattrDestroy: libc.func('int posix_spawnattr_destroy(void *attr)'),
    mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, intptr_t offset)'),
    munmap: libc.func('int munmap(void *addr, size_t length)'),
  };
  return loaded;
}

export interface SyscallContext {
  pid?: number;
  resource?: string;
  /** How the call is named in the error, e.g. 'ptrace(PTRACE_SEIZE)'. */
  what?: string;
}

export function sysError(errno: number, what: string, ctx: SyscallContext = {}): CkptError {
  const name = errnoName(errno);
  const where = [ctx.pid !== undefined ? `pid ${ctx.pid}` : '', ctx.resource ?? ''].filter(Boolean).join(', ');
  return new CkptError('SYSCALL', `${name}: ${what} failed${where ? `, ${where}` : ''}`, {
    errno, errnoName: name, syscall: what, pid: ctx.pid, resource: ctx.resource,
  });
}

/** A raw syscall; returns the result or -errno (no throw). */
export function trySyscall(nr: number, a: Arg = 0, b: Arg = 0, c: Arg = 0, d: Arg = 0, e: Arg = 0, f: Arg = 0): number {
  const lib = native();
  const r = lib.syscall(nr, a, b, c, d, e, f);
  const n = typeof r === 'bigint' ? Number(r) : r;
  if (n === -1) return -lib.koffi.errno();
  return n;
}

/**
 * End this process now with `code` (exit_group), without node's own teardown
 * (stopping helper threads, freeing the heap: ~10 ms after a dump's last line).
 * Returns, doing nothing, if koffi was never loaded: then there is little to skip.
 */
export function exitNow(code: number): void {
  loaded?.syscall(NR.exit_group, code, 0, 0, 0, 0, 0);
}

/** A syscall that throws CkptError('SYSCALL') naming the call, errno and pid. */
export function syscall(nr: number, args: Arg[], ctx: SyscallContext = {}): number {
  const r = trySyscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
  if (r < 0 && r > -4096) throw sysError(-r, ctx.what ?? syscallName(nr), ctx);
  return r;
}

/** A block of native memory with a stable address and a Buffer view of it. */
export interface NativeMemory {
  readonly addr: bigint;
  readonly buf: Buffer;
  readonly size: number;
}

const keepAlive: unknown[] = [];
export function allocNative(size: number): NativeMemory {
  const { koffi } = native();
  const ptr = koffi.alloc('uint8_t', size);
  keepAlive.push(ptr);
  const addr = koffi.address(ptr) as bigint;
  const buf = Buffer.from(koffi.view(ptr, size) as ArrayBuffer);
  buf.fill(0);
  return { addr, buf, size };
}

/** mmap(2) through libc: the koffi pointer and its address; a failure throws, naming `resource`. */
function mmapOrThrow(length: number, prot: number, flags: number, fd: number, offset: number, resource: string): { ptr: unknown; addr: bigint } {
  const { koffi, mmap: mmapFn } = native();
  const ptr = mmapFn(null, length, prot, flags, fd, offset);
  const addr = koffi.address(ptr) as bigint;
  if (addr === 0xffffffffffffffffn) throw sysError(koffi.errno(), 'mmap', { resource });
  return { ptr, addr };
}

const HUGE_PAGE = 2 * 1024 * 1024;
/** mapNative's mappings by the address it gave out: what to munmap. */
const mapped = new Map<bigint, { ptr: unknown; length: number }>();

/**
 * A large buffer of fresh anonymous memory (zero, as the kernel gives it),
 * aligned to 2 MiB and advised to be backed by transparent huge pages: the
 * page copy's 2 MiB buffer then costs one page fault instead of 512 (a 5 MiB
 * one took ~4 ms less of a small dump here). The mapping has 2 MiB of slack for the alignment,
 * never touched. Release with unmapNative.
 */
export function mapNative(size: number): NativeMemory {
  const PROT_RW = 3, MAP_PRIVATE_ANON_NORESERVE = 0x22 | 0x4000, MADV_HUGEPAGE = 14;
  const { koffi } = native();
  const span = Math.ceil(size / HUGE_PAGE) * HUGE_PAGE;
  const length = span + HUGE_PAGE;
  const { ptr, addr: raw } = mmapOrThrow(length, PROT_RW, MAP_PRIVATE_ANON_NORESERVE, -1, 0, `a ${size}-byte page buffer`);
  const addr = (raw + BigInt(HUGE_PAGE - 1)) & ~BigInt(HUGE_PAGE - 1);
  // A hint: without transparent huge pages the memory works all the same.
  trySyscall(28 /* madvise */, addr, span, MADV_HUGEPAGE);
  const buf = Buffer.from(koffi.view(ptr, length) as ArrayBuffer, Number(addr - raw), size);
  mapped.set(addr, { ptr, length });
  return { addr, buf, size };
}

/** Release memory taken with mapNative. */
export function unmapNative(mem: NativeMemory): void {
  const m = mapped.get(mem.addr);
  if (!m) return;
  mapped.delete(mem.addr);
  native().munmap(m.ptr, m.length);
}

/** Release native memory taken with allocNative (large page buffers). */
export function freeNative(mem: NativeMemory): void {
  const { koffi } = native();
  const i = keepAlive.findIndex((p) => koffi.address(p) === mem.addr);
  if (i >= 0) {
    koffi.free(keepAlive[i]);
    keepAlive.splice(i, 1);
  }
}

const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;

/**
 * posix_spawn with every signal reset to its default action and an empty
 * signal mask (node ignores SIGPIPE and others; the child must not inherit that).
 */
export function spawnClean(path: string, argv: string[], envp: string[]): number {
  const { posixSpawn, spawnattrInit, spawnattrSetflags, spawnattrSetsigdefault, spawnattrSetsigmask, spawnattrDestroy } = native();
  const attr = Buffer.alloc(512);
  const allSignals = Buffer.alloc(128, 0xff);
  const noSignals = Buffer.alloc(128, 0);
  spawnattrInit(attr);
  try {
    spawnattrSetflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    spawnattrSetsigdefault(attr, allSignals);
    spawnattrSetsigmask(attr, noSignals);
    const out = [0];
    const rc = posixSpawn(out, path, null, attr, [...argv, null], [...envp, null]) as number;
    if (rc !== 0) throw sysError(rc, 'posix_spawn', { resource: path });
    return out[0];
  } finally {
    spawnattrDestroy(attr);
  }
}

/** A slice of a SharedArrayBuffer as native memory (its backing store never moves). */
export function sharedNative(sab: SharedArrayBuffer, offset: number, size: number): NativeMemory {
  const view = new Uint8Array(sab, offset, size);
  const addr = native().koffi.address(view) as bigint;
  return { addr, buf: Buffer.from(sab, offset, size), size };
}

/**
 * Machine code of ours in this process, mapped read and execute (the CLI's
 * signal handler, sys/signal-flag.ts); unmap() once nothing can jump to it.
 */
export function mapCode(code: Buffer): { addr: bigint; unmap(): void } {
  const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20, size = 4096;
  if (code.length > size) throw new CkptError('INTERNAL', `mapCode: ${code.length} bytes of code`);
  const { koffi, munmap: munmapFn } = native();
  const { ptr, addr } = mmapOrThrow(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, 'code page');
  new Uint8Array(koffi.view(ptr, size) as ArrayBuffer).set(code);
  const r = trySyscall(10 /* mprotect */, addr, size, PROT_READ | PROT_EXEC);
  if (r < 0) { munmapFn(ptr, size); throw sysError(-r, 'mprotect', { resource: 'code page' }); }
  return { addr, unmap: () => { munmapFn(ptr, size); } };
}

/**
 * Machine code of ours as functions this thread can call, one per C
 * `signature` (koffi's syntax; sys/crc32.ts), all on the same code. Its page
 * stays mapped for as long as the thread lives.
 */
export function codeFunctions(code: Buffer, ...signatures: string[]): Fn[] {
  const { koffi } = native();
  const page = mapCode(code);
  return signatures.map((signature) => koffi.decode(page.addr, koffi.proto(signature)) as Fn);
}

/** A read-only shared mapping of part of a file: `addr` for native code, a view only if asked. */
export interface FileMapping { addr: bigint; view(): Buffer; unmap(): void }

/**
 * Map `length` bytes of `fd` from `offset` (a multiple of the page size),
 * read-only and shared: no copy. The address is what native code takes; a
 * JavaScript view costs a Buffer that V8 counts as external memory (a 1 GiB
 * image viewed 8 MiB at a time made the helper run full collections). unmap()
 * when done; no view may be used after it. Advised MADV_SEQUENTIAL: the
 * kernel then unmaps it without marking each page accessed, which moved every
 * page of a 1 GiB image's CRC windows on the LRU lists under the lock that
 * every write of a new page takes (2.8% of a dump's samples, `perf`).
 */
export function mapFile(fd: number, offset: number, length: number): FileMapping {
  const PROT_READ = 1, MAP_SHARED = 1, MADV_SEQUENTIAL = 2;
  const { koffi, munmap: munmapFn } = native();
  const { ptr, addr } = mmapOrThrow(length, PROT_READ, MAP_SHARED, fd, offset, `fd ${fd}`);
  trySyscall(NR.madvise, addr, length, MADV_SEQUENTIAL);
  return {
    addr,
    view: () => Buffer.from(koffi.view(ptr, length) as ArrayBuffer),
    unmap: () => { munmapFn(ptr, length); },
  };
}

/** Writes that may be in flight at once (writeInBackground's `slot`). */
export const BACKGROUND_SLOTS = 4;

/**
 * glibc's POSIX AIO (in libc.so.6 since glibc 2.34): an aiocb per slot, and
 * per slot the one-entry list aio_suspend takes. glibc runs the requests of
 * one fd on one thread, in the order they came.
 */
interface Aio {
  write: (cb: bigint) => number;
  suspend: (list: bigint, n: number, timeout: bigint) => number;
  error: (cb: bigint) => number;
  result: (cb: bigint) => number | bigint;
  cbs: NativeMemory;
  lists: NativeMemory;
  busy: boolean[];
}
let aio: Aio | null | undefined;
/** struct aiocb on x86_64 glibc: 168 bytes; aio_fildes 0, aio_buf 16, aio_nbytes 24, aio_sigevent.sigev_notify 44, aio_offset 128. */
const AIOCB_SIZE = 168;
const SIGEV_NONE = 1;
const EINPROGRESS = 115;

function aioLib(): Aio | undefined {
  if (aio === undefined) {
    try {
      const { libc } = native();
      aio = {
        write: libc.func('int aio_write(intptr_t cb)') as Aio['write'],
        suspend: libc.func('int aio_suspend(intptr_t list, int n, intptr_t timeout)') as Aio['suspend'],
        error: libc.func('int aio_error(intptr_t cb)') as Aio['error'],
        result: libc.func('intptr_t aio_return(intptr_t cb)') as Aio['result'],
        cbs: allocNative(BACKGROUND_SLOTS * AIOCB_SIZE), lists: allocNative(BACKGROUND_SLOTS * 8),
        busy: new Array<boolean>(BACKGROUND_SLOTS).fill(false),
      };
    } catch {
      aio = null;
    }
  }
  return aio ?? undefined;
}

export interface BackgroundWrite {
  /** Block until the write is done: the bytes written, or -errno. */
  wait(): number;
}

/**
 * Write mem[from, from + len) to fd at `offset` on glibc's AIO thread, while the caller
 * goes on (the bytes must not change until wait() returned). `slot` (below
 * BACKGROUND_SLOTS) names this write among those in flight. Undefined where
 * libc has no AIO, it refuses the request, or the slot's last write is not
 * waited for yet: then write them yourself.
 */
export function writeInBackground(fd: number, mem: NativeMemory, from: number, len: number, offset: number, slot: number): BackgroundWrite | undefined {
  const a = aioLib();
  if (!a || !(slot >= 0 && slot < BACKGROUND_SLOTS) || a.busy[slot]) return undefined;
  const cbAddr = a.cbs.addr + BigInt(slot * AIOCB_SIZE);
  const listAddr = a.lists.addr + BigInt(slot * 8);
  const cb = a.cbs.buf.subarray(slot * AIOCB_SIZE, (slot + 1) * AIOCB_SIZE);
  cb.fill(0);
  cb.writeInt32LE(fd, 0);
  cb.writeBigUInt64LE(mem.addr + BigInt(from), 16);
  cb.writeBigUInt64LE(BigInt(len), 24);
  cb.writeInt32LE(SIGEV_NONE, 44);
  cb.writeBigInt64LE(BigInt(offset), 128);
  a.lists.buf.writeBigUInt64LE(cbAddr, slot * 8);
  if (a.write(cbAddr) !== 0) return undefined;
  a.busy[slot] = true;
  return {
    wait() {
      let e = a.error(cbAddr);
      // aio_suspend returns early on a signal: ask again.
      while (e === EINPROGRESS) {
        a.suspend(listAddr, 1, 0n);
        e = a.error(cbAddr);
      }
      const r = Number(a.result(cbAddr));
      a.busy[slot] = false;
      return e === 0 ? r : -e;
    },
  };
}
