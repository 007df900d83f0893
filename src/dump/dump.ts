/**
 * Dump one process: freeze it, read what /proc and ptrace give, ask it (remote
 * syscalls) what only it knows, stream its pages, write the image, then kill
 * it or let it run on. Any failure puts the process back as it was.
 */
import os from 'node:os';
import { CkptError } from '../errors.js';
import {
  ImageWriter, PagesWriter, createImageDir, commitImageDir, abortImageDir, encode,
} from '../image/index.js';
import { readChildren, readMaps, readSmaps, readStat, readStatus, readTids, readAuxv, readExe, readCwd, readRoot, readFdList, readThreadComm, Pagemap } from '../proc/index.js';
import type { FrozenTask } from '../ptrace/frozen.js';
import { NR } from '../sys/nr.js';
import { PR, PTRACE_O, SIG } from '../sys/constants.js';
import { kill, wait4 } from '../sys/syscalls.js';
import { VERSION } from '../version.js';
import { PROCESS } from '../kinds/process.js';
import { TASK, taskFields } from '../kinds/task.js';
import { THREAD, askThread, robustList } from '../kinds/thread.js';
import { freezeProcess } from '../ptrace/freeze.js';
import { REGS, XSTATE, regsFields, xstateFields } from '../kinds/regs.js';
import { MM, AUXV, EXE, mmFields } from '../kinds/mm.js';
import { VMA, VMA_PATH, planVma, vmaFields, type VmaPlan } from '../kinds/vma.js';
import { PAGE_RUNS, selectPages, encodeRuns, type Run } from '../kinds/pages.js';
import { PagePump } from './page-pump.js';
import { ChunkPump } from './compress-pump.js';
import { PAGE_CHUNKS, Codec, parseCodec, encodeChunks, type Chunk } from '../kinds/page-chunks.js';
import { forkSnapshot, followsFork, SNAPSHOT_MIN_BYTES, type Snapshot } from './snapshot.js';
import type { TraceeMemory } from '../ptrace/memory.js';
import { SIGACTION, dumpSigactions, nonDefaultSignals, type SigactionFields } from '../kinds/sigactions.js';
import { FS, FS_ROOT } from '../kinds/fs.js';
import { CREDS, credsFields, encodeGroups } from '../kinds/creds.js';
import { RLIMITS, dumpRlimits } from '../kinds/rlimits.js';
import { MISC, dumpMisc, type MiscFields } from '../kinds/misc.js';
import { SIGNALS, SIGINFO, dumpPending, type SignalsFields } from '../kinds/signals.js';
import { ITIMER, POSIX_TIMER, dumpItimers, dumpPosixTimers, type ItimerFields, type PosixTimerFields } from '../kinds/timers.js';
import { SECCOMP, SECCOMP_FILTER, SECCOMP_MODE_FILTER, dumpSeccompFilters } from '../kinds/seccomp.js';
import type { Stat, Status, Vma } from '../proc/index.js';
import { FD, FdKind, dumpFds, dumpPipes } from '../kinds/files.js';
import { encodeFdExtras } from '../kinds/fd-records.js';
import { PIPE } from '../kinds/pipes.js';
import { dumpSockets, encodeSocket, type SocketDump } from '../kinds/sockets/index.js';
import { checkDumpablePid } from './validate.js';
import { Timings } from '../timings.js';
import { fault } from '../fault.js';

export interface DumpOptions {
  /** The process to dump (with all its threads; a process with children is refused today). */
  pid: number;
  /** Where the image goes: DIR must not exist, be empty, or (with `force`) hold an image. */
  dir: string;
  /** Let the process run on after the dump (default: it is killed). */
  leaveRunning?: boolean;
  /** The process uses a terminal inherited from a shell (`-j`). */
  shellJob?: boolean;
  /** Replace an image already in DIR. */
  force?: boolean;
  /** Save established TCP connections (TCP repair; their packets are held by nftables until restore). */
  tcpEstablished?: boolean;
  /** Save unix sockets whose peer is outside the dump; restore reconnects them by name. */
  extUnixSk?: boolean;
  /** Compress page data in 8 MiB chunks (default 'none'); restore detects it. */
  compress?: 'zstd' | 'lz4' | 'none';
  /** Each line the engine logs (what `ckpt dump -v` prints). */
  log?: (msg: string) => void;
  /** Hears each step as it ends, and page copying as it goes (bytes done of total). */
  onProgress?: (p: EngineProgress) => void;
}

export interface EngineProgress { phase: string; done: number; total: number }

export interface DumpResult {
  pids: number[];
  pages: number;
  bytes: number;
  ms: number;
  timings: Record<string, number>;
}

interface Remote {
  brk: number;
  gadget: bigint;
  threads: Map<number, ReturnType<typeof askThread>>;
  pdeathSignal: number;
  sigactions: SigactionFields[];
  securebits: number;
  misc: { fields: MiscFields; affinity: Buffer };
  altstack: SignalsFields;
  itimers: ItimerFields[];
  posixTimers: PosixTimerFields[];
  calls: number;
}

/** What only the process can tell: remote syscalls through a vDSO `syscall`. */
function askProcess(tasks: FrozenTask[], vdsoStart: number, vdsoEnd: number, stat: Stat, status: Status): Remote {
  const [task, ...others] = tasks;
  const mem = task.memory();
  const vdso = mem.read(vdsoStart, vdsoEnd - vdsoStart);
  const at = vdso.indexOf(Buffer.from([0x0f, 0x05]));
  if (at < 0) throw new CkptError('UNSUPPORTED', `pid ${task.tid}: no syscall instruction in the vDSO`, { pid: task.tid });
  const gadget = BigInt(vdsoStart + at);
  const remote = task.enterRemote(gadget);
  try {
    const scratch = task.scratchMapping();
    const brk = remote.call(NR.brk, [0]);
    remote.call(NR.prctl, [PR.GET_PDEATHSIG, scratch.addr], 'prctl(PR_GET_PDEATHSIG)');
    const pdeathSignal = mem.read(scratch.addr, 4).readInt32LE(0);
    const sigactions = dumpSigactions(remote, mem, scratch.addr, nonDefaultSignals(status.sigCgt, status.sigIgn));
    fault('dump:remote');
    const securebits = remote.call(NR.prctl, [PR.GET_SECUREBITS], 'prctl(PR_GET_SECUREBITS)');
    const misc = dumpMisc(task.tid, stat, remote, mem, scratch.addr);
    const itimers = dumpItimers(remote, mem, scratch.addr);
    const posixTimers = dumpPosixTimers(task.tid, remote, mem, scratch.addr);
    const threads = new Map<number, ReturnType<typeof askThread>>();
    const main = askThread(remote, mem, scratch.addr);
    threads.set(task.tid, main);
    const altstack = { altstack_sp: main.altstack_sp, altstack_flags: main.altstack_flags, altstack_size: main.altstack_size };
    for (const t of others) {
      const r = t.enterRemote(gadget);
      try { threads.set(t.tid, askThread(r, mem, scratch.addr)); } finally { t.leaveRemote(); }
    }
    return { brk, pdeathSignal, sigactions, securebits, misc, altstack, itimers, posixTimers, threads, gadget, calls: remote.calls };
  } finally {
    task.leaveRemote();
  }
}

/** Two reads of the address space describe the same VMAs. */
function sameLayout(a: Vma[], b: Vma[]): boolean {
  const key = (v: Vma) => `${v.start}-${v.end} ${v.prot} ${v.shared} ${v.pgoff} ${v.ino} ${v.path}`;
  return a.length === b.length && a.every((v, i) => key(v) === key(b[i]));
}

/** A THREAD record: what ptrace and the thread itself said. */
function dumpThread(pid: number, t: FrozenTask, asked: ReturnType<typeof askThread>): Buffer {
  const xstate = t.tracee.getXstate();
  const rseq = t.tracee.getRseq();
  const robust = robustList(t.tid);
  const comm = readThreadComm(pid, t.tid);
  return encode(THREAD, {
    tid: t.tid, sigmask: t.sigmask, ...asked,
    rseq_ptr: rseq ? Number(rseq.rseq_abi_pointer) : 0, rseq_len: rseq?.rseq_abi_size ?? 0,
    rseq_sig: rseq?.signature ?? 0, rseq_flags: rseq?.flags ?? 0,
    robust_list: robust.head, robust_len: robust.len,
    comm: Buffer.from(comm, 'utf8').length <= 15 ? comm : comm.slice(0, 15),
  }, [
    encode(REGS, regsFields(t.regs)), encode(XSTATE, xstateFields(xstate), xstate),
    ...dumpPending(t.tid).filter((p) => !p.shared).map((p) => encode(SIGINFO, { shared: 0, signo: p.signo }, p.info)),
  ]);
}

export function dumpSync(opts: DumpOptions): DumpResult {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const times = new Timings((step) => opts.onProgress?.({ phase: step, done: 1, total: 1 }));
  const pid = opts.pid;
  const codec = parseCodec(opts.compress ?? 'none');
  const first = checkDumpablePid(pid);
  // smaps walks every page table: read it before freezing, check it after.
  const early = readSmaps(pid);
  times.mark('validate');
  const tasks = freezeProcess(pid, first.status.seccomp ? PTRACE_O.SUSPEND_SECCOMP : 0);
  const task = tasks[0];
  times.mark('freeze');
  let partial: string | undefined;
  let copier: PagePump | ChunkPump | undefined;
  let snapshot: Snapshot | undefined;
  let released = false;
  let sockets: SocketDump | undefined;
  try {
    fault('dump:freeze');
    // Any thread may have forked: each has its own children list.
    const children = tasks.flatMap((t) => readChildren(pid, t.tid));
    if (children.length > 0) {
      throw new CkptError('UNSUPPORTED', `not supported yet: pid ${pid} has child processes (${children.join(', ')}): process trees`, { pid });
    }
    const stat = readStat(pid);
    const status = readStatus(pid);
    const fds = dumpFds(pid, readFdList(pid), opts.shellJob ?? false);
    const pipes = dumpPipes(pid, fds);
    sockets = dumpSockets(fds.filter((f) => f.fields.kind === FdKind.SOCKET).map((f) => ({ pid, fd: f.fields.fd, ino: f.fields.ino })),
      { tcpEstablished: opts.tcpEstablished, extUnixSk: opts.extUnixSk, log });
    const smaps = sameLayout(early, readMaps(pid)) ? early : readSmaps(pid);
    const plans = smaps.map((v) => planVma(pid, v)).filter((p): p is VmaPlan => p !== undefined);
    times.mark('proc');
    fault('dump:proc');
    const vdso = smaps.find((v) => v.path === '[vdso]');
    if (!vdso) throw new CkptError('UNSUPPORTED', `pid ${pid} has no vDSO`, { pid });
    const remote = askProcess(tasks, vdso.start, vdso.end, stat, status);
    const pending = dumpPending(pid).filter((p) => p.shared);
    // Everything ptrace says of each thread, while all are stopped.
    const threads = tasks.map((t) => dumpThread(pid, t, remote.threads.get(t.tid)!));
    const seccompFilters = status.seccomp === SECCOMP_MODE_FILTER ? dumpSeccompFilters(pid) : [];
    times.mark('remote');
    const auxv = readAuxv(pid);
    const exe = readExe(pid);
    const cwd = readCwd(pid);
    const root = readRoot(pid);

    partial = createImageDir(opts.dir, { force: opts.force });
    const writer = ImageWriter.create(partial, { utsRelease: os.release(), tool: `ckpt ${VERSION}` });
    const pagesWriter = PagesWriter.create(partial);
    const planRuns: Run[][] = new Array(plans.length);
    const select = (from: number, which: number[]) => {
      const pagemap = new Pagemap(from);
      const pmBuf = Buffer.alloc(64 * 1024 * 8);
      try { for (const i of which) planRuns[i] = selectPages(pagemap, plans[i], pmBuf); } finally { pagemap.close(); }
    };
    // Resident and swapped memory decides how to copy (the exact page count comes later).
    const residentBytes = plans.reduce((n, p) => n + ((p.vma.fields.Rss ?? 0) + (p.vma.fields.Swap ?? 0)) * 1024, 0);
    const onCopied = opts.onProgress && ((done: number) => opts.onProgress!({ phase: 'pages', done, total: residentBytes }));
    copier = codec === Codec.NONE ? new PagePump(pagesWriter, residentBytes, onCopied) : new ChunkPump(pagesWriter, codec, residentBytes, onCopied);
    const vmaRecs: Buffer[] = new Array(plans.length);
    let pages = 0;
    const copyVma = (i: number, from: { pid: number; mem: TraceeMemory }) => {
      const plan = plans[i];
      const runs = planRuns[i];
      const nr = runs.reduce((n, [, c]) => n + c, 0);
      const { offset, crc } = nr ? copier!.copy(from.pid, from.mem, runs, plan.vma.prot) : { offset: 0, crc: 0 };
      pages += nr;
      const kids = [encode(VMA_PATH, {}, plan.vma.path)];
      if (nr) kids.push(encode(PAGE_RUNS, {}, encodeRuns(runs)));
      vmaRecs[i] = encode(VMA, vmaFields(plan, nr ? offset : 0, nr, crc), kids);
      if (nr) fault('dump:pages');
    };
    const frozenSide = { pid, mem: task.memory() };
    const all = plans.map((_, i) => i);
    // --leave-running: copy what a fork does not carry while frozen, then fork
    // a copy-on-write snapshot, let the process run, and select and copy the
    // rest from the snapshot.
    if (opts.leaveRunning && residentBytes >= SNAPSHOT_MIN_BYTES) {
      const unforked = all.filter((i) => !followsFork(plans[i]));
      select(pid, unforked);
      unforked.forEach((i) => copyVma(i, frozenSide));
      times.mark('frozen-copy');
      snapshot = forkSnapshot(task, remote.gadget);
      times.mark('fork');
      if (snapshot) {
        for (const t of tasks) t.release();
        released = true;
        if (first.status.state === 'T') kill(pid, SIG.STOP);
        times.mark('thaw');
      }
    }
    const source = snapshot ?? frozenSide;
    const rest = all.filter((i) => !vmaRecs[i]);
    select(source.pid, rest);
    times.mark('select');
    rest.forEach((i) => copyVma(i, source));
    const chunks: Chunk[] | void = copier.finish();
    snapshot?.discard();
    snapshot = undefined;
    times.mark('pages');
    writer.add(encode(PROCESS, { pid }, [
      // The state as it was before we froze it ('t' now): 'T' means stopped by a signal.
      encode(TASK, { ...taskFields(stat, status, task.regs.fs_base, remote.pdeathSignal), state: first.status.state }),
      encode(CREDS, credsFields(status, remote.securebits), encodeGroups(status.groups)),
      encode(RLIMITS, { count: 16 }, dumpRlimits(pid)),
      encode(MISC, remote.misc.fields, remote.misc.affinity),
      encode(SIGNALS, remote.altstack, pending.map((p) => encode(SIGINFO, { shared: p.shared ? 1 : 0, signo: p.signo }, p.info))),
      ...remote.itimers.map((t) => encode(ITIMER, t)),
      ...remote.posixTimers.map((t) => encode(POSIX_TIMER, t)),
      encode(SECCOMP, { mode: status.seccomp, filters: seccompFilters.length }, seccompFilters.map((f) => encode(SECCOMP_FILTER, { insns: f.length / 8 }, f))),
      encode(MM, mmFields(stat, remote.brk), [encode(AUXV, {}, auxv), encode(EXE, {}, exe)]),
      encode(FS, { umask: status.umask ?? 0o022 }, cwd),
      ...(root !== '/' ? [encode(FS_ROOT, {}, root)] : []),
      ...vmaRecs,
      ...remote.sigactions.map((a) => encode(SIGACTION, a)),
      ...pipes.map((p) => encode(PIPE, p.fields, p.data)),
      ...sockets.sockets.map(encodeSocket),
      ...fds.map((f) => encode(FD, f.fields, f.path)),
      ...fds.flatMap(encodeFdExtras),
      ...threads,
    ]));
    if (chunks) writer.add(encode(PAGE_CHUNKS, { codec, count: chunks.length }, encodeChunks(chunks)));
    fault('dump:write');
    pagesWriter.close();
    writer.close();
    fault('dump:commit');
    commitImageDir(opts.dir);
    partial = undefined;
    times.mark('write');
    if (opts.leaveRunning) {
      sockets.release();
      if (!released) {
        for (const t of tasks) t.release();
        // A process that was stopped (SIGSTOP) stays stopped.
        if (first.status.state === 'T') kill(pid, SIG.STOP);
      }
    } else {
      for (const t of tasks) t.closeMemory();
      kill(pid, SIG.KILL);
      // A group leader's exit is reported only after its other threads are reaped.
      for (const t of [...tasks.slice(1), tasks[0]]) { try { wait4(t.tid); } catch { /* reaped */ } }
      sockets.finish();
    }
    times.mark('finish');
    log(`dump of pid ${pid}: ${tasks.length} thread(s), ${pages} pages, ${remote.calls} remote syscalls; ${times.format()}`);
    return { pids: [pid], pages, bytes: pages * 4096, ms: performance.now() - t0, timings: times.record() };
  } catch (e) {
    snapshot?.discard();
    sockets?.release();
    if (!released) for (const t of tasks) t.release();
    if (partial !== undefined) abortImageDir(opts.dir);
    throw e;
  } finally {
    copier?.close();
  }
}
