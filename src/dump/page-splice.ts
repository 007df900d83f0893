/**
 * Pages into pages.img with the one copy the kernel makes: the process itself
 * vmsplices its pages into a pipe of its own (a remote call), and ckpt splices
 * that pipe into the file. Reading with process_vm_readv and then writing costs
 * two copies and pins each page on the way; on this machine class it moved
 * ~1 GB/s, splicing ~2 GB/s (faster than write(2) of the same bytes, which the
 * benchmark takes as its reference).
 *
 * There are two pipes, so that the process fills one while ckpt empties the
 * other. Their write ends live in the process while the pages move, with
 * O_CLOEXEC; ckpt takes each read end with pidfd_getfd and closes the
 * process's copy of it at once. close() closes the write ends. Used where the
 * process does not run on afterwards (a dump that kills it, a snapshot
 * child): were ckpt killed in the middle, the write ends are all it leaves
 * (both ends of a pipe, in the few calls between pipe2 and that close).
 * Anything that goes wrong in a pipe's making or use falls back to
 * process_vm_readv and write.
 */
import { NR } from '../sys/nr.js';
import { F, O } from '../sys/constants.js';
import { IOVEC_SIZE, encodeIovec } from '../sys/structs.js';
import { close, pidfdGetfd, pidfdOpen, spliceToFile } from '../sys/syscalls.js';
import { spliceFails } from '../fault.js';
import { maskBeforePin, pinBeside, unpin } from '../ptrace/cpu-pin.js';
import type { RemoteCaller } from '../ptrace/remote.js';
import type { TraceeMemory } from '../ptrace/memory.js';

const PIPE_SIZE = 1024 * 1024;
const MIN_PIPE_SIZE = 256 * 1024;
const SPLICE_F_NONBLOCK = 2;
/** vmsplice takes at most this many iovecs (UIO_MAXIOV). */
const MAX_IOV = 1024;
/** One pipe fills while ckpt empties the other. */
const PIPES = 2;
/** A move of at least this many vmsplice calls runs with the process's thread on ckpt's CPU. */
const PIN_MIN_CALLS = 4;

/** One of the pipes: its write end in the process, its read end ckpt's. */
interface Pipe { writeFd: number; readFd: number }

/** Bytes a vmsplice left in a pipe, to be spliced into the file at `offset`. */
interface Filled { pipe: Pipe; offset: number; bytes: number }

export class PageSplicer {
  private open = true;
  /** A splice failed: the pipe may hold bytes; nothing more goes through it. */
  private broken = false;
  /** Whether a move ran with the process's thread on ckpt's CPU (for -v). */
  pinned = false;

  private constructor(
    private readonly remote: RemoteCaller,
    private readonly mem: TraceeMemory,
    /** Where the iovecs go in the process (its scratch mapping): MAX_IOV of them per pipe. */
    private readonly iovAt: number,
    private readonly pipes: Pipe[],
    /** Bytes one vmsplice may move: the pipes' size. */
    readonly capacity: number,
  ) {}

  /**
   * Two pipes in process `pid` (one if a second cannot be had), made with
   * remote calls through `remote`, using `scratch` (at least 32 KiB of the
   * process's memory, ckpt's to use). Undefined if the process could not make
   * one (then read pages the old way).
   */
  static open(pid: number, remote: RemoteCaller, mem: TraceeMemory, scratch: number): PageSplicer | undefined {
    const pipes: Pipe[] = [];
    let capacity = PIPE_SIZE;
    for (let i = 0; i < PIPES; i++) {
      const made = openPipe(pid, remote, mem, scratch);
      if (!made) break;
      pipes.push(made.pipe);
      capacity = Math.min(capacity, made.capacity);
    }
    return pipes.length ? new PageSplicer(remote, mem, scratch, pipes, capacity) : undefined;
  }

  /**
   * Move the bytes of `batch` ([address, length], whole pages) into `fd` from
   * `offset` on, in order; returns how many landed there (fewer if the process
   * could not vmsplice some, or a splice failed: the caller then reads and
   * writes the rest the old way). `landed` hears the count so far after each
   * pipe is emptied into the file; what it throws stops the move and is thrown.
   */
  move(batch: ReadonlyArray<readonly [number, number]>, fd: number, offset: number, landed?: (bytes: number) => void): number {
    if (this.broken) return 0;
    let moved = 0;
    let callers: { error: unknown } | undefined;
    // The process's thread beside ckpt's (ptrace/cpu-pin.ts): pinned for the whole dump
    // already, or for this move if it is long enough to gain from it.
    const tid = this.remote.tracee.tid;
    const bytes = batch.reduce((n, [, len]) => n + len, 0);
    const pinnedHere = bytes >= PIN_MIN_CALLS * this.capacity && pinBeside(tid);
    if (pinnedHere || maskBeforePin(tid)) this.pinned = true;
    try {
      this.moveAll(batch, fd, offset, (bytes) => {
        moved = bytes;
        try { landed?.(bytes); } catch (error) { callers = { error }; throw error; }
      });
    } catch {
      if (callers) throw callers.error;
      // A file that takes no splice, a pipe left half full: from here on, read and write.
      this.broken = true;
    } finally {
      if (pinnedHere) unpin(tid);
    }
    return moved;
  }

  /**
   * Each vmsplice fills one pipe while ckpt splices the one filled before into
   * the file (the remote call's `meanwhile`): the round trip to the process
   * overlaps the copy into the file.
   */
  private moveAll(batch: ReadonlyArray<readonly [number, number]>, fd: number, offset: number, landed: (bytes: number) => void): void {
    let moved = 0;
    let queued = 0;
    let i = 0;
    let skip = 0;
    let filled: Filled | undefined;
    const drain = () => {
      if (!filled) return;
      const f = filled;
      filled = undefined;
      if (moved > 0 && spliceFails()) throw new Error('injected splice failure (CKPT_FAULT=splice)');
      spliceToFile(f.pipe.readFd, fd, f.offset, f.bytes);
      moved += f.bytes;
      landed(moved);
    };
    for (let k = 0; i < batch.length; k++) {
      // One vmsplice: up to the pipe's size and MAX_IOV pieces.
      const pipe = this.pipes[k % this.pipes.length];
      const iovAt = this.iovAt + (k % this.pipes.length) * MAX_IOV * IOVEC_SIZE;
      const iov = Buffer.alloc(Math.min(MAX_IOV, batch.length - i) * IOVEC_SIZE);
      let n = 0;
      let bytes = 0;
      for (let j = i, s = skip; j < batch.length && n < MAX_IOV && bytes < this.capacity; j++, s = 0) {
        const take = Math.min(batch[j][1] - s, this.capacity - bytes);
        encodeIovec(iov, n++, BigInt(batch[j][0] + s), take);
        bytes += take;
      }
      this.mem.write(iovAt, iov.subarray(0, n * IOVEC_SIZE));
      // With one pipe, it must be empty before the process fills it again.
      if (this.pipes.length === 1) drain();
      const r = this.remote.raw(NR.vmsplice, [pipe.writeFd, iovAt, n, SPLICE_F_NONBLOCK], undefined, undefined, drain);
      if (r <= 0n) break;
      const got = Number(r);
      filled = { pipe, offset: offset + queued, bytes: got };
      queued += got;
      // Step over what moved.
      let left = got;
      while (left > 0) {
        const here = batch[i][1] - skip;
        if (left >= here) { left -= here; i++; skip = 0; } else { skip += left; left = 0; }
      }
      if (got < bytes) break;
    }
    drain();
  }

  /** Close every end; `remote`: the process is still there to close its ends (not a child being killed). */
  close(remote = true): void {
    if (!this.open) return;
    this.open = false;
    for (const p of this.pipes) {
      close(p.readFd);
      if (remote) this.remote.raw(NR.close, [p.writeFd]);
    }
  }
}

/** One pipe for the splice: its write end stays in the process, its read end becomes ckpt's. */
function openPipe(pid: number, remote: RemoteCaller, mem: TraceeMemory, scratch: number): { pipe: Pipe; capacity: number } | undefined {
  if (remote.raw(NR.pipe2, [scratch, O.CLOEXEC]) !== 0n) return undefined;
  let rfd = -1;
  let wfd = -1;
  let ours = -1;
  try {
    const fds = mem.read(scratch, 8);
    [rfd, wfd] = [fds.readInt32LE(0), fds.readInt32LE(4)];
    const sized = remote.raw(NR.fcntl, [wfd, F.SETPIPE_SZ, PIPE_SIZE]);
    const capacity = sized > 0n ? Number(sized) : Number(remote.raw(NR.fcntl, [wfd, F.GETPIPE_SZ]));
    // A small pipe (pipe-user-pages-soft reached) would take a remote call per few pages.
    if (!(capacity >= MIN_PIPE_SIZE)) throw new Error(`a pipe of ${capacity} bytes`);
    const pidfd = pidfdOpen(pid);
    try { ours = pidfdGetfd(pidfd, rfd, pid); } finally { close(pidfd); }
    remote.call(NR.close, [rfd]);
    return { pipe: { writeFd: wfd, readFd: ours }, capacity: Math.min(capacity, PIPE_SIZE) };
  } catch {
    // The process keeps none of this pipe.
    for (const fd of [rfd, wfd]) {
      try { if (fd >= 0) remote.raw(NR.close, [fd]); } catch { /* the process is gone */ }
    }
    if (ours >= 0) close(ours);
    return undefined;
  }
}
