/**
 * Record type numbers of every kind, in one table so that no two collide.
 * 0x00xx belongs to image/ (header, end); kinds start at 0x0100.
 */
export const T = {
  PROCESS: 0x0100,
  TASK: 0x0101,
  THREAD: 0x0102,
  REGS: 0x0103,
  XSTATE: 0x0104,
  MM: 0x0110,
  AUXV: 0x0111,
  EXE: 0x0112,
  VMA: 0x0120,
  VMA_PATH: 0x0121,
  PAGE_RUNS: 0x0122,
  SIGACTION: 0x0130,
  FS: 0x0140,
  FS_ROOT: 0x0141,
  CREDS: 0x0150,
  FD: 0x0160,
  PIPE: 0x0170,
  MISC: 0x0180,
  RLIMITS: 0x0181,
  SIGNALS: 0x0190,
  SIGINFO: 0x0191,
  ITIMER: 0x01a0,
  POSIX_TIMER: 0x01a1,
  SECCOMP: 0x01b0,
  SECCOMP_FILTER: 0x01b1,
} as const;
