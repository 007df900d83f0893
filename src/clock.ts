/**
 * Milliseconds since this process started, for timings. Not
 * performance.now(): the first use of `performance` loads node's perf_hooks
 * (~2 ms of every CLI command here). process.uptime() counts from the same
 * start in every thread of the process.
 */
export function uptimeMs(): number {
  return process.uptime() * 1000;
}
