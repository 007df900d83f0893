/**
 * The userfaultfd ioctls ckpt makes on a process's userfaultfd it holds (taken
 * with pidfd_getfd): write-protection in async mode (Linux 6.7), where a write
 * to a protected page only clears its protection, and PAGEMAP_SCAN then says
 * which pages were written. Layouts and numbers from linux/userfaultfd.h.
 */
import { allocNative, trySyscall, sysError, type NativeMemory } from './libc.js';
import { NR } from './nr.js';
import { E } from './errno.js';

export const UFFD_API = 0xaa;
export const UFFD_USER_MODE_ONLY = 1;
export const UFFD_FEATURE_WP_ASYNC = 1 << 15;
const UFFDIO_REGISTER_MODE_WP = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP = 1 << 0;
/** _IOWR(0xAA, nr, size): struct uffdio_api (24 bytes), uffdio_register (32), uffdio_writeprotect (24). */
const UFFDIO_API = 0xc018aa3f;
const UFFDIO_REGISTER = 0xc020aa00;
const UFFDIO_WRITEPROTECT = 0xc018aa06;

let mem: NativeMemory | undefined;
const arg = () => (mem ??= allocNative(32));

/**
 * UFFDIO_API asking for async write-protection; false if the kernel does not
 * have it (EINVAL: an unknown feature).
 */
export function uffdApiWpAsync(uffd: number, pid: number): boolean {
  const m = arg();
  m.buf.fill(0, 0, 24);
  m.buf.writeBigUInt64LE(BigInt(UFFD_API), 0);
  m.buf.writeBigUInt64LE(BigInt(UFFD_FEATURE_WP_ASYNC), 8);
  const r = trySyscall(NR.ioctl, uffd, UFFDIO_API, m.addr);
  if (r === -E.EINVAL) return false;
  if (r < 0) throw sysError(-r, 'ioctl(UFFDIO_API)', { pid, resource: `userfaultfd ${uffd}` });
  return (Number(m.buf.readBigUInt64LE(8)) & UFFD_FEATURE_WP_ASYNC) !== 0;
}

/** Register [start, end) for write-protection; 0 or -errno (EBUSY: some other userfaultfd has it). */
export function uffdRegister(uffd: number, start: number, end: number): number {
  return trySyscall(NR.ioctl, uffd, UFFDIO_REGISTER, rangeArg(start, end, UFFDIO_REGISTER_MODE_WP, 32).addr);
}

/**
 * Write-protect [start, end), registered; 0 or -errno. Only pages that are
 * there: in async mode the kernel also marks the empty entries of a range,
 * filling in page tables for all of it (2 MiB of them per GiB), and those
 * marks outlive the userfaultfd.
 */
export function uffdWriteProtect(uffd: number, start: number, end: number): number {
  return trySyscall(NR.ioctl, uffd, UFFDIO_WRITEPROTECT, rangeArg(start, end, UFFDIO_WRITEPROTECT_MODE_WP, 24).addr);
}

/** A struct of `size` bytes that starts with a uffdio_range [start, end) and a mode (uffdio_register, uffdio_writeprotect). */
function rangeArg(start: number, end: number, mode: number, size: number): NativeMemory {
  const m = arg();
  m.buf.fill(0, 0, size);
  m.buf.writeBigUInt64LE(BigInt(start), 0);
  m.buf.writeBigUInt64LE(BigInt(end - start), 8);
  m.buf.writeBigUInt64LE(BigInt(mode), 16);
  return m;
}
