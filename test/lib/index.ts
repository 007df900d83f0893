/** The end-to-end test harness. See test/programs/README.md for the program protocol. */
export { CLI, PROGRAMS_DIR, REPO_ROOT } from './paths.js';
export { compile } from './programs.js';
export { makeWorkDir, removeWorkDirs } from './workdir.js';
export { sleep, waitFor } from './wait.js';
export {
  currentSyscall,
  exists,
  isRunning,
  pidsWithArg,
  pidsWithComm,
  procInfo,
  threadCount,
  tracerPid,
  unusedPid,
  type ProcInfo,
} from './proc.js';
export {
  killAll,
  startOrphan,
  startProgram,
  SYSCALL,
  track,
  trackExact,
  waitBlockedIn,
  waitGone,
  type Exit,
  type StartedProgram,
} from './processes.js';
export {
  readCounter,
  reportedCounter,
  requestCheck,
  requestExit,
  waitCounterAbove,
  waitReady,
  type CheckOptions,
} from './protocol.js';
export {
  assertCleanError,
  assertSuccess,
  ckpt,
  ckptBackground,
  dumpOk,
  dumpRunningOk,
  restoreDetachedOk,
  restoreInBackground,
  whileRunning,
  type BackgroundCkpt,
  type CkptResult,
} from './ckpt.js';
export { cleanup } from './cleanup.js';
export { assertPass } from './assertions.js';
export { appendingPython, assertConsecutive, PYTHON, readAppendedLines } from './python.js';
export { dumpAndRestore, startChecked, startMemOrphan } from './checked.js';
