/** Every kind's records, registered once: the image reader decodes with this. */
import { IMAGE_SCHEMAS, Registry } from '../image/index.js';
import { PROCESS } from './process.js';
import { TASK } from './task.js';
import { THREAD } from './thread.js';
import { REGS, XSTATE } from './regs.js';
import { MM, AUXV, EXE } from './mm.js';
import { VMA, VMA_PATH } from './vma.js';
import { PAGE_RUNS, COW_RUNS } from './pages.js';
import { PAGE_CHUNKS } from './page-chunks.js';
import { SIGACTION } from './sigactions.js';
import { FS, FS_ROOT } from './fs.js';
import { CREDS } from './creds.js';
import { FD } from './files.js';
import { PIPE } from './pipes.js';
import { SOCKET_SCHEMAS } from './sockets/index.js';
import { FD_EXTRA_SCHEMAS } from './fd-records.js';
import { RLIMITS } from './rlimits.js';
import { MISC } from './misc.js';
import { SIGNALS, SIGINFO } from './signals.js';
import { ITIMER, POSIX_TIMER } from './timers.js';
import { SECCOMP, SECCOMP_FILTER } from './seccomp.js';
import { CONTAINER } from './container.js';
import { UTS_NS } from './uts.js';
import { SYSVIPC_SCHEMAS } from './sysvipc.js';

export const SCHEMAS = [
  ...IMAGE_SCHEMAS, PROCESS, TASK, THREAD, REGS, XSTATE, MM, AUXV, EXE, VMA, VMA_PATH,
  PAGE_RUNS, COW_RUNS, PAGE_CHUNKS, SIGACTION, FS, FS_ROOT, CREDS, FD, PIPE, RLIMITS, MISC, SIGNALS, SIGINFO, ITIMER, POSIX_TIMER,
  SECCOMP, SECCOMP_FILTER, ...FD_EXTRA_SCHEMAS,
  CONTAINER, UTS_NS, ...SYSVIPC_SCHEMAS, ...SOCKET_SCHEMAS,
] as const;

export const registry = new Registry(SCHEMAS);
