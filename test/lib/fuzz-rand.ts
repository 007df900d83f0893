/** A small seeded PRNG for the image fuzzer: every case is replayable from (seed, case number). */

/** mulberry32: 32 bits of state, good enough to pick mutations, fast, and deterministic. */
export class Rand {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n) (0 if n <= 1). */
  int(n: number): number {
    if (n <= 1) return 0;
    if (n <= 0x100000000) return Math.floor((this.u32() / 0x100000000) * n);
    return Math.floor(((this.u32() * 0x100000000 + this.u32()) / 2 ** 64) * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }

  pick<T>(a: readonly T[]): T {
    if (a.length === 0) throw new Error('pick from an empty list');
    return a[this.int(a.length)];
  }

  /** Pick by weight: [[weight, value], ...]. */
  weighted<T>(a: readonly (readonly [number, T])[]): T {
    const total = a.reduce((s, [w]) => s + w, 0);
    let x = this.int(total);
    for (const [w, v] of a) {
      if (x < w) return v;
      x -= w;
    }
    return a[a.length - 1][1];
  }

  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      for (let k = 0; k < 4 && i + k < n; k++) b[i + k] = (v >>> (8 * k)) & 0xff;
    }
    return b;
  }
}

/** The seed of case `n` of a campaign with seed `seed` (so that any case replays alone). */
export function caseSeed(seed: number, n: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (n >>> 0) ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  h = Math.imul(h ^ Math.floor(n / 0x100000000) ^ (h >>> 16), 0x27d4eb2f) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}
