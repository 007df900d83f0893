/**
 * `dump -R` of a large process without a fork (architecture.md §5.16): its
 * private anonymous memory goes into pages.img while it runs, the kernel
 * noting which pages it writes meanwhile; then the tree is frozen, and of
 * those VMAs only the pages written since are copied again, over their first
 * copy. The freeze no longer holds the fork's copy of every page table.
 *
 * The noting is write-protection by a userfaultfd in async mode (Linux 6.7): a
 * write to a protected page only clears its protection, the process never
 * waits for ckpt, and PAGEMAP_SCAN's PAGE_IS_WRITTEN names the pages written.
 * The process makes the userfaultfd (a remote call in a short freeze: it
 * belongs to the mm of whoever makes it); ckpt takes it with pidfd_getfd and
 * closes the process's copy at once, so that closing ckpt's copy, or ckpt's
 * death, takes every registration and protection away again.
 *
 * A VMA whose saved pages are not the same set at the freeze (it was split,
 * moved, grew pages or lost some) is saved the usual way then.
 */
import { CkptError } from '../errors.js';
import { checkAbort, diePoint } from '../fault.js';
import { close, pidfdGetfd, pidfdOpen, PAGE_IS, pagemapScan, processVmIo, punchHole } from '../sys/syscalls.js';
import { mapNative, unmapNative, type NativeMemory } from '../sys/libc.js';
import { uffdApiWpAsync, uffdRegister, uffdWriteProtect, UFFD_USER_MODE_ONLY } from '../sys/userfaultfd.js';
import { E } from '../sys/errno.js';
import { NR } from '../sys/nr.js';
import { O, PAGE_SIZE, PROT } from '../sys/constants.js';
import { Pagemap, readMaps, readStatus, residentBytes, type SmapsVma } from '../proc/index.js';
import { TraceeMemory } from '../ptrace/memory.js';
import { planVma, VmaKind, VM_FLAG_BITS, type VmaPlan } from '../kinds/vma.js';
import { pagesCrc, pagesIn, selectPages, type Run } from '../kinds/pages.js';
import { freezeTree, releaseTree } from './tree.js';
import { syscallGadget } from './process.js';
import { readForced, type PagePump, type Copied } from './page-pump.js';
import type { PagesWriter } from '../image/index.js';

/** Smaller VMAs are copied while frozen: registering each costs more than copying it. */
const AHEAD_MIN_VMA = 1024 * 1024;
/**
 * Pages written meanwhile are read while frozen into a buffer of at most this
 * much, and written into pages.img once the tree runs again (a pwrite each:
 * ~12 us a page here, too slow for the freeze). Reading them scattered costs
 * ~6 us a page: at 16 MiB, about what a fork of 1 GiB costs the freeze. A
 * VMA with more than fits is saved the usual way (a snapshot fork).
 */
const MAX_WRITTEN_BYTES = 16 * 1024 * 1024;
/** A VMA in more pieces than this costs too many ioctls to protect: saved the usual way. */
const MAX_RUNS = 4096;
/** VmFlags of a VMA some userfaultfd already watches (missing, write-protect, minor). */
const UFFD_FLAGS = ['um', 'uw', 'ui'];

interface AheadVma { plan: VmaPlan; runs: Run[]; copied: Copied }

/** A VMA of the frozen process whose pages are in pages.img already: its runs, where they are, their CRC once the pump has finished. */
export interface Settled { index: number; runs: Run[]; offset: number; crc: () => number }

export class PreCopy {
  /** Pages copied while the process ran, and pages copied again while it was frozen. */
  pages = 0;
  rewritten = 0;

  /** The pages written meanwhile, read while frozen: where each goes in pages.img. */
  private written?: { buf: NativeMemory; places: [len: number, at: number][] };
  /** First copies saved again the usual way: their room in pages.img, given back after the thaw. */
  private dropped: [offset: number, len: number][] = [];

  private constructor(private uffd: number, readonly pid: number, private readonly vmas: AheadVma[]) {}

  /**
   * Copy the large private anonymous VMAs of process `pid` (its smaps as read
   * before: `vmas`) into `pump` while it runs, its writes noted from before
   * the first page is read. Undefined where it cannot be done (then fork as
   * before): no userfaultfd or no async write-protection, a seccomp filter
   * (the remote call might be refused), too little to copy.
   */
  static run(pid: number, vmas: readonly SmapsVma[], pump: PagePump, minBytes: number): PreCopy | undefined {
    const plans = vmas.filter((v) => v.end - v.start >= AHEAD_MIN_VMA && (v.prot & PROT.READ) && !v.vmFlags.some((f) => UFFD_FLAGS.includes(f)))
      .map((v) => planVma(pid, v))
      .filter((p): p is VmaPlan => p !== undefined && p.kind === VmaKind.ANON && (p.vmFlags & VM_FLAG_BITS.mg) === 0);
    const resident = plans.reduce((n, p) => n + residentBytes(p.vma), 0);
    if (resident < minBytes || readStatus(pid).seccomp !== 0) return undefined;
    const uffd = takeUserfaultfd(pid, vmas);
    if (uffd === undefined) return undefined;
    const ahead = new PreCopy(uffd, pid, []);
    try {
      // Registering a range that is no longer a whole VMA would split one until the close.
      const now = new Set(readMaps(pid).map((v) => `${v.start}-${v.end}`));
      if (!uffdApiWpAsync(uffd, pid)) {
        ahead.close();
        return undefined;
      }
      const mem = new TraceeMemory(pid);
      const pagemap = new Pagemap(pid);
      const buf = Buffer.alloc(64 * 1024 * 8);
      try {
        // Each VMA registered, then its pages protected, run by run (uffdWriteProtect says why).
        // A page that comes or goes meanwhile changes the VMA's runs: it is saved the usual way then.
        const armed: { plan: VmaPlan; runs: Run[] }[] = [];
        for (const plan of plans) {
          if (!now.has(`${plan.vma.start}-${plan.vma.end}`) || uffdRegister(uffd, plan.vma.start, plan.vma.end) !== 0) continue;
          const runs = selectPages(pagemap, plan, buf);
          if (runs.length && runs.length <= MAX_RUNS && runs.every(([a, n]) => uffdWriteProtect(uffd, a, a + n * PAGE_SIZE) === 0)) armed.push({ plan, runs });
        }
        diePoint('ahead');
        for (const { plan, runs } of armed) {
          checkAbort();
          const nr = pagesIn(runs);
          try {
            // Read as from a snapshot, through /proc/PID/mem: process_vm_readv would pin each page,
            // and a page shared copy-on-write with a child would be copied for it.
            ahead.vmas.push({ plan, runs, copied: pump.copy(pid, mem, runs, plan.vma.prot, true) });
            ahead.pages += nr;
          } catch (e) {
            // The process unmapped it meanwhile (its pages are then saved the usual way),
            // unless pages.img itself failed (ENOSPC...): the pump throws that again.
            pump.finish();
            if (e instanceof CkptError && e.code === 'INTERRUPTED') throw e;
          }
        }
        // Nothing of it may still be on its way into pages.img once the tree is frozen.
        pump.finish();
      } finally {
        pagemap.close();
        mem.close();
      }
      return ahead;
    } catch (e) {
      ahead.close();
      throw e;
    }
  }

  /**
   * With the process frozen: each VMA copied ahead that is still there with
   * the same saved pages, and where its pages are. The pages written since
   * are read now (writeBack() puts them over their first copy). `plans`: the
   * frozen process's VMAs; `mem`: its memory.
   */
  settle(plans: readonly VmaPlan[], mem: TraceeMemory, fd: number): Settled[] {
    const out: Settled[] = [];
    const pieces: [addr: number, len: number][] = [];
    const places: [len: number, at: number][] = [];
    let total = 0;
    const pagemap = new Pagemap(this.pid);
    const buf = Buffer.alloc(64 * 1024 * 8);
    try {
      for (const a of this.vmas) {
        const offset = a.copied.offset;
        const len = pagesIn(a.runs) * PAGE_SIZE;
        const drop = () => this.dropped.push([offset, len]);
        const index = plans.findIndex((p) => p.vma.start === a.plan.vma.start && p.vma.end === a.plan.vma.end && p.kind === a.plan.kind && p.vma.prot === a.plan.vma.prot);
        if (index < 0) { drop(); continue; }
        const runs = selectPages(pagemap, plans[index], buf);
        if (!sameRuns(runs, a.runs)) { drop(); continue; }
        const written = pagemapScan(pagemap.fd, a.plan.vma.start, a.plan.vma.end, { inverted: 0, all: PAGE_IS.WRITTEN, any: PAGE_IS.PRESENT | PAGE_IS.SWAPPED });
        const dirty = written?.reduce((n, [, bytes]) => n + bytes, 0);
        if (dirty === undefined || total + dirty > MAX_WRITTEN_BYTES) { drop(); continue; }
        const at = positionsIn(runs, written!);
        written!.forEach(([addr, bytes], k) => {
          pieces.push([addr, bytes]);
          places.push([bytes, offset + at[k]]);
        });
        total += dirty;
        this.rewritten += dirty / PAGE_SIZE;
        // Pages written again change the VMA's CRC: taken from the file once every write is in.
        const crc = dirty ? () => pagesCrc(fd, offset, len) : () => a.copied.crc();
        out.push({ index, runs, offset, crc });
      }
    } finally {
      pagemap.close();
    }
    if (total) {
      const into = mapNative(total);
      this.written = { buf: into, places };
      const got = processVmIo(false, this.pid, into, 0, pieces);
      if (got !== total) readForced(mem, into, 0, pieces, got);
    }
    return out;
  }

  /**
   * Once the tree runs again: the pages written meanwhile go over their first
   * copy, and first copies saved again the usual way give their room in
   * pages.img back (punching 1 GiB takes ~0.25 s here).
   */
  writeBack(pages: PagesWriter): void {
    for (const [offset, len] of this.dropped.splice(0)) punchHole(pages.fd, offset, len);
    const w = this.written;
    if (!w) return;
    this.written = undefined;
    try {
      let from = 0;
      for (const [len, at] of w.places) {
        pages.writeAt(w.buf.buf, from, len, at);
        from += len;
      }
    } finally {
      unmapNative(w.buf);
    }
  }

  /** Drop the userfaultfd: the kernel unregisters every VMA and clears what protection is left. */
  close(): void {
    if (this.written) unmapNative(this.written.buf);
    this.written = undefined;
    if (this.uffd < 0) return;
    close(this.uffd);
    this.uffd = -1;
  }
}

/**
 * A userfaultfd made by process `pid` in a short freeze of its tree, as ckpt's
 * fd; undefined if the process could not make one.
 */
function takeUserfaultfd(pid: number, vmas: readonly SmapsVma[]): number | undefined {
  // Opened first: nothing may stand between the process's userfaultfd() and its close().
  const pidfd = pidfdOpen(pid);
  try {
    const tree = freezeTree(pid);
    try {
      const task = tree.find((p) => p.pid === pid)?.tasks[0];
      if (!task) return undefined;
      const remote = task.enterRemote(syscallGadget(task, vmas));
      try {
        let theirs = remote.raw(NR.userfaultfd, [O.CLOEXEC | O.NONBLOCK]);
        // Without CAP_SYS_PTRACE (vm.unprivileged_userfaultfd = 0), only user-mode faults.
        if (theirs === BigInt(-E.EPERM)) theirs = remote.raw(NR.userfaultfd, [O.CLOEXEC | O.NONBLOCK | UFFD_USER_MODE_ONLY]);
        if (theirs < 0n) return undefined;
        let ours: number | undefined;
        try { ours = pidfdGetfd(pidfd, Number(theirs), pid); } catch { /* then the fork, as before */ }
        try {
          remote.call(NR.close, [Number(theirs)], 'close(userfaultfd)');
        } catch (e) {
          if (ours !== undefined) close(ours);
          throw e;
        }
        return ours;
      } finally {
        task.leaveRemote();
      }
    } finally {
      releaseTree(tree);
    }
  } finally {
    close(pidfd);
  }
}

function sameRuns(a: readonly Run[], b: readonly Run[]): boolean {
  return a.length === b.length && a.every(([addr, n], i) => addr === b[i][0] && n === b[i][1]);
}

/**
 * Where each of `regions` starts among the bytes of `runs`, both in address
 * order (as PAGEMAP_SCAN and selectPages give them): one walk of the two,
 * in the freeze, where a search of the runs for each region could take
 * thousands times thousands of steps.
 */
function positionsIn(runs: readonly Run[], regions: ReadonlyArray<readonly [addr: number, bytes: number]>): number[] {
  const out: number[] = [];
  let r = 0;
  let at = 0;
  for (const [addr] of regions) {
    while (r < runs.length && addr >= runs[r][0] + runs[r][1] * PAGE_SIZE) {
      at += runs[r][1] * PAGE_SIZE;
      r++;
    }
    if (r === runs.length || addr < runs[r][0]) {
      throw new CkptError('INTERNAL', `page 0x${addr.toString(16)} written but not among the VMA's saved pages`);
    }
    out.push(at + (addr - runs[r][0]));
  }
  return out;
}
