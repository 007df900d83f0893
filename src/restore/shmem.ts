/**
 * MAP_SHARED anonymous memory (inherited through fork, so shared by several
 * processes of the tree) is one object again after restore: ckpt makes one
 * memfd per saved object (by device and inode), sized to cover every VMA that
 * maps it, and each process maps that memfd. The pages are saved once, in
 * the first VMA that maps them, and written through that mapping.
 */
import fs from 'node:fs';
import { memfdCreate } from '../sys/syscalls.js';
import { VmaKind, type VmaFields } from '../kinds/vma.js';
import { memfdName } from '../kinds/filedata.js';
import type { ProcessImage } from './load.js';

type Mapped = { fields: VmaFields; path: string };

const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;

const keyOf = (v: Mapped) => `${v.fields.dev_major}:${v.fields.dev_minor}:${v.fields.ino}`;

export class SharedMemory {
  private sizes = new Map<string, number>();
  private fds = new Map<string, number>();
  private mapped = new Map<string, Mapped>();

  constructor(procs: ProcessImage[]) {
    for (const p of procs) {
      for (const v of p.vmas) {
        if (v.fields.kind !== VmaKind.SHARED_ANON) continue;
        const k = keyOf(v);
        this.sizes.set(k, Math.max(this.sizes.get(k) ?? 0, v.fields.pgoff + v.fields.end - v.fields.start));
        if (!this.mapped.has(k)) this.mapped.set(k, v);
      }
    }
  }

  /** ckpt's fd of the object a SHARED_ANON VMA maps (at the VMA's pgoff). */
  get(v: Mapped): number {
    const k = keyOf(v);
    let fd = this.fds.get(k);
    if (fd === undefined) {
      // A memfd mapping keeps its name; anonymous shared memory gets one that says what it is.
      fd = memfdCreate(v.path.startsWith('/memfd:') ? memfdName(v.path) : 'ckpt-shmem', MFD_CLOEXEC | MFD_ALLOW_SEALING);
      this.fds.set(k, fd);
      fs.ftruncateSync(fd, this.sizes.get(k) ?? v.fields.pgoff + v.fields.end - v.fields.start);
    }
    return fd;
  }

  /** ckpt's fd of the object with this device and inode, if some VMA of the tree maps it. */
  lookup(major: number, minor: number, ino: bigint): number | undefined {
    const key = `${major}:${minor}:${ino}`;
    const v = this.mapped.get(key);
    return v ? this.get(v) : undefined;
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}
