/**
 * Restore: grow the saved tree out of a seed. The seed clones the root with
 * its saved pid (clone3 set_tid; in a fresh pid namespace for a container);
 * each process rebuilds its memory, then clones its children, which inherit
 * what they shared with it copy-on-write; sessions and groups are set once
 * every process exists; then each process rebuilds the rest through remote
 * syscalls, in an order found to work (docs/architecture.md); registers,
 * xstate and signal masks go back last and the whole tree is let go.
 * Any failure kills everything created; the image is only read.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { readMaps, readStat, readStatus } from '../proc/index.js';
import { Tracee } from '../ptrace/tracee.js';
import { RemoteCaller } from '../ptrace/remote.js';
import { TraceeMemory } from '../ptrace/memory.js';
import { NR } from '../sys/nr.js';
import { CLONE, MAP, PAGE_SIZE, PROT, PTRACE_O, SIG, WALL } from '../sys/constants.js';
import { encodeCloneArgs, CLONE_ARGS_SIZE, xsaveFeatures } from '../sys/structs.js';
import { getpid, tryKill, wait4, W } from '../sys/syscalls.js';
import { E } from '../sys/errno.js';
import { checkXstate } from '../kinds/regs.js';
import { checkMappedFile, isFileBacked } from '../kinds/vma.js';
import { checkFd, FdKind, FileTable, openFds } from '../kinds/files.js';
import { releaseSockets } from '../kinds/sockets/index.js';
import { spawnSeed, SEED_GADGET, GADGET_BYTES } from './seed.js';
import { loadImage, openPages, type LoadedImage } from './load.js';
import { findHole, type Range } from './layout.js';
import { planTree, type TreeNode, type TreePlan } from './tree.js';
import { RestoredProcess, TRAMPOLINE_SIZE, BATCH_OFFSET, waitEventStop, type RestoreContext } from './process.js';
import { BATCH_CODE } from '../ptrace/batch.js';
import { SharedMemory } from './shmem.js';
import { CONTAINER_NS_FLAGS, loadContainer, restoreContainer, finishContainer } from '../kinds/container.js';
import { attachShmVma } from '../kinds/sysvipc.js';
import { setupContainerMounts } from '../kinds/mntns.js';
import { Timings } from '../timings.js';
import type { EngineProgress } from '../dump/dump.js';
import { fault, pauseAfterStep } from '../fault.js';
import { uptimeMs } from '../clock.js';

export interface RestoreOptions {
  /** The image directory. */
  dir: string;
  /** Like `ckpt restore -d`: return once the tree runs; parent-death signals are not re-armed. */
  detach?: boolean;
  /** Write the restored root's host pid to this file. */
  pidfile?: string;
  /** Give the process ckpt's terminal for the terminal fds it had (`-j`). */
  shellJob?: boolean;
  /** Each line the engine logs (what `ckpt restore -v` prints). */
  log?: (msg: string) => void;
  /** Hears each step as it ends. */
  onProgress?: (p: EngineProgress) => void;
}

export interface RestoreResult {
  pid: number;
  pids: number[];
  ms: number;
  timings: Record<string, number>;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleepMs = (ms: number) => Atomics.wait(sleepCell, 0, 0, ms);

/** The state letter of a pid, or undefined if there is no such process. */
function pidState(pid: number): string | undefined {
  try { return readStatus(pid).state; } catch { return undefined; }
}

/** PF_EXITING in /proc/PID/stat's flags: the task is in exit, freeing its memory. */
const PF_EXITING = 0x4;

/** Whether a pid is held by a process that is dying (exiting, a zombie) or live; undefined if by none. */
function pidDying(pid: number): boolean | undefined {
  try {
    const st = readStat(pid);
    return st.state === 'Z' || st.state === 'X' || (st.flags & PF_EXITING) !== 0;
  } catch { return undefined; }
}

/**
 * A saved pid still held by a dying or not yet reaped process (its image may
 * have come through a pipe faster than it died; `ckpt dump -D` returns while a
 * killed process still frees its memory, ~90 ms per GiB) is waited for, a few
 * seconds; a live process holding it is refused at once.
 */
function waitPidFree(pid: number, timeoutMs = 5000): boolean {
  const until = uptimeMs() + timeoutMs;
  for (;;) {
    const dying = pidDying(pid);
    if (dying === undefined) return true;
    if (!dying || uptimeMs() > until) return false;
    sleepMs(20);
  }
}

/**
 * Everything checked before the first process is created. The pids first: a
 * process still running from the image holds them, and its files then differ
 * from the image because it runs on (mem.c rewriting a file of its own), not
 * because the image is stale.
 */
function preflight(img: LoadedImage, plan: TreePlan, opts: RestoreOptions): void {
  // A container's pids are its own namespace's: the host's are free or not, it does not matter.
  if (!plan.container) {
    for (const p of img.processes) {
      for (const th of p.threads) {
        if (!waitPidFree(th.fields.tid)) throw new CkptError('PID_IN_USE', `pid ${th.fields.tid} is in use`, { pid: th.fields.tid });
      }
      if (!waitPidFree(p.pid)) throw new CkptError('PID_IN_USE', `pid ${p.pid} is in use`, { pid: p.pid });
    }
    for (const id of [...plan.orphanSessions, ...plan.orphanGroups]) {
      if (!waitPidFree(id)) throw new CkptError('PID_IN_USE', `pid ${id} (a session or group of the image whose leader is gone) is in use`, { pid: id });
    }
  }
  const mapped = new Map<string, fs.BigIntStats>();
  for (const p of img.processes) {
    for (const v of p.vmas) if (isFileBacked(v.fields.kind)) checkMappedFile(v.fields, v.path, mapped);
    for (const f of p.fds) {
      if (f.fields.kind === FdKind.TTY && !opts.shellJob) {
        throw new CkptError('USAGE', `fd ${f.fields.fd} of pid ${p.pid} was a terminal: restore with --shell-job`, { pid: p.pid });
      }
      checkFd(f);
    }
  }
}

const CAP_SYS_ADMIN = 21n;
const CAP_CHECKPOINT_RESTORE = 40n;

/**
 * Giving a process its saved pid (clone3 set_tid) needs CAP_CHECKPOINT_RESTORE
 * or CAP_SYS_ADMIN; without them a restore could only hand out what the user
 * has anyway, so it is refused at once with the reason.
 */
function requireRestorePrivileges(): void {
  const eff = readStatus(process.pid).capEff;
  const has = (cap: bigint) => ((eff >> cap) & 1n) === 1n;
  if (!has(CAP_CHECKPOINT_RESTORE) && !has(CAP_SYS_ADMIN)) {
    throw new CkptError('PERMISSION', `restore needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (to give processes their saved pids); run it as root`);
  }
}

/**
 * Kill and reap what a failed restore created (processes, helpers and the
 * threads cloned into them). Threads are reaped first, newest first: a group
 * leader's exit is reported only once its other threads are gone.
 */
function killAll(tids: number[]): void {
  for (const tid of tids) tryKill(tid, SIG.KILL);
  for (const tid of [...tids].reverse()) { try { wait4(tid); } catch { /* already reaped */ } }
}

/** A process ckpt made only for a moment, to give an orphaned session or group its id. */
interface Helper { proc: RestoredProcess; nspid: number; parent: RestoredProcess }


export function restoreSync(opts: RestoreOptions): RestoreResult {
  const t0 = uptimeMs();
  const log = opts.log ?? (() => {});
  const times = new Timings((step) => { opts.onProgress?.({ phase: step, done: 1, total: 1 }); pauseAfterStep(); });
  const img = loadImage(opts.dir);
  requireRestorePrivileges();
  fault('restore:load');
  const plan = planTree(img.processes);
  const container = loadContainer(img.image.records);
  if (container && !plan.container) throw new CkptError('BAD_IMAGE', `bad image: a container record, but the root process is pid ${plan.root.pid}, not 1`);
  preflight(img, plan, opts);
  const { reader: pages, verdict, chunks } = openPages(img);
  times.mark('load');
  const created: number[] = [];
  const files = new FileTable();
  const shmem = new SharedMemory(img.processes);
  files.mappedMemfd = (major, minor, ino) => shmem.lookup(major, minor, ino);
  const procs = new Map<TreeNode, RestoredProcess>();
  try {
    files.addPipes(img.processes.flatMap((p) => p.pipes));
    files.addSockets(img.processes.flatMap((p) => p.sockets), log);
    const seed = spawnSeed();
    created.push(seed);
    fault('restore:seed');
    const { tracee: rootT, tramp, pidfd } = growFromSeed(seed, plan, created, container?.nsFlags ?? CONTAINER_NS_FLAGS);
    times.mark('clone');
    fault('restore:clone');
    const ctx: RestoreContext = {
      tramp, pagesFd: pages.fd, compressed: chunks && { reader: pages, table: chunks }, files, shmem, meanwhile: verdict.meanwhile,
      attachShm: container && ((t, v) => attachShmVma(t, {
        start: v.fields.start, end: v.fields.end, pgoff: v.fields.pgoff, prot: v.fields.prot, shmid: v.fields.ino,
        size: Number(container.ipc.shm.find((s) => s.fields.id === v.fields.ino)?.fields.size ?? v.fields.end - v.fields.start),
      })),
      detach: opts.detach ?? false, log,
    };
    const root = new RestoredProcess(rootT, plan.root.proc, ctx, pidfd);
    procs.set(plan.root, root);
    // A container's init: private mounts and its own /proc, its uts names, its SysV IPC objects.
    if (container) restoreContainer(root.target, container);
    else if (plan.container) setupContainerMounts(root.target);
    const sessions = new Sessions(plan, procs, created);
    sessions.born(plan.root);
    // Each process: its memory first, then its children (who inherit what they shared with it).
    const grow = (node: TreeNode) => {
      const p = procs.get(node)!;
      if (!node.zombie) {
        p.memory();
        p.takeTerminal();
      }
      for (const child of node.children) {
        const group = sessions.groupAtBirth(child);
        const creator = procs.get(node)!;
        procs.set(child, new RestoredProcess(sessions.clone(child), child.proc, ctx, creator.pidfdNumber));
        sessions.born(child, group);
        grow(child);
      }
    };
    grow(plan.root);
    if (container) finishContainer(root.target, container);
    // Every process's mappings and pages (and the processes themselves).
    times.mark('pages');
    sessions.joinGroups();
    for (const node of plan.order) if (!node.zombie) procs.get(node)!.setForeground();
    sessions.endHelpers();
    for (const node of plan.order) if (node.zombie) becomeZombie(procs.get(node)!);
    times.mark('groups');
    const live = plan.order.filter((n) => !n.zombie).map((n) => procs.get(n)!);
    // Every open file description of the tree first: an fd may share one made for another process.
    for (const dependent of [false, true]) for (const p of live) openFds(p.image.pid, p.image.fds, files, dependent);
    for (const p of live) p.rest(created);
    files.closePipes();
    for (const p of live) p.lockDown();
    fault('restore:creds');
    times.mark('rebuild');
    // Nothing runs until every page is known good.
    verdict.wait();
    times.mark('verify');
    fault('restore:verify');
    for (const p of live) p.finish();
    fault('restore:detach');
    for (const p of [...live].reverse()) p.detach();
    releaseSockets(img.processes.flatMap((p) => p.sockets), log);
    const host = root.host;
    if (opts.pidfile) fs.writeFileSync(opts.pidfile, `${host}\n`);
    log(`restore of pid ${plan.root.pid}${plan.container ? ` (a container; host pid ${host})` : ''}: ${live.length} process(es); ${times.format()}`);
    return { pid: host, pids: plan.order.map((n) => procs.get(n)!.host), ms: uptimeMs() - t0, timings: times.record() };
  } catch (e) {
    files.abort();
    for (const p of procs.values()) p.close();
    killAll(created);
    throw e;
  } finally {
    files.close();
    shmem.close();
    pages.close();
  }
}

/**
 * Seize the seed, give it a trampoline at an address free in every process
 * of the tree, clone the root out of it (with its saved pid, or as PID 1 of
 * fresh namespaces for a container), drop the seed.
 */
function growFromSeed(seed: number, plan: TreePlan, created: number[], nsFlags: number): { tracee: Tracee; tramp: number; pidfd: number } {
  const seedT = Tracee.seize(seed, PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACECLONE | PTRACE_O.TRACEFORK | PTRACE_O.EXITKILL);
  seedT.interrupt();
  waitEventStop(seedT);
  const hostX = seedT.getXstate();
  for (const node of plan.order) {
    for (const th of node.proc.threads) {
      checkXstate({ xfeatures: th.xfeatures, xstate_bv: th.xstateBv, size: th.xstate.length }, xsaveFeatures(hostX).xfeatures, hostX.length);
    }
  }
  const remote = new RemoteCaller(seedT, BigInt(SEED_GADGET), 'int3', seedT.getRegs());
  const mem = new TraceeMemory(seed);
  try {
    const taken: Range[] = [...plan.order.flatMap((n) => n.proc.vmas.map((v): Range => [v.fields.start, v.fields.end])),
      ...readMaps(seed).map((v): Range => [v.start, v.end])];
    const tramp = findHole(TRAMPOLINE_SIZE, taken);
    remote.call(NR.mmap, [tramp, PAGE_SIZE, PROT.READ | PROT.EXEC, MAP.PRIVATE | MAP.ANONYMOUS | MAP.FIXED_NOREPLACE, -1, 0], 'mmap(trampoline)');
    remote.call(NR.mmap, [tramp + PAGE_SIZE, TRAMPOLINE_SIZE - PAGE_SIZE, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS | MAP.FIXED_NOREPLACE, -1, 0], 'mmap(scratch)');
    mem.write(tramp, GADGET_BYTES);
    mem.write(tramp + BATCH_OFFSET, BATCH_CODE);
    // A pidfd of ckpt for the root to inherit: from a fresh pid namespace it could not open one.
    const pidfd = remote.call(NR.pidfd_open, [getpid(), 0], 'pidfd_open(ckpt)');
    // clone_args and set_tid must be in the caller's own memory. A container's
    // init is PID 1 of its new namespace: no set_tid needed.
    const root = plan.root.proc;
    const setTidAddr = tramp + PAGE_SIZE;
    const argsAddr = setTidAddr + 64;
    const setTid = Buffer.alloc(8);
    setTid.writeInt32LE(root.pid, 0);
    mem.write(setTidAddr, setTid);
    mem.write(argsAddr, encodeCloneArgs({
      // With CLONE_PARENT the child's exit signal is the seed's (SIGCHLD): clone3 wants 0 here.
      flags: BigInt(CLONE.PARENT | (plan.container ? nsFlags : 0)), exit_signal: 0n,
      set_tid: plan.container ? 0n : BigInt(setTidAddr), set_tid_size: plan.container ? 0n : 1n,
    }));
    const events = { children: [] as number[] };
    const r = remote.raw(NR.clone3, [argsAddr, CLONE_ARGS_SIZE], events);
    if (r === BigInt(-E.EEXIST)) throw new CkptError('PID_IN_USE', `pid ${root.pid} is in use`, { pid: root.pid });
    if (r < 0n) throw new CkptError('SYSCALL', `remote clone3(${plan.container ? 'new namespaces' : `set_tid=${root.pid}`}) failed: errno ${-r}`, { pid: seed, syscall: 'clone3' });
    const child = events.children[0] ?? Number(r);
    created.push(child);
    const childT = Tracee.adopt(child);
    waitEventStop(childT);
    return { tracee: childT, tramp, pidfd };
  } finally {
    mem.close();
    tryKill(seed, SIG.KILL);
    try { wait4(seed); } catch { /* reaped */ }
    created.splice(created.indexOf(seed), 1);
  }
}

/**
 * Sessions and process groups (restore/tree.ts says why in this order):
 * who creates each process, setsid as each is born, helpers for sessions and
 * groups whose leader is gone, setpgid once all exist.
 */
class Sessions {
  private helpers = new Map<string, Helper>();
  private groupHelpers: Helper[] = [];
  /** Each process's process group right now (-1: the one the root was restored into). */
  private group = new Map<TreeNode, number>();

  constructor(private plan: TreePlan, private procs: Map<TreeNode, RestoredProcess>, private created: number[]) {}

  /** A process just created: a session leader makes its session before it creates anyone. */
  born(node: TreeNode, creatorGroup = node.parent ? this.group.get(node.parent)! : -1): void {
    this.group.set(node, creatorGroup);
    if (node.sid === node.pid) {
      this.procs.get(node)!.remote.call(NR.setsid, [], 'setsid');
      this.group.set(node, node.pid);
    }
  }

  /** Clone `child`: by its parent, or (its session's leader being gone) by a helper holding the session's id. */
  clone(child: TreeNode): Tracee {
    const parent = this.procs.get(child.parent!)!;
    if (child.sid === child.pid || child.sid === child.parent!.sid || !this.plan.orphanSessions.has(child.sid)) {
      const t = parent.cloneChild(child.pid, child.proc.task.exit_signal);
      this.created.push(t.tid);
      return t;
    }
    // With CLONE_PARENT the child's exit signal is the helper's.
    const helper = this.sessionHelper(parent, child.sid, child.proc.task.exit_signal);
    const t = helper.cloneChild(child.pid, 0, CLONE.PARENT);
    this.created.push(t.tid);
    return t;
  }

  /** The group a just-cloned child starts in. */
  groupAtBirth(child: TreeNode): number {
    if (child.sid !== child.pid && child.sid !== child.parent!.sid && this.plan.orphanSessions.has(child.sid)) return child.sid;
    return this.group.get(child.parent!)!;
  }

  private sessionHelper(parent: RestoredProcess, sid: number, exitSignal: number): RestoredProcess {
    const key = `${parent.host}:${sid}`;
    let h = this.helpers.get(key);
    if (!h) {
      const tracee = parent.cloneChild(sid, exitSignal);
      this.created.push(tracee.tid);
      const proc = parent.forkOf(tracee);
      proc.remote.call(NR.setsid, [], `setsid (helper for session ${sid})`);
      h = { proc, nspid: sid, parent };
      this.helpers.set(key, h);
    }
    return h.proc;
  }

  /** Every process in its saved group: leaders make theirs, then members join. */
  joinGroups(): void {
    const outer = this.plan.root.pgid === this.plan.root.pid ? -1 : this.plan.root.pgid;
    const want = (n: TreeNode) => (n.pgid === outer ? -1 : n.pgid);
    for (const n of this.plan.order) {
      if (want(n) !== n.pid || this.group.get(n) === n.pid) continue;
      this.procs.get(n)!.remote.call(NR.setpgid, [0, 0], 'setpgid(0, 0)');
      this.group.set(n, n.pid);
    }
    for (const n of this.plan.order) {
      if (this.group.get(n) === want(n)) continue;
      if (want(n) === -1) throw new CkptError('UNSUPPORTED', `not supported yet: pid ${n.pid} left the root's process group for another and must come back to it`, { pid: n.pid });
      const p = this.procs.get(n)!;
      if (this.plan.orphanGroups.has(n.pgid) && !this.groupHelpers.some((h) => h.nspid === n.pgid)) {
        const tracee = p.cloneChild(n.pgid, SIG.CHLD);
        this.created.push(tracee.tid);
        const proc = p.forkOf(tracee);
        proc.remote.call(NR.setpgid, [0, 0], `setpgid (helper for group ${n.pgid})`);
        this.groupHelpers.push({ proc, nspid: n.pgid, parent: p });
      }
      p.remote.call(NR.setpgid, [0, n.pgid], `setpgid(0, ${n.pgid})`);
      this.group.set(n, n.pgid);
    }
  }

  /** Helpers exit (untraced) and their parents reap them. */
  endHelpers(): void {
    for (const h of [...this.helpers.values(), ...this.groupHelpers]) {
      h.proc.exitNow(0);
      h.parent.remote.call(NR.wait4, [h.nspid, 0, WALL, 0], `wait4(helper ${h.nspid})`);
      this.created.splice(this.created.indexOf(h.proc.host), 1);
    }
    this.helpers.clear();
    this.groupHelpers = [];
  }
}

/** A zombie: it exits now with its saved status, untraced; its parent will reap it. */
function becomeZombie(p: RestoredProcess): void {
  const status = p.image.task.exit_code;
  if (W.ifSignaled(status)) p.killSelfNow(W.termSig(status));
  else p.exitNow(W.exitStatus(status));
  for (let i = 0; i < 500; i++) {
    if (pidState(p.host) === 'Z') return;
    sleepMs(2);
  }
  throw new CkptError('INTERNAL', `pid ${p.image.pid} did not become a zombie again`, { pid: p.host });
}

/** Wait for a restored process (ckpt is its parent) and return a shell-style status. */
export function waitForExit(pid: number): number {
  for (;;) {
    const { status } = wait4(pid);
    if (W.ifExited(status)) return W.exitStatus(status);
    if (W.ifSignaled(status)) return 128 + W.termSig(status);
  }
}
