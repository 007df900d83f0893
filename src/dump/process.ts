/**
 * What one frozen process of the tree is, except its pages: read from /proc
 * and ptrace, and asked of the process itself (remote syscalls through a
 * vDSO `syscall`). Every ID is the one the process's own pid namespace sees.
 */
import { CkptError } from '../errors.js';
import { encode } from '../image/index.js';
import {
  innermost, readMaps, readSmaps, readStat, readStatus, readTaskStatus, readAuxv, readExe, readCwd, readRoot, readFdList, readThreadComm,
  type SmapsVma, type Stat, type Status, type Vma,
} from '../proc/index.js';
import type { FrozenTask } from '../ptrace/frozen.js';
import { NR } from '../sys/nr.js';
import { PR } from '../sys/constants.js';
import { PROCESS } from '../kinds/process.js';
import { TASK, taskFields } from '../kinds/task.js';
import { THREAD, threadQuestions, threadAnswers, robustList, type ThreadAnswers } from '../kinds/thread.js';
import { REGS, XSTATE, regsFields, xstateFields } from '../kinds/regs.js';
import { MM, AUXV, EXE, mmFields } from '../kinds/mm.js';
import { planVma, type MappedFiles, type VmaPlan } from '../kinds/vma.js';
import { SIGACTION, sigactionQuestions, nonDefaultSignals, type SigactionFields } from '../kinds/sigactions.js';
import { FS, FS_ROOT } from '../kinds/fs.js';
import { CREDS, credsFields, encodeGroups } from '../kinds/creds.js';
import { RLIMITS, dumpRlimits } from '../kinds/rlimits.js';
import { MISC, dumpMisc, subreaperQuestion, type MiscFields } from '../kinds/misc.js';
import { SIGNALS, SIGINFO, dumpPending, type Pending, type SignalsFields } from '../kinds/signals.js';
import { ITIMER, POSIX_TIMER, itimerQuestions, posixTimerQuestions, type ItimerFields, type PosixTimerFields } from '../kinds/timers.js';
import { Question, askAll } from '../ptrace/question.js';
import { markerFor, shadowStackOn } from '../ptrace/chain.js';
import { SECCOMP, SECCOMP_FILTER, SECCOMP_MODE_FILTER, dumpSeccompFilters } from '../kinds/seccomp.js';
import { FD, dumpFds, type SavedFd } from '../kinds/files.js';
import { encodeFdExtras } from '../kinds/fd-records.js';
import { PIPE, type SavedPipe } from '../kinds/pipes.js';
import type { TreeProcess } from './tree.js';
import { chainsAllowed, fault } from '../fault.js';

interface Remote {
  brk: number;
  gadget: bigint;
  threads: Map<number, ThreadAnswers>;
  pdeathSignal: number;
  sigactions: SigactionFields[];
  securebits: number;
  misc: { fields: MiscFields; affinity: Buffer };
  altstack: SignalsFields;
  itimers: ItimerFields[];
  posixTimers: PosixTimerFields[];
  calls: number;
  /** Of those, made in chains (ptrace/chain.ts). */
  chained: number;
}

/** A process of the tree, read. A zombie has only its stat and status. */
export interface Collected {
  node: TreeProcess;
  pid: number;
  /** pid, ppid as the tree's pid namespace sees them. */
  nspid: number;
  nsppid: number;
  /** The state letter before the freeze ('T': stopped by a signal). */
  state: string;
  stat: Stat;
  status: Status;
  live?: {
    plans: VmaPlan[];
    remote: Remote;
    threads: Buffer[];
    pending: Pending[];
    seccompFilters: Buffer[];
    auxv: Buffer;
  };
}

/**
 * A live process's fds and the files /proc links it to. Read apart from the
 * rest: it needs neither the process's main thread nor its address space,
 * so it can be read while the main thread makes the snapshot fork.
 */
export interface ProcessFiles { fds: SavedFd[]; exe: string; cwd: string; root: string }

/** A `syscall` instruction in the task's vDSO, through which its remote calls go where it has no return path. */
export function syscallGadget(task: FrozenTask, vmas: readonly SmapsVma[]): bigint {
  const vdso = vmas.find((v) => v.path === '[vdso]');
  if (!vdso) throw new CkptError('UNSUPPORTED', `pid ${task.tid} has no vDSO`, { pid: task.tid });
  const at = task.memory().read(vdso.start, vdso.end - vdso.start).indexOf(Buffer.from([0x0f, 0x05]));
  if (at < 0) throw new CkptError('UNSUPPORTED', `pid ${task.tid}: no syscall instruction in the vDSO`, { pid: task.tid });
  return BigInt(vdso.start + at);
}

/**
 * What only the process can tell: remote syscalls through a vDSO `syscall`.
 * `keepRemote`: the main thread's remote session stays open for a call that
 * follows (the snapshot fork), which saves leaving and entering it again while frozen.
 */
function askProcess(tasks: FrozenTask[], gadget: bigint, stat: Stat, status: Status, nspid: number, keepRemote: boolean): Remote {
  const [task, ...others] = tasks;
  const mem = task.memory();
  const remote = task.enterRemote(gadget);
  let asked = false;
  try {
    const scratch = task.scratchMapping();
    const brk = remote.call(NR.brk, [0]);
    // The questions whose answers are in memory go in chains where the process allows (no seccomp filter, a marker signal).
    const pdeath = new Question(NR.prctl, (slot) => [PR.GET_PDEATHSIG, slot], 4, 'prctl(PR_GET_PDEATHSIG)', (b) => b.readInt32LE(0));
    const sigactions = sigactionQuestions(nonDefaultSignals(status.sigCgt, status.sigIgn));
    const subreaper = subreaperQuestion();
    const itimers = itimerQuestions();
    const posixTimers = posixTimerQuestions(task.tid);
    const main = threadQuestions();
    const marker = status.seccomp === 0 && chainsAllowed() && !shadowStackOn(status) ? markerFor(status) : undefined;
    const chain = marker === undefined ? undefined : (area: number, size: number) => task.chainSite(area, size, { tgid: nspid, tid: nspid }, marker);
    const { chained } = askAll({ remote, mem, scratch, chain }, [pdeath, ...sigactions, subreaper, ...itimers, ...posixTimers, main.tidAddress, main.altstack]);
    fault('dump:remote');
    const securebits = remote.call(NR.prctl, [PR.GET_SECUREBITS], 'prctl(PR_GET_SECUREBITS)');
    const misc = dumpMisc(task.tid, stat, remote, subreaper.answer);
    const threads = new Map<number, ThreadAnswers>();
    const altstack = main.altstack.answer;
    threads.set(task.tid, threadAnswers(main));
    for (const t of others) {
      const r = t.enterRemote(gadget);
      try {
        const q = threadQuestions();
        askAll({ remote: r, mem, scratch }, [q.tidAddress, q.altstack]);
        threads.set(t.tid, threadAnswers(q));
      } finally { t.leaveRemote(); }
    }
    asked = true;
    return {
      brk, pdeathSignal: pdeath.answer, sigactions: sigactions.map((q) => q.answer), securebits, misc, altstack,
      itimers: itimers.flatMap((q) => q.answer ?? []), posixTimers: posixTimers.map((q) => q.answer), threads, gadget, calls: remote.calls, chained,
    };
  } finally {
    if (!asked || !keepRemote) task.leaveRemote();
  }
}

/** Two reads of the address space describe the same VMAs. */
function sameLayout(a: Vma[], b: Vma[]): boolean {
  const key = (v: Vma) => `${v.start}-${v.end} ${v.prot} ${v.shared} ${v.pgoff} ${v.ino} ${v.path}`;
  return a.length === b.length && a.every((v, i) => key(v) === key(b[i]));
}

/** A THREAD record: what ptrace and the thread itself said; its tid as its namespace sees it. */
function dumpThread(pid: number, nspid: number, t: FrozenTask, asked: ThreadAnswers): Buffer {
  const xstate = t.xstateAtFreeze();
  const rseq = t.tracee.getRseq();
  const robust = robustList(t.tid);
  const comm = readThreadComm(pid, t.tid);
  const tid = t.tid === pid ? nspid : innermost(readTaskStatus(pid, t.tid).nspid, t.tid);
  return encode(THREAD, {
    tid, sigmask: t.sigmask, ...asked,
    rseq_ptr: rseq ? Number(rseq.rseq_abi_pointer) : 0, rseq_len: rseq?.rseq_abi_size ?? 0,
    rseq_sig: rseq?.signature ?? 0, rseq_flags: rseq?.flags ?? 0,
    robust_list: robust.head, robust_len: robust.len,
    comm: Buffer.from(comm, 'utf8').length <= 15 ? comm : comm.slice(0, 15),
  }, [
    encode(REGS, regsFields(t.namedRegs())), encode(XSTATE, xstateFields(xstate), xstate),
    ...dumpPending(t.tid).filter((p) => !p.shared).map((p) => encode(SIGINFO, { shared: 0, signo: p.signo }, p.info)),
  ]);
}

/**
 * Read one process of the frozen tree, all but its files (readFiles): what
 * needs its main thread stopped or its address space still. `early` is its
 * smaps read before the freeze (smaps walks every page table: slow, and needs
 * no freeze); it is used if the layout did not change meanwhile. `nsOf`: the
 * pids (as their namespace sees them) of the processes collected so far, by host pid.
 */
export function collectProcess(node: TreeProcess, nsOf: ReadonlyMap<number, number>, state: string, early: SmapsVma[] | undefined, opts: { container: boolean; keepRemote?: boolean }): Collected {
  const pid = node.pid;
  const stat = readStat(pid);
  const status = readStatus(pid);
  const nspid = innermost(status.nspid, pid);
  const nsppid = nsOf.get(node.ppid) ?? 0;
  // A process that died since the early walk is a zombie now, whatever that walk saw.
  const base = { node, pid, nspid, nsppid, state: node.zombie ? 'Z' : state, stat, status };
  if (node.zombie) return base;
  const smaps = early && sameLayout(early, readMaps(pid)) ? early : readSmaps(pid);
  const files: MappedFiles = new Map();
  const plans = smaps.map((v) => planVma(pid, v, { sysvShm: opts.container, files })).filter((p): p is VmaPlan => p !== undefined);
  const remote = askProcess(node.tasks, syscallGadget(node.tasks[0], smaps), stat, status, nspid, opts.keepRemote ?? false);
  const pending = dumpPending(pid).filter((p) => p.shared);
  // Everything ptrace says of each thread, while all are stopped.
  const threads = node.tasks.map((t) => dumpThread(pid, nspid, t, remote.threads.get(t.tid)!));
  const seccompFilters = status.seccomp === SECCOMP_MODE_FILTER ? dumpSeccompFilters(pid) : [];
  return {
    ...base,
    live: { plans, remote, threads, pending, seccompFilters, auxv: readAuxv(pid) },
  };
}

/** The files of a live process of the frozen tree (`ptyMasters`: the pty masters the tree holds). */
export function readFiles(pid: number, opts: { shellJob: boolean; ptyMasters: ReadonlySet<number> }): ProcessFiles {
  return {
    fds: dumpFds(pid, readFdList(pid), opts.shellJob, opts.ptyMasters),
    exe: readExe(pid), cwd: readCwd(pid), root: readRoot(pid),
  };
}

/** The TASK record of a collected process, with its IDs as its namespace sees them. */
function taskRecord(c: Collected): Buffer {
  const fsBase = c.node.tasks[0]?.regs.fs_base ?? 0n;
  const fields = taskFields(c.stat, c.status, fsBase, c.live?.remote.pdeathSignal ?? 0);
  // The state as it was before we froze it ('t' now): 'T' means stopped by a signal.
  return encode(TASK, { ...fields, ppid: c.nsppid, rppid: c.nsppid, state: c.state });
}

/** The PROCESS record: everything but the pages, which `vmaRecs` already describe. */
export function processRecord(c: Collected, files: ProcessFiles | undefined, vmaRecs: Buffer[], pipes: SavedPipe[], sockets: Buffer[] = []): Buffer {
  const l = c.live;
  if (!l) return encode(PROCESS, { pid: c.nspid }, [taskRecord(c)]);
  if (!files) throw new CkptError('INTERNAL', `pid ${c.pid}: its files were not read`, { pid: c.pid });
  const { remote, pending } = l;
  return encode(PROCESS, { pid: c.nspid }, [
    taskRecord(c),
    encode(CREDS, credsFields(c.status, remote.securebits), encodeGroups(c.status.groups)),
    encode(RLIMITS, { count: 16 }, dumpRlimits(c.pid)),
    encode(MISC, remote.misc.fields, remote.misc.affinity),
    encode(SIGNALS, remote.altstack, pending.map((p) => encode(SIGINFO, { shared: p.shared ? 1 : 0, signo: p.signo }, p.info))),
    ...remote.itimers.map((t) => encode(ITIMER, t)),
    ...remote.posixTimers.map((t) => encode(POSIX_TIMER, t)),
    encode(SECCOMP, { mode: c.status.seccomp, filters: l.seccompFilters.length }, l.seccompFilters.map((f) => encode(SECCOMP_FILTER, { insns: f.length / 8 }, f))),
    encode(MM, mmFields(c.stat, remote.brk), [encode(AUXV, {}, l.auxv), encode(EXE, {}, files.exe)]),
    encode(FS, { umask: c.status.umask ?? 0o022 }, files.cwd),
    ...(files.root !== '/' ? [encode(FS_ROOT, {}, files.root)] : []),
    ...vmaRecs,
    ...remote.sigactions.map((a) => encode(SIGACTION, a)),
    ...pipes.map((p) => encode(PIPE, p.fields, p.data)),
    ...sockets,
    ...files.fds.map((f) => encode(FD, f.fields, f.path)),
    ...files.fds.flatMap(encodeFdExtras),
    ...l.threads,
  ]);
}
