/** x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
export const NR = {
  read: 0, write: 1, close: 3, lseek: 8, mmap: 9, mprotect: 10, munmap: 11, brk: 12,
  rt_sigaction: 13, rt_sigprocmask: 14, ioctl: 16, pread64: 17, pwrite64: 18, readv: 19,
  writev: 20, mremap: 25, madvise: 28, dup: 32, dup2: 33, pause: 34, nanosleep: 35, poll: 7,
  getitimer: 36, setitimer: 38, ptrace: 101, getpid: 39, clone: 56, fork: 57, exit: 60, wait4: 61,
  kill: 62, fcntl: 72, fchdir: 81, chdir: 80, umask: 95, getuid: 102, setpgid: 109,
  setsid: 112, setgroups: 116, setresuid: 117, setresgid: 119, getpgid: 121, getsid: 124,
  capget: 125, capset: 126, sigaltstack: 131, personality: 135, setpriority: 141,
  getpriority: 140, sched_setscheduler: 144, sched_getscheduler: 145, sched_getparam: 143, sched_setparam: 142, mlock: 149, prctl: 157, arch_prctl: 158, setrlimit: 160,
  chroot: 161, gettid: 186, futex: 202, sched_setaffinity: 203, sched_getaffinity: 204, getcpu: 309,
  set_tid_address: 218, timer_settime: 223, timer_gettime: 224, timer_getoverrun: 225, restart_syscall: 219, timer_create: 222, clock_nanosleep: 230,
  exit_group: 231, tgkill: 234, rt_sigqueueinfo: 129, rt_tgsigqueueinfo: 297, setfsuid: 122, setfsgid: 123, openat: 257, set_robust_list: 273, get_robust_list: 274,
  splice: 275, tee: 276, vmsplice: 278, flock: 73, inotify_add_watch: 254, inotify_init1: 294, open_by_handle_at: 304, sync_file_range: 277, fstatfs: 138, timerfd_create: 283, fallocate: 285, timerfd_settime: 286, timerfd_gettime: 287, signalfd4: 289, eventfd2: 290, epoll_create1: 291, epoll_ctl: 233, dup3: 292, pipe2: 293, preadv: 295, pwritev: 296, prlimit64: 302, process_vm_readv: 310, process_vm_writev: 311,
  kcmp: 312, seccomp: 317, memfd_create: 319, userfaultfd: 323, rseq: 334, pidfd_open: 434, clone3: 435,
  close_range: 436, pidfd_getfd: 438, rt_sigtimedwait: 128, ftruncate: 77,
  // namespaces, containers and SysV IPC (container/, kinds/uts.ts, kinds/sysvipc.ts)
  shmget: 29, shmat: 30, shmctl: 31, execve: 59, uname: 63, semget: 64, semop: 65, semctl: 66, shmdt: 67,
  msgget: 68, msgsnd: 69, msgrcv: 70, msgctl: 71, mount: 165, sethostname: 170, setdomainname: 171, unshare: 272, setns: 308,
} as const;

export type SyscallName = keyof typeof NR;

const NAMES = new Map<number, string>(Object.entries(NR).map(([k, v]) => [v, k]));
export function syscallName(nr: number): string {
  return NAMES.get(nr) ?? `syscall ${nr}`;
}
