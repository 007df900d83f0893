/**
 * Resource limits, all 16, soft and hard. Read from /proc/PID/limits (exact,
 * no syscall into the target); restored by the target's own prlimit64, since
 * prlimit on another process needs CAP_SYS_RESOURCE. A hard limit above
 * ckpt's own cannot be raised without that capability: said clearly.
 */
import { CkptError } from '../errors.js';
import { Content, defineRecord } from '../image/index.js';
import { readLimits, RLIMIT_NAMES, type Rlimit } from '../proc/index.js';
import { NR } from '../sys/nr.js';
import { E } from '../sys/errno.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

/** content: 16 × { soft u64, hard u64 } by RLIMIT_* number. */
export const RLIMITS = defineRecord({ type: T.RLIMITS, name: 'rlimits', content: Content.DATA, fields: { count: 'u32' } });

export function encodeRlimits(limits: Rlimit[]): Buffer {
  const buf = Buffer.alloc(16 * 16);
  for (const l of limits) {
    if (l.resource < 0 || l.resource >= 16) continue;
    buf.writeBigUInt64LE(l.soft, l.resource * 16);
    buf.writeBigUInt64LE(l.hard, l.resource * 16 + 8);
  }
  return buf;
}

export function decodeRlimits(buf: Buffer): { soft: bigint; hard: bigint }[] {
  const out = [];
  for (let i = 0; i + 16 <= buf.length && i < 16 * 16; i += 16) out.push({ soft: buf.readBigUInt64LE(i), hard: buf.readBigUInt64LE(i + 8) });
  return out;
}

/** Set every limit that differs from what the target has now (ckpt's own, inherited). */
export function restoreRlimits(t: RestoreTarget, saved: { soft: bigint; hard: bigint }[]): void {
  const now = readLimits(t.pid);
  saved.forEach((l, resource) => {
    const cur = now.find((x) => x.resource === resource);
    if (cur && cur.soft === l.soft && cur.hard === l.hard) return;
    t.scratch.reset();
    const buf = Buffer.alloc(16);
    buf.writeBigUInt64LE(l.soft, 0);
    buf.writeBigUInt64LE(l.hard, 8);
    const r = t.remote.raw(NR.prlimit64, [0, resource, t.scratch.put(buf), 0]);
    const name = RLIMIT_NAMES[resource] ?? `resource ${resource}`;
    if (r === BigInt(-E.EPERM)) {
      throw new CkptError('PERMISSION', `pid ${t.pid}: cannot raise the hard limit '${name}' to ${l.hard} (ckpt's own is ${cur?.hard}): that needs CAP_SYS_RESOURCE, which ckpt lacks`, { pid: t.pid, syscall: 'prlimit64' });
    }
    if (r < 0n) throw new CkptError('SYSCALL', `remote prlimit64(${name}) failed: errno ${-r}, pid ${t.pid}`, { pid: t.pid, syscall: 'prlimit64' });
  });
}

export function dumpRlimits(pid: number): Buffer { return encodeRlimits(readLimits(pid)); }
