/**
 * Node's built-in modules that only some operations use, loaded when first
 * used rather than with ckpt: each costs a CLI command 1-5 ms of start-up
 * (worker_threads, child_process, tty), and most commands never use them.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export function builtin<T>(name: `node:${string}`): T {
  return require(name) as T;
}
