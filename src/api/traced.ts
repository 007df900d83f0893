/**
 * Which pids an engine worker of this process is dumping right now, shared by
 * all engine workers (one SharedArrayBuffer made by engine.ts, passed with
 * every request).
 *
 * Why: a restore worker is the real parent of the process it restored and
 * polls wait4(pid) to reap it. If a dump worker of the same process then
 * traces that pid, the kernel reports the tracee's ptrace stops to the real
 * parent too (the tracer is in the real parent's thread group, so the child is
 * not "ptrace-reparented"; __WNOTHREAD does not help), and a poll can steal a
 * stop the dump waits for: the dump hangs. So a reaper does not poll a pid
 * while a dump holds it, and both sides take a small lock around the check.
 */
const SLOTS = 64;

/** Word 0: lock; then SLOTS pids (0: free). */
export function newTracedTable(): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * (1 + SLOTS));
}

function locked<T>(table: Int32Array, fn: () => T): T {
  while (Atomics.compareExchange(table, 0, 0, 1) !== 0) Atomics.wait(table, 0, 1, 1);
  try {
    return fn();
  } finally {
    Atomics.store(table, 0, 0);
    Atomics.notify(table, 0);
  }
}

/** Mark `pid` as being dumped for the duration of `work`. */
export function whileTracing<T>(buf: SharedArrayBuffer | undefined, pid: number, work: () => T): T {
  if (!buf) return work();
  const table = new Int32Array(buf);
  const slot = locked(table, () => {
    for (let i = 1; i <= SLOTS; i++) {
      if (table[i] === 0) { table[i] = pid; return i; }
    }
    return 0;
  });
  try {
    return work();
  } finally {
    if (slot) locked(table, () => { table[slot] = 0; });
  }
}

/** Run `poll` unless a dump holds `pid`; undefined if it was skipped. */
export function unlessTraced<T>(buf: SharedArrayBuffer | undefined, pid: number, poll: () => T): T | undefined {
  if (!buf) return poll();
  const table = new Int32Array(buf);
  return locked(table, () => {
    for (let i = 1; i <= SLOTS; i++) if (table[i] === pid) return undefined;
    return poll();
  });
}
