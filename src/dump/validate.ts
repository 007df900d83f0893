/** Refuse pids ckpt must not or cannot dump, with one clear line. */
import { CkptError } from '../errors.js';
import { readStat, readStatus, type Stat, type Status } from '../proc/index.js';

const PF_KTHREAD = 0x00200000;

export function checkDumpablePid(pid: number): { stat: Stat; status: Status } {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new CkptError('USAGE', `bad pid: ${pid}`);
  if (pid === process.pid) throw new CkptError('BAD_PID', `pid ${pid} is ckpt itself`, { pid });
  const status = readStatus(pid);
  const stat = readStat(pid);
  if (status.kthread || (stat.flags & PF_KTHREAD) !== 0) throw new CkptError('BAD_PID', `pid ${pid} is a kernel thread`, { pid });
  if (status.tgid !== pid) throw new CkptError('BAD_PID', `pid ${pid} is a thread of process ${status.tgid}: dump the process`, { pid });
  if (status.state === 'Z' || status.state === 'X') throw new CkptError('BAD_PID', `pid ${pid} is a zombie`, { pid });
  if (status.tracerPid !== 0) throw new CkptError('BAD_PID', `pid ${pid} is already traced by pid ${status.tracerPid}`, { pid });
  return { stat, status };
}
