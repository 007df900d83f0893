/**
 * `ckpt run`: start a command as the init (PID 1) of new pid, mount, uts and
 * ipc namespaces, with its own /proc. Node cannot fork (it is multi-threaded)
 * and ckpt ships no helper binary, so the container is grown the way a
 * restore grows a process: a seed (restore/seed.ts) is spawned and seized, it
 * makes a remote clone3 into the new namespaces with CLONE_PARENT (so the
 * init is ckpt's child, which ckpt can wait for), and the child, still
 * traced, makes its mounts private, mounts proc and execs the command.
 *
 * The container keeps ckpt's network, user, cgroup and time namespaces, its
 * hostname and domainname (the new uts namespace starts as a copy, as with
 * unshare(1)), its cwd, root, rlimits and stdio. Only fds 0, 1 and 2 are
 * passed on: every other fd ckpt inherited is closed before the exec, so that
 * the container holds nothing of the outside that would keep it from being
 * dumped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CkptError } from '../errors.js';
import { Tracee } from '../ptrace/tracee.js';
import { RemoteCaller } from '../ptrace/remote.js';
import { TraceeMemory } from '../ptrace/memory.js';
import { sysError } from '../sys/libc.js';
import { NR } from '../sys/nr.js';
import { CLONE, F, MAP, PAGE_SIZE, PROT, PTRACE_O, SIG } from '../sys/constants.js';
import { CONTAINER_NS_FLAGS } from '../kinds/container.js';
import { encodeCloneArgs, CLONE_ARGS_SIZE } from '../sys/structs.js';
import { getpid, tryKill, wait4 } from '../sys/syscalls.js';
import { makeScratch, type RestoreTarget } from '../kinds/target.js';
import { setupContainerMounts } from '../kinds/mntns.js';
import { spawnSeed, SEED_GADGET } from '../restore/seed.js';


export interface RunOptions {
  /** The command and its arguments; argv[0] is looked up in PATH unless it holds a '/'. */
  argv: string[];
  /** The environment, as NAME=VALUE; ckpt's own by default. */
  env?: string[];
  /** Called with the init's host pid once it is set up, just before it runs the command. */
  onStart?: (pid: number) => void;
}

/** execvp's lookup: the path ckpt will exec, or a USAGE error naming the command. */
export function resolveCommand(cmd: string, pathVar = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'): string {
  const runnable = (p: string) => {
    try {
      if (!fs.statSync(p).isFile()) return false;
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (cmd === '') throw new CkptError('USAGE', 'run: empty command');
  if (cmd.includes('/')) {
    if (!runnable(cmd)) throw new CkptError('USAGE', `run: ${cmd}: not an executable file`, { path: cmd });
    return path.resolve(cmd);
  }
  for (const dir of pathVar.split(':')) {
    const p = path.resolve(dir || '.', cmd);
    if (runnable(p)) return p;
  }
  throw new CkptError('USAGE', `run: ${cmd}: command not found in PATH`);
}

function waitEventStop(t: Tracee): void {
  for (;;) {
    const s = t.waitStopped();
    if (s.kind === 'event-stop') return;
    t.cont(0);
  }
}

/**
 * The seed has no fds (node marks its 0, 1 and 2 close-on-exec), so it takes
 * ckpt's 0, 1 and 2 with pidfd_getfd while it is still in ckpt's pid
 * namespace, and the container's init inherits them.
 */
function giveStdio(remote: RemoteCaller): void {
  const first = remote.call(NR.pidfd_open, [getpid(), 0], 'pidfd_open(ckpt)');
  // Out of the way of 0, 1 and 2.
  const pidfd = remote.call(NR.fcntl, [first, F.DUPFD, 3], 'fcntl(F_DUPFD)');
  remote.call(NR.close, [first]);
  for (const fd of [0, 1, 2]) {
    if (!isOpen(fd)) continue;
    const got = remote.call(NR.pidfd_getfd, [pidfd, fd, 0], `pidfd_getfd(ckpt fd ${fd})`);
    if (got !== fd) {
      remote.call(NR.dup2, [got, fd], `dup2(${got}, ${fd})`);
      remote.call(NR.close, [got]);
    }
    // pidfd_getfd hands out fds close-on-exec.
    remote.call(NR.fcntl, [fd, F.SETFD, 0], `fcntl(${fd}, F_SETFD)`);
  }
  remote.call(NR.close, [pidfd]);
}

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/**
 * Start the container and return its init's host pid. The init is ckpt's
 * child (wait for it with waitForExit) and runs untraced. Nothing is left
 * behind on failure.
 */
export function startContainer(opts: RunOptions): number {
  if (opts.argv.length === 0) throw new CkptError('USAGE', 'run: no command given');
  const file = resolveCommand(opts.argv[0]);
  const env = opts.env ?? Object.entries(process.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  const strings = [file, ...opts.argv, ...env];
  const need = strings.reduce((n, s) => n + align8(Buffer.byteLength(s) + 1), 0) + 8 * (opts.argv.length + env.length + 2) + PAGE_SIZE;
  const areaSize = Math.ceil(need / PAGE_SIZE) * PAGE_SIZE;

  const seed = spawnSeed();
  let child: number | undefined;
  let childT: Tracee | undefined;
  let area = 0;
  try {
    const seedT = Tracee.seize(seed, PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACECLONE | PTRACE_O.EXITKILL);
    seedT.interrupt();
    waitEventStop(seedT);
    const remote = new RemoteCaller(seedT, BigInt(SEED_GADGET), 'int3', seedT.getRegs());
    // The child inherits this area: clone_args now, the exec's strings later.
    area = remote.call(NR.mmap, [0, areaSize, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0], 'mmap(run area)');
    const mem = new TraceeMemory(seed);
    try {
      mem.write(area, encodeCloneArgs({ flags: BigInt(CONTAINER_NS_FLAGS | CLONE.PARENT), exit_signal: 0n }));
    } finally {
      mem.close();
    }
    giveStdio(remote);
    const r = remote.raw(NR.clone3, [area, CLONE_ARGS_SIZE], { children: [] });
    if (r < 0n) throw sysError(Number(-r), 'remote clone3(CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC)', { pid: seed });
    child = Number(r);
    childT = Tracee.adopt(child);
    waitEventStop(childT);
  } catch (e) {
    if (child !== undefined) { tryKill(child, SIG.KILL); try { wait4(child); } catch { /* reaped */ } }
    throw e;
  } finally {
    tryKill(seed, SIG.KILL);
    try { wait4(seed); } catch { /* reaped */ }
  }

  const mem = new TraceeMemory(child);
  try {
    const t: RestoreTarget = {
      pid: child, mem, scratch: makeScratch(mem, area, areaSize), log: () => {},
      remote: new RemoteCaller(childT, BigInt(SEED_GADGET), 'int3', childT.getRegs()),
    };
    setupContainerMounts(t);
    t.remote.call(NR.close_range, [3, 0xffffffff, 0], 'close_range(3..)');
    t.scratch.reset();
    const put = (s: string) => t.scratch.put(Buffer.from(s + '\0'));
    const ptrs = (list: string[]) => {
      const b = Buffer.alloc(8 * (list.length + 1));
      list.forEach((s, i) => b.writeBigUInt64LE(BigInt(put(s)), 8 * i));
      return t.scratch.put(b);
    };
    const fileAddr = put(file);
    const argvAddr = ptrs(opts.argv);
    const envAddr = ptrs(env);
    // A successful execve never returns to the gadget: stop at its syscall exit instead.
    const r = t.remote.raw(NR.execve, [fileAddr, argvAddr, envAddr], undefined, 'syscall-stop');
    if (r < 0n) throw sysError(Number(-r), `execve(${file})`, { pid: child });
    opts.onStart?.(child);
    childT.detach(0);
    return child;
  } catch (e) {
    tryKill(child, SIG.KILL);
    try { wait4(child); } catch { /* reaped */ }
    throw e;
  } finally {
    mem.close();
  }
}
