/**
 * Dump a process tree: freeze every thread of every process, read what /proc
 * and ptrace give, ask each process (remote syscalls) what only it knows,
 * stream the pages, write the image, then kill the tree or let it run on.
 * Any failure puts every process back as it was.
 */
import os from 'node:os';
import { CkptError } from '../errors.js';
import {
  ImageWriter, PagesWriter, createImageDir, commitImageDir, abortImageDir, encode,
} from '../image/index.js';
import { readChildren, readSmaps, readStatus, readTids, residentBytes, Pagemap, type SmapsVma } from '../proc/index.js';
import { SIG } from '../sys/constants.js';
import { kill, startWriteback, tryKill, wait4 } from '../sys/syscalls.js';
import { VERSION } from '../version.js';
import { VMA, VMA_PATH, VmaKind, vmaFields, type VmaPlan } from '../kinds/vma.js';
import { PAGE_RUNS, COW_RUNS, pagesIn, selectPages, selectPagesCow, encodeRuns, type Run } from '../kinds/pages.js';
import { PagePump } from './page-pump.js';
import { prepareHelper } from '../helper-thread.js';
import { pinBeside, unpinAll } from '../ptrace/cpu-pin.js';
import { ChunkPump, COMPRESS_WORKER_MIN_BYTES } from './compress-pump.js';
import { PAGE_CHUNKS, Codec, parseCodec, encodeChunks, type Chunk } from '../kinds/page-chunks.js';
import { forkSnapshot, followsFork, reapLeftoverSnapshots, SNAPSHOT_MIN_BYTES, type Snapshot } from './snapshot.js';
import { PreCopy } from './precopy.js';
import type { TraceeMemory } from '../ptrace/memory.js';
import { FdKind, dumpPipes, linkSharedFds } from '../kinds/files.js';
import { dumpSockets, encodeSocket, type SocketDump } from '../kinds/sockets/index.js';
import { ptyMasterIndexes } from '../kinds/tty.js';
import { pendingInotifyBytes } from '../kinds/inotify.js';
import { checkDumpablePid } from './validate.js';
import { freezeTree, releaseTree, type TreeProcess } from './tree.js';
import { collectProcess, processRecord, readFiles, type Collected, type ProcessFiles } from './process.js';
import type { SavedPipe } from '../kinds/pipes.js';
import { checkTreeNamespaces } from '../kinds/namespaces.js';
import { dumpContainer, encodeContainer } from '../kinds/container.js';
import { Timings } from '../timings.js';
import { fault, pauseAfterStep } from '../fault.js';
import { uptimeMs } from '../clock.js';

export interface DumpOptions {
  /** The root of the tree to dump: it and all its descendants, with all their threads. */
  pid: number;
  /** Where the image goes: DIR must not exist, be empty, or (with `force`) hold an image. */
  dir: string;
  /** Let the process run on after the dump (default: it is killed). */
  leaveRunning?: boolean;
  /**
   * With `leaveRunning`, how a large process's short freeze is had: 'copy' (the
   * default) copies its memory while it runs and, frozen, only what it wrote
   * meanwhile (dump/precopy.ts); 'fork' forks a copy-on-write snapshot while
   * frozen and copies from it (dump/snapshot.ts). 'copy' falls back to 'fork'
   * where it cannot be done.
   */
  snapshot?: 'copy' | 'fork';
  /**
   * Without `leaveRunning`: wait until every killed process has exited (the
   * default). `ckpt dump -D`, which exits at once, returns when SIGKILL is
   * sent: the kernel frees their memory meanwhile (~100 ms for 1 GiB), and
   * ckpt's exit hands them back to their parents (`--stream` waits: ckpt lives
   * on while it packs, and their parents would hear of it only then).
   */
  waitForExit?: boolean;
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

/**
 * Before the freeze: each process's state letter and smaps (slow to read, no
 * freeze needed). `rootState`: the root's, just read.
 */
function readEarly(root: number, rootState: string): Map<number, { state: string; smaps?: SmapsVma[] }> {
  const out = new Map<number, { state: string; smaps?: SmapsVma[] }>();
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    if (out.has(pid)) continue;
    try {
      const state = pid === root ? rootState : readStatus(pid).state;
      out.set(pid, { state, smaps: state === 'Z' ? undefined : readSmaps(pid) });
      if (state === 'Z') continue;
      for (const tid of readTids(pid)) {
        try { queue.push(...readChildren(pid, tid)); } catch { /* the thread exited meanwhile */ }
      }
    } catch (e) {
      if (pid === root) throw e;
    }
  }
  return out;
}

/** Where a VMA's pages come from: the frozen process or its snapshot. */
interface Source { pid: number; mem: TraceeMemory }

export function dumpSync(opts: DumpOptions): DumpResult {
  const t0 = uptimeMs();
  const log = opts.log ?? (() => {});
  const times = new Timings((step) => { opts.onProgress?.({ phase: step, done: 1, total: 1 }); pauseAfterStep(); });
  const root = opts.pid;
  const codec = parseCodec(opts.compress ?? 'none');
  if (opts.snapshot !== undefined && opts.snapshot !== 'copy' && opts.snapshot !== 'fork') throw new CkptError('USAGE', `--snapshot ${String(opts.snapshot)}: expected copy or fork`);
  if (opts.snapshot !== undefined && !opts.leaveRunning) throw new CkptError('USAGE', '--snapshot is for a dump that leaves the process running (-R)');
  const { status: rootStatus } = checkDumpablePid(root);
  // A compressed copy's helper boots while the tree is read and frozen, when the root alone
  // says it will need one (its smaps, read next, take ~28 ms for 1 GiB).
  if (codec !== Codec.NONE && ((rootStatus.kB.VmRSS ?? 0) + (rootStatus.kB.VmSwap ?? 0)) * 1024 >= COMPRESS_WORKER_MIN_BYTES) prepareHelper();
  const early = readEarly(root, rootStatus.state);
  // The image directory, its writers and the page copier are made before the
  // freeze: none of it needs the tree stopped, and all of it would lengthen the stop.
  let partial: string | undefined = createImageDir(opts.dir, { force: opts.force });
  let copier: PagePump | ChunkPump | undefined;
  // dump -R of a large process: its memory copied while it runs (dump/precopy.ts).
  let ahead: PreCopy | undefined;
  let tree: TreeProcess[];
  let writer: ImageWriter;
  let pagesWriter: PagesWriter;
  // Their fds, closed on a failure once nothing writes to them (copier.close()).
  const imageFiles: { discard(): void }[] = [];
  // Resident and swapped memory decides how to copy (the exact page count comes later).
  const resident = [...early.values()].reduce((n, e) => n + (e.smaps ?? []).reduce((m, v) => m + residentBytes(v), 0), 0);
  const onCopied = opts.onProgress && ((done: number) => opts.onProgress!({ phase: 'pages', done, total: resident }));
  try {
    writer = ImageWriter.create(partial, { utsRelease: os.release(), tool: `ckpt ${VERSION}` });
    imageFiles.push(writer);
    pagesWriter = PagesWriter.create(partial);
    imageFiles.push(pagesWriter);
    copier = codec === Codec.NONE ? new PagePump(pagesWriter, resident, onCopied) : new ChunkPump(pagesWriter, codec, resident, onCopied);
    times.mark('validate');
    const rootEarly = early.get(root);
    // A stopped process would be let go by the short freeze that makes its userfaultfd.
    if (opts.leaveRunning && (opts.snapshot ?? 'copy') === 'copy' && copier instanceof PagePump && resident >= SNAPSHOT_MIN_BYTES && rootEarly?.smaps && ![...early.values()].some((e) => e.state === 'T' || e.state === 't')) {
      ahead = PreCopy.run(root, rootEarly.smaps, copier, SNAPSHOT_MIN_BYTES);
      times.mark('ahead');
    }
    tree = freezeTree(root);
  } catch (e) {
    ahead?.close();
    copier?.close();
    for (const f of imageFiles) f.discard();
    abortImageDir(opts.dir);
    throw e;
  }
  times.mark('freeze');
  // --leave-running: a copy-on-write snapshot of each process, by its pid.
  const snapshots = new Map<number, Snapshot>();
  let released = false;
  let sockets: SocketDump | undefined;
  try {
    fault('dump:freeze');
    // A snapshot child left by a ckpt that died is a zombie its parent reaps now, not a child to dump.
    for (const p of [...tree]) {
      const zombies = tree.filter((k) => k.zombie && k.ppid === p.pid).map((k) => k.pid);
      if (p.zombie || zombies.length === 0) continue;
      for (const gone of reapLeftoverSnapshots(p.tasks[0], zombies)) tree.splice(tree.findIndex((k) => k.pid === gone), 1);
    }
    // A plain tree in ckpt's namespaces, or a whole container: anything else is refused here.
    // (A zombie has no namespaces left.)
    const ns = checkTreeNamespaces(root, tree.filter((p) => !p.zombie).map((p) => p.pid));
    // Parents come before children: each child's parent pid, as the namespace sees it, is known by then.
    const nsOf = new Map<number, number>();
    // A process that will be forked for a snapshot keeps its remote session open until the fork.
    const snapshotting = (opts.leaveRunning ?? false) && resident >= SNAPSHOT_MIN_BYTES;
    const procs: Collected[] = tree.map((p) => {
      const state = early.get(p.pid)?.state ?? 'S';
      // A process that will not run on makes its remote calls on ckpt's CPU (ptrace/cpu-pin.ts).
      if (!opts.leaveRunning && !p.zombie) pinBeside(p.pid);
      const c = collectProcess(p, nsOf, state, early.get(p.pid)?.smaps, { container: ns.container, keepRemote: snapshotting && state !== 'T' });
      nsOf.set(c.pid, c.nspid);
      return c;
    });
    // A container's own state: uts names and SysV IPC objects (read before a snapshot
    // fork attaches its shm segments once more).
    const container = ns.container ? dumpContainer(root) : undefined;
    const live = procs.filter((c) => c.live);
    // The tree's files, pipes and sockets: read while a snapshot is forked, if there is one.
    const files = new Map<number, ProcessFiles>();
    let pipes = new Map<number, SavedPipe[]>();
    let filesRead = false;
    const readTreeFiles = () => {
      // A pty slave is the tree's own if any process of the tree holds its master.
      const ptyMasters = new Set(live.flatMap((c) => [...ptyMasterIndexes(c.pid)]));
      for (const c of live) files.set(c.pid, readFiles(c.pid, { shellJob: opts.shellJob ?? false, ptyMasters }));
      const fdSets = live.map((c) => ({ pid: c.pid, nspid: c.nspid, fds: files.get(c.pid)!.fds }));
      linkSharedFds(fdSets);
      pipes = dumpPipes(fdSets);
      // Events pending on an inotify fd are not saved (reading them would take them from the process).
      for (const { pid, fds } of fdSets) {
        for (const f of fds) {
          if (f.anon?.kind !== 'inotify') continue;
          const bytes = pendingInotifyBytes(pid, f.fields.fd);
          if (bytes > 0) log(`warning: fd ${f.fields.fd} of pid ${pid}: ${bytes} bytes of inotify events pending (at least one event) are dropped`);
        }
      }
      sockets = dumpSockets(fdSets.flatMap((p) => p.fds.filter((f) => f.fields.kind === FdKind.SOCKET).map((f) => ({ pid: p.pid, fd: f.fields.fd, ino: f.fields.ino }))),
        { tcpEstablished: opts.tcpEstablished, extUnixSk: opts.extUnixSk, log });
      filesRead = true;
    };
    // /proc and ptrace reads and the remote syscalls of every process.
    times.mark('collect');
    if (!snapshotting) {
      readTreeFiles();
      times.mark('files');
      fault('dump:proc');
    }

    // Per process, per VMA: the runs to save and the runs shared copy-on-write with the parent.
    const runs = new Map<number, Run[][]>();
    const cows = new Map<number, (Run[] | undefined)[]>();
    const byPid = new Map(live.map((c) => [c.pid, c]));
    const pmBuf = Buffer.alloc(64 * 1024 * 8);
    const pmBufParent = Buffer.alloc(64 * 1024 * 8);
    // A shared object (MAP_SHARED anonymous memory) mapped by several VMAs is saved once.
    const sharedSeen = new Set<string>();
    // Where a process's pages are read: its snapshot if it has one, else the frozen process.
    const sourceOf = (c: Collected): Source => snapshots.get(c.pid) ?? { pid: c.pid, mem: c.node.tasks[0].memory() };
    const select = (c: Collected, which: number[]) => {
      const plans = c.live!.plans;
      const mine = runs.get(c.pid) ?? runs.set(c.pid, new Array(plans.length)).get(c.pid)!;
      const cow = cows.get(c.pid) ?? cows.set(c.pid, new Array(plans.length)).get(c.pid)!;
      const parent = byPid.get(c.node.ppid);
      const pagemap = new Pagemap(sourceOf(c).pid);
      // Both sources are as the tree was frozen (a snapshot, or a process that is
      // still frozen or stopped): they share the frames the two processes shared.
      const parentMap = parent ? new Pagemap(sourceOf(parent).pid) : undefined;
      try {
        for (const i of which) {
          const plan = plans[i];
          if (plan.kind === VmaKind.SHARED_ANON) {
            const key = `${plan.vma.major}:${plan.vma.minor}:${plan.vma.ino}:${plan.vma.pgoff}:${plan.vma.end - plan.vma.start}`;
            if (sharedSeen.has(key)) { mine[i] = []; continue; }
            sharedSeen.add(key);
          }
          const twin = parentMap && inheritable(plan, parent!.live!.plans);
          if (twin) {
            const { own, cow: shared } = selectPagesCow(pagemap, parentMap, plan, pmBuf, pmBufParent);
            mine[i] = own;
            if (shared.length) cow[i] = shared;
          } else {
            mine[i] = selectPages(pagemap, plan, pmBuf);
          }
        }
      } finally {
        pagemap.close();
        parentMap?.close();
      }
    };
    const planned = (c: Collected) => c.live!.plans;
    // Each VMA's record, made once the pump has finished (its writes, and a compressing worker's, are done).
    const vmaRecs = new Map<number, (() => Buffer)[]>(live.map((c) => [c.pid, new Array(planned(c).length)]));
    let pages = 0;
    // VMA i of process c, its saved pages at `offset` in pages.img.
    const recordVma = (c: Collected, i: number, saved: Run[], offset: number, crc: () => number, cow?: Run[]) => {
      const plan = planned(c)[i];
      const nr = pagesIn(saved);
      pages += nr;
      const kids = [encode(VMA_PATH, {}, plan.vma.path)];
      if (nr) kids.push(encode(PAGE_RUNS, {}, encodeRuns(saved)));
      if (cow) kids.push(encode(COW_RUNS, {}, encodeRuns(cow)));
      vmaRecs.get(c.pid)![i] = () => encode(VMA, vmaFields(plan, nr ? offset : 0, nr, crc()), kids);
    };
    const copyVma = (c: Collected, i: number, from: Source) => {
      const mine = runs.get(c.pid)![i];
      const nr = pagesIn(mine);
      const { vma } = planned(c)[i];
      // Private pages another process maps too (smaps counts them per VMA; in a private file
      // mapping, the file's pages count too) are read in place (PagePump.copy). A MAP_SHARED
      // VMA's pages are the file's: a pin unshares none.
      const shared = snapshots.has(c.pid) || (!vma.shared && (vma.fields.Shared_Clean ?? 0) + (vma.fields.Shared_Dirty ?? 0) > 0);
      const { offset, crc } = nr ? copier!.copy(from.pid, from.mem, mine, vma.prot, shared) : { offset: 0, crc: () => 0 };
      recordVma(c, i, mine, offset, crc, cows.get(c.pid)?.[i]);
      if (nr) fault('dump:pages');
    };
    const all = (c: Collected) => planned(c).map((_, i) => i);
    // --leave-running: copy what a fork does not carry while frozen, then fork
    // a copy-on-write snapshot of every process, let the tree run, and select
    // and copy the rest from the snapshots.
    if (snapshotting) {
      // Copied ahead: only what was written since goes again, now.
      const aheadProc = ahead && live.find((c) => c.pid === ahead!.pid);
      if (ahead && aheadProc) {
        for (const { index, runs: saved, offset, crc } of ahead.settle(planned(aheadProc), aheadProc.node.tasks[0].memory(), pagesWriter.fd)) {
          recordVma(aheadProc, index, saved, offset, crc);
        }
      }
      const todo = (c: Collected) => all(c).filter((i) => !vmaRecs.get(c.pid)![i]);
      const unforked = new Map(live.map((c) => [c, todo(c).filter((i) => !followsFork(planned(c)[i]))]));
      for (const c of live) select(c, unforked.get(c)!);
      for (const c of live) unforked.get(c)!.forEach((i) => copyVma(c, i, sourceOf(c)));
      // What is left of the process copied ahead, if little, is copied now rather than forked;
      // not if it has children in the tree: theirs are compared with its pages as frozen.
      const forkable = (c: Collected) => todo(c).reduce((n, i) => n + residentBytes(planned(c)[i].vma), 0);
      if (aheadProc && forkable(aheadProc) < SNAPSHOT_MIN_BYTES && !live.some((c) => c.node.ppid === aheadProc.pid)) {
        const left = todo(aheadProc);
        select(aheadProc, left);
        left.forEach((i) => copyVma(aheadProc, i, sourceOf(aheadProc)));
      }
      times.mark('frozen-copy');
      // A process stopped by a signal stays stopped after the detach: read from it directly.
      const running = live.filter((c) => c.state !== 'T' && todo(c).length > 0);
      for (const c of running) {
        // The first fork's page-table copy is long: the files are read meanwhile, on the other core.
        const snap = forkSnapshot(c.node.tasks[0], c.live!.remote.gadget, filesRead ? undefined : readTreeFiles);
        if (!snap) break;
        snapshots.set(c.pid, snap);
      }
      if (!filesRead) readTreeFiles();
      times.mark('fork');
      fault('dump:proc');
      if (snapshots.size === running.length) {
        releaseTree(tree);
        released = true;
        for (const c of live) if (c.state === 'T') kill(c.pid, SIG.STOP);
        times.mark('thaw');
        if (ahead) {
          ahead.writeBack(pagesWriter);
          ahead.close();
          times.mark('unprotect');
        }
      } else {
        // One fork failed: copy everything from the frozen tree, whose stacks hold no frame of ckpt's then.
        for (const c of running) {
          const snap = snapshots.get(c.pid);
          if (!snap) continue;
          snap.discard(c.node.tasks[0]);
          c.node.tasks[0].leaveRemote();
        }
        snapshots.clear();
      }
    }
    // Every process's pages are chosen before any is copied: process_vm_readv
    // pins what it reads, and pinning a page shared copy-on-write unshares it.
    const rest = new Map(live.map((c) => [c, all(c).filter((i) => !vmaRecs.get(c.pid)![i])]));
    for (const c of live) select(c, rest.get(c)!);
    times.mark('select');
    // The first write starts glibc's AIO thread, which would inherit ckpt's pin for good:
    // pages are copied unpinned.
    unpinAll();
    for (const c of live) rest.get(c)!.forEach((i) => copyVma(c, i, sourceOf(c)));
    const chunks: Chunk[] | void = copier.finish();
    for (const snap of snapshots.values()) snap.discard();
    snapshots.clear();
    ahead?.writeBack(pagesWriter);
    ahead?.close();
    times.mark('pages');
    // pages.img on its way to the disk while the records are made (tmpfs ignores it).
    startWriteback(pagesWriter.fd);
    for (const c of procs) writer.add(processRecord(c, files.get(c.pid), (vmaRecs.get(c.pid) ?? []).map((vma) => vma()), pipes.get(c.pid) ?? [], sockets!.ofPid(c.pid).map(encodeSocket)));
    if (container) writer.add(encodeContainer(container));
    if (chunks) writer.add(encode(PAGE_CHUNKS, { codec, count: chunks.length }, encodeChunks(chunks)));
    fault('dump:write');
    // ckpt.img too before the first fsync: that one then commits the metadata of both
    // files in one journal transaction, and the second finds little left to do.
    writer.end();
    startWriteback(writer.fd);
    pagesWriter.close();
    writer.close();
    fault('dump:commit');
    commitImageDir(opts.dir);
    partial = undefined;
    times.mark('write');
    if (opts.leaveRunning) {
      sockets!.release();
      if (!released) {
        releaseTree(tree);
        // A process that was stopped (SIGSTOP) stays stopped.
        for (const c of live) if (c.state === 'T') kill(c.pid, SIG.STOP);
      }
    } else {
      // Its exit (freeing every page) need not share ckpt's CPU.
      unpinAll();
      killTree(tree, opts.waitForExit ?? true);
      sockets!.finish();
    }
    times.mark('finish');
    const threads = live.reduce((n, c) => n + c.node.tasks.length, 0);
    const calls = live.reduce((n, c) => n + c.live!.remote.calls, 0);
    const chained = live.reduce((n, c) => n + c.live!.remote.chained, 0);
    const copiedAhead = ahead ? `, ${ahead.pages} copied while it ran (${ahead.rewritten} of them again, written meanwhile)` : '';
    log(`dump of pid ${root}: ${tree.length} process(es), ${threads} thread(s), ${pages} pages${copiedAhead}, ${calls} remote syscalls (${chained} in chains); ${times.format()}`);
    return { pids: tree.map((p) => p.pid), pages, bytes: pages * 4096, ms: uptimeMs() - t0, timings: times.record() };
  } catch (e) {
    ahead?.close();
    // Before the thaw, a snapshot's parent is reaped through the frozen main thread ckpt holds.
    for (const [pid, snap] of snapshots) snap.discard(released ? undefined : tree.find((p) => p.pid === pid)?.tasks[0]);
    sockets?.release();
    // Each process runs on with the CPUs it had.
    unpinAll();
    if (!released) releaseTree(tree);
    if (partial !== undefined) abortImageDir(opts.dir);
    throw e;
  } finally {
    copier?.close();
    // After a failure (closed already after a success).
    for (const f of imageFiles) f.discard();
    // A process that runs on may have been read through /proc/PID/mem after its release (dump/precopy.ts).
    for (const p of tree) for (const t of p.tasks) t.closeMemory();
    unpinAll();
  }
}

/**
 * The parent's VMA a child's VMA may have been inherited from by fork: one
 * of the same backing that covers it (VMAs split and merge after a fork), if any.
 */
function inheritable(plan: VmaPlan, parentPlans: VmaPlan[]): VmaPlan | undefined {
  if (plan.kind !== VmaKind.ANON && plan.kind !== VmaKind.FILE_PRIVATE) return undefined;
  const v = plan.vma;
  return parentPlans.find((p) => p.kind === plan.kind && p.vma.start <= v.start && p.vma.end >= v.end
    && p.vma.ino === v.ino && p.vma.path === v.path && (plan.kind === VmaKind.ANON || p.vma.pgoff + (v.start - p.vma.start) === v.pgoff));
}

/** Kill every process of the dumped tree and (`reap`) reap what ckpt traces. */
function killTree(tree: TreeProcess[], reap: boolean): void {
  for (const p of tree) for (const t of p.tasks) t.closeMemory();
  for (const p of tree) if (!p.zombie) tryKill(p.pid, SIG.KILL);
  if (!reap) return;
  // A group leader's exit is reported only after its other threads are reaped.
  for (const p of [...tree].reverse()) {
    for (const t of [...p.tasks.slice(1), ...p.tasks.slice(0, 1)]) { try { wait4(t.tid); } catch { /* reaped */ } }
  }
}
