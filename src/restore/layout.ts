/** Address-space arithmetic for placing ckpt's own temporary mappings. */
export type Range = [start: number, end: number];

const LOW = 0x100000000;        // above 4 GiB: clear of non-PIE binaries and brk heaps
const HIGH = 0x7f0000000000;    // below where mmap_base usually puts libraries and stacks
const ALIGN = 0x200000;

/** A free, 2 MiB-aligned range of `size` bytes that overlaps none of `taken`. */
export function findHole(size: number, taken: Range[]): number {
  const sorted = [...taken].sort((a, b) => a[0] - b[0]);
  let at = LOW;
  for (const [s, e] of sorted) {
    if (e <= at) continue;
    if (s >= at + size) break;
    at = Math.ceil(e / ALIGN) * ALIGN;
  }
  if (at + size > HIGH) throw new Error(`no free ${size}-byte range below 0x${HIGH.toString(16)}`);
  return at;
}

export function overlaps(a: Range, b: Range): boolean {
  return a[0] < b[1] && b[0] < a[1];
}
