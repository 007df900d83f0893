/** Each command: its flags (CRIU's names where CRIU has the same meaning), help, and run. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CkptError } from '../errors.js';
import { dump, restore, readImage, check, waitRestored } from '../index.js';
import { formatImage } from '../show.js';

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
      const r = await dump({
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
      const r = await restore({
        dir, detach: !!o['restore-detached'], pidfile: o.pidfile as string | undefined, shellJob: !!o['shell-job'],
        log: logger(verbosity(o.verbose)),
      });
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      if (o['restore-detached']) return 0;
      return waitRestored(r.pid);
    },
  },
  show: {
    summary: 'print an image for a person (or as JSON)',
    help: `ckpt show -D DIR [--json]

Print the image in DIR: the task record, registers, FPU state, memory map
with the pages saved per VMA, signal actions and files.
  -D, --images-dir DIR    the image
      --json              print it as JSON
`,
    async run(args) {
      const o = parse('show', args, { 'images-dir': { type: 'string', short: 'D' }, json: { type: 'boolean' } });
      const img = await readImage(required('show', o['images-dir'], '-D DIR'));
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
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(9)} ${c.summary}`);
  return `ckpt: checkpoint and restore Linux processes\n\nUsage: ckpt <command> [options]\n\n${lines.join('\n')}\n\nckpt help <command> for its options; ckpt --version.\n`;
}

export function commandHelp(name: string): string | undefined {
  return COMMANDS[name]?.help;
}

