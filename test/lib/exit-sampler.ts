/**
 * A preload for a ckpt CLI process (`node --import .../exit-sampler.js main.js ...`)
 * that, when CKPT_SAMPLE_OUT is set, writes to that file as the process exits:
 * its peak RSS (getrusage ru_maxrss, bytes) and how many fds it still holds
 * (entries of /proc/self/fd that still resolve: the one readdir itself used is
 * closed by then). ckpt is a
 * new process per command, so its peak RSS is only visible from inside.
 * Used by scripts/soak.mjs.
 */
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';

export interface ExitSample {
  maxRssBytes: number;
  fdsAtExit: number;
  fdTargets: string[];
}

const out = process.env.CKPT_SAMPLE_OUT;
if (out) {
  process.on('exit', () => {
    const targets: string[] = [];
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        targets.push(`${fd} ${readlinkSync(`/proc/self/fd/${fd}`)}`);
      } catch {
        // the directory fd readdir used, closed by now
      }
    }
    const sample: ExitSample = { maxRssBytes: process.resourceUsage().maxRSS * 1024, fdsAtExit: targets.length, fdTargets: targets };
    writeFileSync(out, JSON.stringify(sample));
  });
}
