/**
 * A full garbage collection, for a worker thread that waits idle between jobs
 * and so would not make one: its heap would keep the last job's garbage,
 * such as a dump's 32 MiB of page slots (SharedArrayBuffer), for as long as it
 * waits. Node exposes gc() only with --expose-gc; set here, it is reachable
 * through a new context.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

export const fullGc: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();
