/**
 * Freeze every thread of a process before anything is read. Threads created
 * while ckpt is seizing are caught too: TRACECLONE makes each new thread
 * start traced and stopped, and the task list is read again until it holds
 * no thread ckpt has not frozen.
 */
import { CkptError } from '../errors.js';
import { readTids } from '../proc/index.js';
import { PTRACE_O } from '../sys/constants.js';
import { FrozenTask } from './frozen.js';

export function freezeProcess(pid: number, extraOptions = 0): FrozenTask[] {
  const frozen = new Map<number, FrozenTask>();
  const gone = new Set<number>();
  const options = PTRACE_O.TRACECLONE | extraOptions;
  try {
    for (let round = 0; ; round++) {
      const fresh = readTids(pid).filter((tid) => !frozen.has(tid) && !gone.has(tid));
      if (fresh.length === 0) break;
      if (round > 100) throw new CkptError('UNSUPPORTED', `pid ${pid} keeps creating threads faster than ckpt can freeze them`, { pid });
      const onBorn = (born: FrozenTask[]) => born.forEach((b) => frozen.set(b.tid, b));
      for (const t of FrozenTask.freezeAll(fresh, options, onBorn)) frozen.set(t.tid, t);
      // Threads that exited before they could be seized are not listed again.
      fresh.forEach((tid) => { if (!frozen.has(tid)) gone.add(tid); });
    }
  } catch (e) {
    for (const t of frozen.values()) t.release();
    throw e;
  }
  const main = frozen.get(pid);
  if (!main) throw new CkptError('ESRCH_PID', `no process ${pid}`, { pid });
  return [main, ...[...frozen.values()].filter((t) => t.tid !== pid).sort((a, b) => a.tid - b.tid)];
}
