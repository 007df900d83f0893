/**
 * [vdso], [vvar] and [vvar_vclock] cannot be created, only moved: whole and
 * at the same size. Move each to a temporary hole first (so that no
 * destination overlaps a source), then to its saved address.
 */
import { CkptError } from '../errors.js';
import { MREMAP } from '../sys/constants.js';
import { NR } from '../sys/nr.js';
import { VmaKind } from '../kinds/vma.js';
import type { RestoreTarget } from '../kinds/target.js';
import type { Vma } from '../proc/index.js';
import type { VmaImage } from './load.js';
import { findHole, type Range } from './layout.js';

const NAMES: Record<string, VmaKind> = { '[vdso]': VmaKind.VDSO, '[vvar]': VmaKind.VVAR, '[vvar_vclock]': VmaKind.VVAR_VCLOCK };

export function moveSpecials(t: RestoreTarget, current: Vma[], saved: VmaImage[], taken: Range[]): void {
  const have = current.filter((v) => v.path in NAMES);
  const want = saved.filter((v) => Object.values(NAMES).includes(v.fields.kind));
  const plan = have.map((h) => {
    const kind = NAMES[h.path];
    const w = want.find((x) => x.fields.kind === kind);
    return { h, w, size: h.end - h.start };
  });
  for (const w of want) {
    const p = plan.find((x) => x.w === w);
    if (!p || p.size !== w.fields.end - w.fields.start) {
      throw new CkptError('CPU_MISMATCH', `the image's vDSO layout differs from this kernel's (${w.path || VmaKind[w.fields.kind]} of ${w.fields.end - w.fields.start} bytes): restore on the kernel it was dumped on`);
    }
  }
  const total = plan.reduce((n, p) => n + p.size, 0);
  const temp = findHole(total, [...taken, ...current.map((v): Range => [v.start, v.end])]);
  let at = temp;
  const moved = plan.map((p) => {
    t.remote.call(NR.mremap, [p.h.start, p.size, p.size, MREMAP.MAYMOVE | MREMAP.FIXED, at], `mremap(${p.h.path} to temp)`);
    const r = { ...p, tempAt: at };
    at += p.size;
    return r;
  });
  for (const m of moved) {
    if (!m.w) {
      t.remote.call(NR.munmap, [m.tempAt, m.size], `munmap(${m.h.path})`);
      continue;
    }
    t.remote.call(NR.mremap, [m.tempAt, m.size, m.size, MREMAP.MAYMOVE | MREMAP.FIXED, m.w.fields.start], `mremap(${m.h.path})`);
  }
}
