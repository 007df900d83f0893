/** Each command: its flags (CRIU's names where CRIU has the same meaning), help, and run. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CkptError } from '../errors.js';
import { readImage, check } from '../index.js';
// A CLI process has no event loop worth protecting and a worker thread costs
// its start-up: dump and restore run the engine right here, synchronously.
import { dumpSync } from '../dump/dump.js';
import { restoreSync, waitForExit } from '../restore/restore.js';
import { formatImage } from '../show.js';
import { SECTIONS, showSections, formatSections, type Section } from '../inspect/sections.js';
import { memSearch, formatSearch, memRead, formatRead } from '../inspect/mem.js';
import { diffImages, formatDiff } from '../inspect/diff.js';

interface Command {
  summary: string;
  help: string;
  run(args: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

function parse(cmd: string, args: string[], options: Options): Record<string, string | boolean | (string | boolean)[] | undefined> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new CkptError('USAGE', `${cmd}: ${(e as Error).message.split('\n')[0]} (see ckpt help ${cmd})`);
  }
}

function required(cmd: string, v: unknown, flag: string): string {
  if (typeof v !== 'string' || v === '') throw new CkptError('USAGE', `${cmd}: ${flag} is required (see ckpt help ${cmd})`);
  return v;
}

function parsePid(cmd: string, v: string): number {
  if (!/^[0-9]+$/.test(v) || Number(v) < 1 || Number(v) > 4194304) throw new CkptError('USAGE', `${cmd}: bad pid '${v}'`);
  return Number(v);
}

const verbosity = (v: unknown) => (Array.isArray(v) ? v.length : v ? 1 : 0);
const logger = (level: number) => (level > 0 ? (msg: string) => process.stderr.write(`ckpt: ${msg}\n`) : undefined);

export const COMMANDS: Record<string, Command> = {
  dump: {
    summary: 'checkpoint a process into an image directory',
    help: `ckpt dump -t PID -D DIR [options]

Freeze process PID, write everything it is into DIR, then kill it.
  -t, --tree PID          the process to dump
  -D, --images-dir DIR    where to write the image (must not hold one, unless --force)
  -R, --leave-running     let the process run on after the dump
  -j, --shell-job         the process uses ckpt's terminal (a shell job)
      --force             replace an image already in DIR
      --json              print the result as JSON
  -v, --verbose           say what happens, with a time breakdown
`,
    async run(args) {
      const o = parse('dump', args, {
        tree: { type: 'string', short: 't' }, 'images-dir': { type: 'string', short: 'D' },
        'leave-running': { type: 'boolean', short: 'R' }, 'shell-job': { type: 'boolean', short: 'j' },
        force: { type: 'boolean' }, json: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v', multiple: true },
      });
      const pid = parsePid('dump', required('dump', o.tree, '-t PID'));
      const dir = required('dump', o['images-dir'], '-D DIR');
      const r = dumpSync({
        pid, dir, leaveRunning: !!o['leave-running'], shellJob: !!o['shell-job'], force: !!o.force,
        log: logger(verbosity(o.verbose)),
      });
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      return 0;
    },
  },
  restore: {
    summary: 'restore a process from an image directory',
    help: `ckpt restore -D DIR [options]

Recreate the process saved in DIR with its pid; it carries on where it stopped.
Without -d, ckpt stays as its parent and exits with its exit status.
  -D, --images-dir DIR       the image to restore
  -d, --restore-detached     return as soon as the process runs
      --pidfile FILE         write the restored pid to FILE
  -j, --shell-job            give the process ckpt's terminal
      --json                 print the result as JSON
  -v, --verbose              say what happens, with a time breakdown
`,
    async run(args) {
      const o = parse('restore', args, {
        'images-dir': { type: 'string', short: 'D' }, 'restore-detached': { type: 'boolean', short: 'd' },
        pidfile: { type: 'string' }, 'shell-job': { type: 'boolean', short: 'j' }, json: { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v', multiple: true },
      });
      const dir = required('restore', o['images-dir'], '-D DIR');
      const r = restoreSync({
        dir, detach: !!o['restore-detached'], pidfile: o.pidfile as string | undefined, shellJob: !!o['shell-job'],
        log: logger(verbosity(o.verbose)),
      });
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      if (o['restore-detached']) return 0;
      return waitForExit(r.pid);
    },
  },
  show: {
    summary: 'print an image for a person (or as JSON)',
    help: `ckpt show -D DIR [--tree] [--files] [--maps] [--cmdline] [--env] [--json]

Print the image in DIR: the task record, registers, FPU state, memory map
with the pages saved per VMA, signal actions and files. With one or more of
the section flags, print only those sections:
  -D, --images-dir DIR    the image
      --tree              the process tree: pid, comm, state, threads
      --files             each process's fds: fd, kind, path, flags, offset,
                          cloexec; pipes with the bytes in them
      --maps              the VMAs: range, prot, kind, size, saved pages, path
      --cmdline           the arguments, read from the saved memory, one a line
      --env               the environment, read from the saved memory, one a line
      --json              print it as JSON (with section flags: an object
                          keyed by section)
`,
    async run(args) {
      const o = parse('show', args, {
        'images-dir': { type: 'string', short: 'D' }, json: { type: 'boolean' },
        tree: { type: 'boolean' }, files: { type: 'boolean' }, maps: { type: 'boolean' }, cmdline: { type: 'boolean' }, env: { type: 'boolean' },
      });
      const dir = required('show', o['images-dir'], '-D DIR');
      const sections = SECTIONS.filter((s) => o[s]) as Section[];
      if (sections.length) {
        const j = showSections(dir, sections);
        process.stdout.write(o.json ? JSON.stringify(j, null, 2) + '\n' : formatSections(j));
        return 0;
      }
      const img = await readImage(dir);
      process.stdout.write(o.json ? JSON.stringify(img, null, 2) + '\n' : formatImage(img));
      return 0;
    },
  },
  check: {
    summary: 'probe the kernel features ckpt relies on',
    help: `ckpt check [--json]

Probe each kernel feature ckpt uses and say which are present.
Exits non-zero if a required one is missing.
`,
    async run(args) {
      const o = parse('check', args, { json: { type: 'boolean' } });
      const r = await check();
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        for (const p of r.probes) process.stdout.write(`${p.ok ? 'ok  ' : p.required ? 'FAIL' : 'no  '} ${p.name}: ${p.detail}\n`);
        process.stdout.write(r.ok ? 'Looks good.\n' : 'Some required features are missing.\n');
      }
      return r.ok ? 0 : 1;
    },
  },
  mem: {
    summary: 'search or read the saved memory of a process in an image',
    help: `ckpt mem -D DIR --pid PID (--search STRING | --regex RE) [--context N] [--json]
ckpt mem -D DIR --pid PID --addr ADDR --len N [-o FILE] [--json]

Search: every saved page of process PID, streamed from pages.img; print each
match's address, its VMA and the bytes around it (hex and ASCII).
  -D, --images-dir DIR    the image
  -p, --pid PID           the process (ckpt show --tree lists them)
  -s, --search STRING     find this string (its UTF-8 bytes)
  -e, --regex RE          find this JavaScript regular expression; the memory
                          is matched as Latin-1 text, a match is at most 64 KiB
  -i, --ignore-case       with --regex
  -C, --context N         bytes shown on each side of a match (default 32)
      --max N             stop after N matches (default 1000)
Read: the bytes at an address (unsaved pages of a VMA read as zeros; an
address outside every VMA is an error).
  -a, --addr ADDR         the address (0x... or decimal)
  -n, --len N             how many bytes
  -o, --output FILE       write the raw bytes into FILE instead of a hexdump
      --json              print the result as JSON
`,
    async run(args) {
      const o = parse('mem', args, {
        'images-dir': { type: 'string', short: 'D' }, pid: { type: 'string', short: 'p' },
        search: { type: 'string', short: 's' }, regex: { type: 'string', short: 'e' }, 'ignore-case': { type: 'boolean', short: 'i' },
        context: { type: 'string', short: 'C' }, max: { type: 'string' },
        addr: { type: 'string', short: 'a' }, len: { type: 'string', short: 'n' }, output: { type: 'string', short: 'o' },
        json: { type: 'boolean' },
      });
      const dir = required('mem', o['images-dir'], '-D DIR');
      const pid = parsePid('mem', required('mem', o.pid, '--pid PID'));
      const num = (flag: string, v: unknown, min: number): number => {
        const t = String(v);
        if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(t) || !Number.isSafeInteger(Number(t)) || Number(t) < min) throw new CkptError('USAGE', `mem: bad ${flag} '${t}'`);
        return Number(t);
      };
      const modes = [o.search !== undefined, o.regex !== undefined, o.addr !== undefined || o.len !== undefined].filter(Boolean).length;
      if (modes !== 1) throw new CkptError('USAGE', 'mem: give exactly one of --search STRING, --regex RE, --addr ADDR --len N (see ckpt help mem)');
      if (o.addr !== undefined || o.len !== undefined) {
        const addr = num('--addr', required('mem', o.addr, '--addr ADDR'), 0);
        const len = num('--len', required('mem', o.len, '--len N'), 1);
        const out = o.output as string | undefined;
        const { result, bytes } = memRead(dir, pid, addr, len, out);
        if (o.json) process.stdout.write(JSON.stringify(out ? { ...result, output: out } : result, null, 2) + '\n');
        else if (bytes) process.stdout.write(formatRead(result, bytes));
        return 0;
      }
      if (o.output !== undefined) throw new CkptError('USAGE', 'mem: -o goes with --addr/--len');
      const r = memSearch(dir, pid, {
        search: o.search as string | undefined, regex: o.regex as string | undefined, ignoreCase: !!o['ignore-case'],
        context: o.context === undefined ? undefined : num('--context', o.context, 0),
        max: o.max === undefined ? undefined : num('--max', o.max, 1),
      });
      process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : formatSearch(r));
      return 0;
    },
  },
  diff: {
    summary: 'compare two images of the same process',
    help: `ckpt diff DIR_A DIR_B [--json]

Compare two images of the same process (e.g. two dumps with -R): per VMA
(matched by start address) the pages whose contents differ, as counts and
address ranges; VMAs added, removed or changed; fds added, removed or changed
(offset, flags...); task and mm fields that differ, and apart from them the
times and counters (utime, stime, context switches, faults).
      --json              print the result as JSON
Exits 0 whether or not the images differ.
`,
    async run(args) {
      let r;
      try {
        r = parseArgs({ args, options: { json: { type: 'boolean' } }, strict: true, allowPositionals: true });
      } catch (e) {
        throw new CkptError('USAGE', `diff: ${(e as Error).message.split('\n')[0]} (see ckpt help diff)`);
      }
      if (r.positionals.length !== 2) throw new CkptError('USAGE', 'diff: give two image directories: ckpt diff DIR_A DIR_B');
      const d = diffImages(r.positionals[0], r.positionals[1]);
      process.stdout.write(r.values.json ? JSON.stringify(d, null, 2) + '\n' : formatDiff(d));
      return 0;
    },
  },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(9)} ${c.summary}`);
  return `ckpt: checkpoint and restore Linux processes\n\nUsage: ckpt <command> [options]\n\n${lines.join('\n')}\n\nckpt help <command> for its options; ckpt --version.\n`;
}

export function commandHelp(name: string): string | undefined {
  return COMMANDS[name]?.help;
}

