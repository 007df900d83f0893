/** Wall-clock marks for the -v breakdown of where a dump or restore spends its time. */
import { uptimeMs } from './clock.js';

export class Timings {
  private last = uptimeMs();
  private steps: [string, number][] = [];

  /** `onStep` hears each step as it ends (progress for callers). */
  constructor(private onStep?: (step: string, ms: number) => void) {}

  mark(step: string): void {
    const now = uptimeMs();
    this.onStep?.(step, now - this.last);
    this.steps.push([step, now - this.last]);
    this.last = now;
  }

  record(): Record<string, number> {
    return Object.fromEntries(this.steps.map(([k, v]) => [k, Math.round(v * 100) / 100]));
  }

  format(): string {
    return this.steps.map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(', ');
  }
}
