/** Each command: its flags (CRIU's names where CRIU has the same meaning), help, and run. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CkptError } from '../errors.js';
import type { DumpResult } from '../dump/dump.js';
import type { RestoreResult } from '../restore/restore.js';
import { runEngine } from './engine-run.js';
import { runCommand } from './run.js';
import { formatImage, showImage } from '../show.js';
import { SECTIONS, showSections, formatSections, type Section } from '../inspect/sections.js';
import { memSearch, formatSearch, memRead, formatRead } from '../inspect/mem.js';
import { diffImages, formatDiff } from '../inspect/diff.js';
import { openReport, imagePagesBytes } from './report.js';
import * as path from 'node:path';
import { builtin } from '../builtin.js';
import { stdout, writeLine } from './stdout.js';
import {
  fdSink, fdSource, makeStreamTempDir, openOutputFile, packImage, packImageToFile, removeStreamTempDir, unpackImage,
  unpackImageFromFile, type ByteSink, type ByteSource,
} from '../image/pack.js';

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

// ---- streams: the single-file form of an image (src/image/pack.ts) ----------------------

type Values = ReturnType<typeof parse>;

const isatty = (fd: number) => builtin<typeof import('node:tty')>('node:tty').isatty(fd);

/** `-o FILE` / `-i FILE` absent or '-': stdout / stdin. */
const isStd = (v: unknown) => v === undefined || v === '-';

/** fd 1 as a sink for binary data; refused when it is a terminal. */
function stdoutSink(cmd: string): ByteSink {
  if (isatty(1)) throw new CkptError('USAGE', `${cmd}: refusing to write an image to a terminal (redirect stdout, or use -o FILE)`);
  return fdSink(1, 'stdout');
}

/** fd 0 as a source of binary data; refused when it is a terminal. */
function stdinSource(cmd: string): ByteSource {
  if (isatty(0)) throw new CkptError('USAGE', `${cmd}: refusing to read an image from a terminal (redirect stdin, or use -i FILE)`);
  return fdSource(0, 'stdin');
}

/** --stream and -D DIR exclude each other; -o/-i imply --stream. */
function streamMode(cmd: string, o: Values, fileFlag: 'output' | 'input'): boolean {
  const stream = !!o.stream || o[fileFlag] !== undefined;
  if (stream && o['images-dir'] !== undefined) {
    const f = fileFlag === 'output' ? '-o FILE' : '-i FILE';
    throw new CkptError('USAGE', `${cmd}: give either -D DIR or --stream (${f}), not both (see ckpt help ${cmd})`);
  }
  return stream;
}

/**
 * dump --stream: dump into a private temporary directory, pack it to stdout or -o FILE,
 * remove the directory. The output is checked (-o FILE opened as FILE.partial) before
 * the dump, so a bad output is refused while the process still runs untouched.
 */
function socketFlags(o: Values): { tcpEstablished: boolean; extUnixSk: boolean } {
  return { tcpEstablished: !!o['tcp-established'], extUnixSk: !!o['ext-unix-sk'] };
}

/** The --compress value; dumpSync refuses an unknown one before freezing anything. */
function snapshotWay(v: unknown): 'copy' | 'fork' | undefined {
  return v as 'copy' | 'fork' | undefined;
}

function compression(v: unknown): 'zstd' | 'lz4' | 'none' {
  return (typeof v === 'string' ? v : 'none') as 'zstd' | 'lz4' | 'none';
}

const dumpAbandoned = (pid: number) => `dump abandoned, pid ${pid} runs on as it was, no image written`;
const RESTORE_ABANDONED = 'restore abandoned, nothing of it left running, the image unchanged';

async function dumpStream(pid: number, o: Values, args: string[]): Promise<number> {
  const leaveRunning = !!o['leave-running'];
  const toStdout = isStd(o.output);
  const out = toStdout ? { sink: stdoutSink('dump'), commit() {}, abort() {} } : openOutputFile(o.output as string, !!o.force);
  let tmp: string | undefined;
  let keep = false;
  try {
    tmp = makeStreamTempDir();
    const dir = path.join(tmp, 'image');
    const report = openReport('dump', args, { verbose: verbosity(o.verbose), logFile: o['log-file'] });
    const { value: r } = await runEngine<DumpResult>({
      // ckpt lives on while it packs: the killed tasks are reaped, so that their parents hear of it now.
      op: 'dump', opts: { pid, dir, leaveRunning, snapshot: snapshotWay(o.snapshot), shellJob: !!o['shell-job'], ...socketFlags(o), compress: compression(o.compress) },
    }, report.engine, dumpAbandoned(pid));
    try {
      packImage(dir, out.sink);
      out.commit();
    } catch (e) {
      if (leaveRunning) throw e;
      // The process is gone and this directory holds its only image: keep it.
      keep = true;
      const why = e instanceof Error ? e.message : String(e);
      const kept = `pid ${pid} was dumped and killed; its image is kept in ${dir} (ckpt restore -D ${dir})`;
      throw e instanceof CkptError ? new CkptError(e.code, `${why}; ${kept}`, e.data) : new CkptError('INTERNAL', `${why}; ${kept}`);
    }
    if (o.json) writeLine(toStdout ? 2 : 1, JSON.stringify(r) + '\n');
    return 0;
  } catch (e) {
    try {
      out.abort();
    } catch {
      // report the first error
    }
    throw e;
  } finally {
    if (tmp !== undefined && !keep) removeStreamTempDir(tmp);
  }
}

/**
 * restore --stream: unpack stdin or -i FILE into a private temporary directory, restore
 * from it, and remove it as soon as the process runs (it has read its pages by then),
 * not when it exits.
 */
async function restoreStream(o: Values, args: string[]): Promise<number> {
  const source = isStd(o.input) ? stdinSource('restore') : undefined;
  const tmp = makeStreamTempDir();
  let run;
  try {
    const dir = path.join(tmp, 'image');
    if (source) unpackImage(source, dir, { label: 'stdin' });
    else unpackImageFromFile(o.input as string, dir);
    const report = openReport('restore', args, { verbose: verbosity(o.verbose), logFile: o['log-file'], totalBytes: imagePagesBytes(dir) });
    run = await runEngine<RestoreResult>({
      op: 'restore', opts: { dir, detach: !!o['restore-detached'], pidfile: o.pidfile as string | undefined, shellJob: !!o['shell-job'] },
    }, report.engine, RESTORE_ABANDONED);
  } finally {
    removeStreamTempDir(tmp);
  }
  if (o.json) writeLine(1, JSON.stringify(run.value) + '\n');
  if (o['restore-detached']) return 0;
  return run.exit;
}

export const COMMANDS: Record<string, Command> = {
  run: runCommand,
  dump: {
    summary: 'checkpoint a process into an image directory',
    help: `ckpt dump -t PID -D DIR [options]

ckpt dump -t PID --stream [-o FILE] [options]

Freeze process PID, write everything it is into DIR, then kill it.
  -t, --tree PID          the process to dump
  -D, --images-dir DIR    where to write the image (must not hold one, unless --force)
      --stream            write the image as one stream (the format of ckpt
                          pack) to stdout, which must not be a terminal
  -o, --output FILE       write the stream to FILE (implies --stream; FILE
                          must not exist, unless --force)
  -R, --leave-running     let the process run on after the dump
      --snapshot WAY      with -R, how a large process is kept frozen only
                          briefly: copy (the default: its memory is copied while
                          it runs, then only what it wrote meanwhile) or fork
                          (a copy-on-write fork while frozen)
  -j, --shell-job         the process uses ckpt's terminal (a shell job)
      --tcp-established   save established TCP connections (TCP repair; their
                          packets are held by nftables until the restore)
      --ext-unix-sk       save unix sockets connected outside the dump; the
                          restore reconnects them by name
      --compress ALGO     compress page data: zstd, lz4 or none (the default)
      --force             replace an image already in DIR (or FILE)
      --json              print the result as JSON (on stderr if the stream
                          goes to stdout)
  -v, --verbose           say what happens, with a time breakdown; -vv: each step too
      --log-file FILE     append what -vv says to FILE, with timestamps

With --stream, the image is dumped into a private temporary directory (on
/dev/shm if there is one), packed to the output, and removed. If packing fails
after the process was killed, that directory is kept and the error names it.
`,
    async run(args) {
      const o = parse('dump', args, {
        tree: { type: 'string', short: 't' }, 'images-dir': { type: 'string', short: 'D' },
        'leave-running': { type: 'boolean', short: 'R' }, 'shell-job': { type: 'boolean', short: 'j' },
        force: { type: 'boolean' }, json: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v', multiple: true },
        'log-file': { type: 'string' }, stream: { type: 'boolean' }, output: { type: 'string', short: 'o' },
        compress: { type: 'string' }, 'tcp-established': { type: 'boolean' }, 'ext-unix-sk': { type: 'boolean' },
        snapshot: { type: 'string' },
      });
      const pid = parsePid('dump', required('dump', o.tree, '-t PID'));
      if (streamMode('dump', o, 'output')) return dumpStream(pid, o, args);
      const dir = required('dump', o['images-dir'], '-D DIR');
      const out = openReport('dump', args, { verbose: verbosity(o.verbose), logFile: o['log-file'] });
      const { value: r } = await runEngine<DumpResult>({
        op: 'dump', opts: { pid, dir, leaveRunning: !!o['leave-running'], waitForExit: false, snapshot: snapshotWay(o.snapshot), shellJob: !!o['shell-job'], force: !!o.force, ...socketFlags(o), compress: compression(o.compress) },
      }, out.engine, dumpAbandoned(pid));
      if (o.json) writeLine(1, JSON.stringify(r) + '\n');
      return 0;
    },
  },
  restore: {
    summary: 'restore a process from an image directory',
    help: `ckpt restore -D DIR [options]

ckpt restore --stream [-i FILE] [options]

Recreate the process saved in DIR with its pid; it carries on where it stopped.
Without -d, ckpt stays as its parent and exits with its exit status.
  -D, --images-dir DIR       the image to restore
      --stream               read the image as one stream (ckpt pack, dump
                             --stream) from stdin, which must not be a terminal
  -i, --input FILE           read the stream from FILE (implies --stream)
  -d, --restore-detached     return as soon as the process runs
      --pidfile FILE         write the restored pid to FILE
  -j, --shell-job            give the process ckpt's terminal
      --json                 print the result as JSON
  -v, --verbose              say what happens, with a time breakdown; -vv: each step too
      --log-file FILE        append what -vv says to FILE, with timestamps

With --stream, the image is unpacked into a private temporary directory (on
/dev/shm if there is one) and removed as soon as the process runs:
ckpt dump -t PID --stream | ckpt restore --stream moves a process through a pipe.
`,
    async run(args) {
      const o = parse('restore', args, {
        'images-dir': { type: 'string', short: 'D' }, 'restore-detached': { type: 'boolean', short: 'd' },
        pidfile: { type: 'string' }, 'shell-job': { type: 'boolean', short: 'j' }, json: { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v', multiple: true }, 'log-file': { type: 'string' },
        stream: { type: 'boolean' }, input: { type: 'string', short: 'i' },
      });
      if (streamMode('restore', o, 'input')) return restoreStream(o, args);
      const dir = required('restore', o['images-dir'], '-D DIR');
      const out = openReport('restore', args, { verbose: verbosity(o.verbose), logFile: o['log-file'], totalBytes: imagePagesBytes(dir) });
      const run = await runEngine<RestoreResult>({
        op: 'restore', opts: { dir, detach: !!o['restore-detached'], pidfile: o.pidfile as string | undefined, shellJob: !!o['shell-job'] },
      }, out.engine, RESTORE_ABANDONED);
      if (o.json) writeLine(1, JSON.stringify(run.value) + '\n');
      if (o['restore-detached']) return 0;
      return run.exit;
    },
  },
  pack: {
    summary: 'turn an image directory into one stream (a single file)',
    help: `ckpt pack -D DIR [-o FILE] [--force]

Write the image in DIR as one stream (docs/image-format.md, "The stream
form"): each file of the image, framed, then a CRC of it all.
  -D, --images-dir DIR    the image
  -o, --output FILE       write to FILE (as FILE.partial, renamed when
                          complete; must not exist, unless --force);
                          default: stdout, which must not be a terminal
      --force             replace FILE
`,
    async run(args) {
      const o = parse('pack', args, {
        'images-dir': { type: 'string', short: 'D' }, output: { type: 'string', short: 'o' }, force: { type: 'boolean' },
      });
      const dir = required('pack', o['images-dir'], '-D DIR');
      if (isStd(o.output)) packImage(dir, stdoutSink('pack'));
      else packImageToFile(dir, o.output as string, { force: !!o.force });
      return 0;
    },
  },
  unpack: {
    summary: 'turn a stream (ckpt pack, dump --stream) back into an image directory',
    help: `ckpt unpack [-i FILE] -D DIR [--force]

Read a stream made by ckpt pack or ckpt dump --stream and write the image
directory DIR as a dump does: into DIR.partial (0700, files 0600), renamed to
DIR once the whole stream and its CRC check out.
  -i, --input FILE        read from FILE; default: stdin, which must not be
                          a terminal
  -D, --images-dir DIR    where to write the image (must not hold one, unless --force)
      --force             replace an image already in DIR
`,
    async run(args) {
      const o = parse('unpack', args, {
        'images-dir': { type: 'string', short: 'D' }, input: { type: 'string', short: 'i' }, force: { type: 'boolean' },
      });
      const dir = required('unpack', o['images-dir'], '-D DIR');
      if (isStd(o.input)) unpackImage(stdinSource('unpack'), dir, { force: !!o.force, label: 'stdin' });
      else unpackImageFromFile(o.input as string, dir, { force: !!o.force });
      return 0;
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
        stdout().write(o.json ? JSON.stringify(j, null, 2) + '\n' : formatSections(j));
        return 0;
      }
      const img = showImage(dir);
      stdout().write(o.json ? JSON.stringify(img, null, 2) + '\n' : formatImage(img));
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
      const { checkKernel } = await import('../check.js');
      const r = checkKernel();
      if (o.json) stdout().write(JSON.stringify(r, null, 2) + '\n');
      else {
        for (const p of r.probes) stdout().write(`${p.ok ? 'ok  ' : p.required ? 'FAIL' : 'no  '} ${p.name}: ${p.detail}\n`);
        stdout().write(r.ok ? 'Looks good.\n' : 'Some required features are missing.\n');
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
        if (o.json) stdout().write(JSON.stringify(out ? { ...result, output: out } : result, null, 2) + '\n');
        else if (bytes) stdout().write(formatRead(result, bytes));
        return 0;
      }
      if (o.output !== undefined) throw new CkptError('USAGE', 'mem: -o goes with --addr/--len');
      const r = memSearch(dir, pid, {
        search: o.search as string | undefined, regex: o.regex as string | undefined, ignoreCase: !!o['ignore-case'],
        context: o.context === undefined ? undefined : num('--context', o.context, 0),
        max: o.max === undefined ? undefined : num('--max', o.max, 1),
      });
      stdout().write(o.json ? JSON.stringify(r, null, 2) + '\n' : formatSearch(r));
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
      stdout().write(r.values.json ? JSON.stringify(d, null, 2) + '\n' : formatDiff(d));
      return 0;
    },
  },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`);
  return `ckpt: checkpoint and restore Linux processes\n\nUsage: ckpt <command> [options]\n\n${lines.join('\n')}\n\nckpt help <command> for its options; ckpt --version.\n`;
}

export function commandHelp(name: string): string | undefined {
  return COMMANDS[name]?.help;
}

