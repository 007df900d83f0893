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
import type { ProcessImage } from './load.js';

type Mapped = { fields: VmaFields };

const MFD_CLOEXEC = 1;

const keyOf = (v: Mapped) => `${v.fields.dev_major}:${v.fields.dev_minor}:${v.fields.ino}`;

export class SharedMemory {
  private sizes = new Map<string, number>();
  private fds = new Map<string, number>();

  constructor(procs: ProcessImage[]) {
    for (const p of procs) {
      for (const v of p.vmas) {
        if (v.fields.kind !== VmaKind.SHARED_ANON) continue;
        const k = keyOf(v);
        this.sizes.set(k, Math.max(this.sizes.get(k) ?? 0, v.fields.pgoff + v.fields.end - v.fields.start));
      }
    }
  }

  /** ckpt's fd of the object a SHARED_ANON VMA maps (at the VMA's pgoff). */
  get(v: Mapped): number {
    const k = keyOf(v);
    let fd = this.fds.get(k);
    if (fd === undefined) {
      fd = memfdCreate('ckpt-shmem', MFD_CLOEXEC);
      this.fds.set(k, fd);
      fs.ftruncateSync(fd, this.sizes.get(k) ?? v.fields.pgoff + v.fields.end - v.fields.start);
    }
    return fd;
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}
