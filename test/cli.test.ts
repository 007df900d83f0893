/**
 * CLI habits: --version, help for every command, the bash completion script,
 * -v/-vv, --log-file on a real dump and restore, progress on a terminal, and
 * the one-line error with exit 2 for a bad flag.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  assertCleanError,
  assertPass,
  assertSuccess,
  ckpt,
  CLI,
  cleanup,
  compile,
  killAll,
  makeWorkDir,
  PYTHON,
  REPO_ROOT,
  requestCheck,
  startProgram,
  waitFor,
  waitGone,
  waitReady,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };

/** The command names `ckpt --help` lists. */
function commandNames(): string[] {
  const r = ckpt(['--help']);
  assertSuccess(r, 'ckpt --help');
  return [...r.stdout.matchAll(/^ {2}([a-z]+) +\S/gm)].map((m) => m[1]);
}

describe('version and help', () => {
  test('--version and -V print the package version', () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = ckpt([flag]);
      assertSuccess(r, `ckpt ${flag}`);
      assert.equal(r.stdout, `ckpt ${version}\n`);
    }
  });

  test('ckpt help COMMAND works for every command --help lists', () => {
    const names = commandNames();
    for (const name of ['dump', 'restore', 'show', 'check', 'mem', 'diff', 'completion']) assert.ok(names.includes(name), `--help lists ${name}: ${names}`);
    for (const name of names) {
      const r = ckpt(['help', name]);
      assertSuccess(r, `ckpt help ${name}`);
      assert.match(r.stdout, new RegExp(`^ckpt ${name}\\b`), `help ${name} starts with its usage`);
      assert.equal(r.stderr, '');
    }
    assertCleanError(ckpt(['help', 'nosuch']), "unknown command 'nosuch'");
    assert.equal(ckpt(['help', 'nosuch']).status, 2);
  });

  test('dump and restore help document -vv and --log-file', () => {
    for (const name of ['dump', 'restore']) {
      const h = ckpt(['help', name]).stdout;
      assert.match(h, /-vv/);
      assert.match(h, /--log-file FILE/);
    }
  });
});

describe('bad command lines: one line on stderr, exit 2', () => {
  const cases: string[][] = [
    ['dump', '--bogus'],
    ['dump', '-t', '1', '-D', '/tmp/x', '--no-such-flag'],
    ['restore', '-D', '/tmp/x', '-Z'],
    ['show', '--bogus'],
    ['check', '--bogus'],
    ['mem', '--bogus'],
    ['diff', '--bogus'],
    ['completion', 'zsh'],
    ['completion'],
    ['--bogus'],
    ['nosuch'],
  ];
  for (const args of cases) {
    test(`ckpt ${args.join(' ')}`, () => {
      const r = ckpt(args);
      assertCleanError(r);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stdout, '');
    });
  }

  test('an unopenable --log-file fails before the process is touched', () => {
    const dir = makeWorkDir('cli-badlog');
    const img = join(dir, 'img');
    const r = ckpt(['dump', '-t', String(process.pid), '-D', img, '--log-file', join(dir, 'no', 'such', 'dir', 'x.log')]);
    assertCleanError(r, 'cannot open log file');
    assert.equal(r.status, 2);
    assert.ok(!existsSync(img) && !existsSync(`${img}.partial`), 'no image directory was created');
  });
});

describe('ckpt completion bash', () => {
  const script = () => ckpt(['completion', 'bash']);

  /** What the script offers for the command line WORDS (the last word is the one being completed). */
  function complete(words: string[], cwd?: string): string[] {
    const file = join(makeWorkDir('cli-compl'), 'ckpt.bash');
    writeFileSync(file, script().stdout);
    const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c',
      `source ${file}; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _ckpt; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8', cwd });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => l !== '');
  }

  test('it is valid bash, mentions every command, and is what completions/ckpt.bash holds', () => {
    const r = script();
    assertSuccess(r, 'ckpt completion bash');
    for (const name of commandNames()) assert.ok(r.stdout.includes(name), `the script mentions ${name}`);
    assert.match(r.stdout, /complete -F _ckpt ckpt/);
    const syntax = spawnSync('bash', ['-n'], { input: r.stdout, encoding: 'utf8' });
    assert.equal(syntax.status, 0, syntax.stderr);
    assert.equal(readFileSync(join(REPO_ROOT, 'completions', 'ckpt.bash'), 'utf8'), r.stdout, 'completions/ckpt.bash is stale: npm run build regenerates it');
  });

  test('commands, flags per command, pids for -t, directories for -D', () => {
    assert.deepEqual(complete(['ckpt', '']).sort(), [...commandNames(), 'help', '--help', '--version'].sort());
    assert.deepEqual(complete(['ckpt', 'd']).sort(), ['diff', 'dump']);
    assert.deepEqual(complete(['ckpt', 'help', 're']), ['restore']);
    assert.deepEqual(complete(['ckpt', 'completion', '']), ['bash']);
    assert.deepEqual(complete(['ckpt', 'dump', '--l']).sort(), ['--leave-running', '--log-file']);
    assert.deepEqual(complete(['ckpt', 'restore', '--restore-']), ['--restore-detached']);
    assert.ok(complete(['ckpt', 'show', '--']).includes('--cmdline'));
    assert.ok(!complete(['ckpt', 'show', '--']).includes('--leave-running'), 'only show\'s own flags');
    assert.deepEqual(complete(['ckpt', 'check', '--']), ['--json']);
    assert.ok(complete(['ckpt', 'mem', '--']).includes('--search'));
    // Pids from /proc after -t / --tree.
    const pids = complete(['ckpt', 'dump', '-t', '']);
    assert.ok(pids.includes(String(process.pid)), `our pid is offered: ${pids.length} pids`);
    assert.ok(pids.every((p) => /^[0-9]+$/.test(p)));
    assert.ok(complete(['ckpt', 'dump', '--tree', String(process.pid)]).includes(String(process.pid)));
    // Directories (not files) after -D, and for diff's two arguments.
    const dir = makeWorkDir('cli-dirs');
    mkdirSync(join(dir, 'img-a'));
    mkdirSync(join(dir, 'img-b'));
    writeFileSync(join(dir, 'img-file'), '');
    assert.deepEqual(complete(['ckpt', 'restore', '-D', 'img'], dir).sort(), ['img-a', 'img-b']);
    assert.deepEqual(complete(['ckpt', 'show', '--images-dir', 'img'], dir).sort(), ['img-a', 'img-b']);
    assert.deepEqual(complete(['ckpt', 'diff', 'img-a', 'img'], dir).sort(), ['img-a', 'img-b']);
    // Files after --log-file; nothing made up after a flag whose value is free text.
    assert.deepEqual(complete(['ckpt', 'dump', '--log-file', 'img-f'], dir), ['img-file']);
    assert.deepEqual(complete(['ckpt', 'mem', '--search', '']), []);
  });
});

describe('verbosity and --log-file on real dumps and restores', () => {
  /** blocked.c in nanosleep mode, checked once: a small, quick image. */
  async function started() {
    const work = makeWorkDir('cli-prog');
    const { pid } = startProgram(compile('blocked'), [work, 'nanosleep']);
    await waitReady(work, { pid });
    assertPass(await requestCheck(work));
    return { work, pid };
  }

  const STEP = /^ckpt: (dump|restore): [a-z-]+ [0-9]+\.[0-9] ms$/;
  /** -v's last line: where the command's time went before and around the engine. */
  const timeLine = (cache = 'used') => new RegExp(
    `^ckpt: time since start [0-9.]+ ms: node [0-9.]+ ms, cli modules [0-9.]+ ms \\(code cache ${cache}\\), engine modules [0-9.]+ ms, engine [0-9.]+ ms$`);
  /** The build trained a code cache that V8 takes (scripts/train-code-cache.mjs). */
  const TIME = timeLine('used');
  const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

  test('without -v a dump is silent; -v prints the breakdown; -vv also each step; --log-file gets it all, timestamped', SLOW, async () => {
    const dir = makeWorkDir('cli-log');
    const log = join(dir, 'ckpt.log');

    // Quiet, with --json: stdout is the result alone, stderr is empty (not a TTY: no progress either).
    const a = await started();
    const quiet = ckpt(['dump', '-t', String(a.pid), '-D', join(dir, 'quiet'), '-R', '--json', '--log-file', log]);
    assertSuccess(quiet, 'dump --json --log-file');
    assert.equal(quiet.stderr, '', 'nothing on stderr without -v');
    const result = JSON.parse(quiet.stdout) as { pids: number[]; pages: number; timings: Record<string, number> };
    assert.deepEqual(result.pids, [a.pid]);
    const steps = Object.keys(result.timings);
    assert.ok(steps.includes('pages') && steps.includes('freeze'), `steps: ${steps}`);

    let lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    for (const l of lines) assert.match(l, TIMESTAMP, `every log line has a timestamp: ${l}`);
    const text = lines.map((l) => l.replace(TIMESTAMP, ''));
    assert.match(text[0], new RegExp(`^ckpt \\S+ dump -t ${a.pid} -D .* --log-file `), 'first line: the command');
    for (const step of steps) assert.ok(text.some((t) => t.startsWith(`dump: ${step} `)), `the log has step ${step}`);
    assert.ok(text.some((t) => t.startsWith(`dump of pid ${a.pid}: `)), 'the log has the -v breakdown line');
    assert.match(text.at(-1)!, /^dump: done after [0-9.]+ ms, exit 0$/);

    // -v: the engine's breakdown line, then the command's.
    const v = ckpt(['dump', '-t', String(a.pid), '-D', join(dir, 'v'), '-R', '-v']);
    assertSuccess(v, 'dump -v');
    const vLines = v.stderr.trimEnd().split('\n');
    assert.equal(vLines.length, 2, v.stderr);
    assert.match(vLines[0], new RegExp(`^ckpt: dump of pid ${a.pid}: .*remote syscalls \\(\\d+ in chains\\); .*pages [0-9.]+ ms`));
    assert.match(vLines[1], TIME);

    // -vv: each step as it ends, then the breakdown; the same log file is appended to.
    const before = lines.length;
    const vv = ckpt(['dump', '-t', String(a.pid), '-D', join(dir, 'vv'), '-vv', '--log-file', log]);
    assertSuccess(vv, 'dump -vv');
    await waitGone(a.pid);
    const vvLines = vv.stderr.trimEnd().split('\n');
    const stepLines = vvLines.filter((l) => STEP.test(l));
    assert.ok(stepLines.length >= 5, `step lines:\n${vv.stderr}`);
    for (const step of ['validate', 'freeze', 'pages', 'write']) assert.ok(stepLines.some((l) => l.startsWith(`ckpt: dump: ${step} `)), `-vv says ${step}`);
    assert.equal(vvLines.length, stepLines.length + 2, `only step lines and the breakdowns:\n${vv.stderr}`);
    assert.match(vvLines.at(-2)!, /^ckpt: dump of pid /);
    assert.match(vvLines.at(-1)!, TIME);
    assert.doesNotMatch(vv.stderr, /\r/, 'no progress line when stderr is not a TTY');

    lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    assert.ok(lines.length > before, 'appended');
    const second = lines.slice(before).map((l) => l.replace(TIMESTAMP, ''));
    // Everything -vv said (without the "ckpt: " prefix) is in the log, in order.
    const said = vvLines.map((l) => l.replace(/^ckpt: /, ''));
    assert.deepEqual(second.filter((t) => said.includes(t)), said);

    // The restore logs into the same file, and -vv shows its steps.
    const pidfile = join(dir, 'pid');
    const r = ckpt(['restore', '-D', join(dir, 'vv'), '-d', '--pidfile', pidfile, '-vv', '--log-file', log]);
    assertSuccess(r, 'restore -vv');
    const restored = Number(readFileSync(pidfile, 'utf8'));
    assert.equal(restored, a.pid);
    for (const step of ['load', 'pages']) assert.ok(r.stderr.split('\n').some((l) => STEP.test(l) && l.startsWith(`ckpt: restore: ${step} `)), `restore -vv says ${step}:\n${r.stderr}`);
    const tail = readFileSync(log, 'utf8').trimEnd().split('\n').map((l) => l.replace(TIMESTAMP, ''));
    assert.ok(tail.some((t) => t.startsWith('restore: pages ')));
    assert.match(tail.at(-1)!, /^restore: done after [0-9.]+ ms, exit 0$/);
    assertPass(await requestCheck(a.work, { timeoutMs: 60_000 }));
  });

  test('the executable takes a code cache only if it was made for its bundle by this node, intact; otherwise it compiles', SLOW, async () => {
    // A copy of the bin with other caches beside it; koffi is found through NODE_PATH.
    const dir = makeWorkDir('cli-cache');
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const f of ['ckpt.js', 'ckpt-cli.js', 'package.json']) copyFileSync(join(REPO_ROOT, 'dist', 'bin', f), join(bin, f));
    // A dump reads the cache of its own.
    const trained = readFileSync(join(REPO_ROOT, 'dist', 'bin', 'ckpt-cli.dump.cache'));
    const nl = trained.indexOf(10);
    const header = JSON.parse(trained.subarray(0, nl).toString('latin1')) as Record<string, unknown>;
    const withHeader = (h: Record<string, unknown>, data = trained.subarray(nl + 1)) => Buffer.concat([Buffer.from(`${JSON.stringify(h)}\n`), data]);
    const env = { ...process.env, NODE_PATH: join(REPO_ROOT, 'node_modules') };
    const a = await started();
    const dumpWith = (cache: Buffer | undefined, name: string) => {
      if (cache) writeFileSync(join(bin, 'ckpt-cli.dump.cache'), cache);
      else rmSync(join(bin, 'ckpt-cli.dump.cache'), { force: true });
      const r = spawnSync(process.execPath, [join(bin, 'ckpt.js'), 'dump', '-t', String(a.pid), '-D', join(dir, name), '-R', '-v'], { encoding: 'utf8', env });
      assertSuccess({ status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, `dump with cache ${name}`);
      return r.stderr.trimEnd().split('\n').at(-1)!;
    };
    assert.match(dumpWith(undefined, 'none'), timeLine('none'));
    // Made for another bundle, or by another node: not even offered to V8.
    assert.match(dumpWith(withHeader({ ...header, source: (header.source as number) ^ 1 }), 'other-bundle'), timeLine('none'));
    assert.match(dumpWith(withHeader({ ...header, node: 'v20.0.0' }), 'other-node'), timeLine('none'));
    // Corrupt data (V8 itself would take some corruptions, and crash on others): not offered.
    const corrupt = Buffer.from(trained);
    corrupt[nl + 1 + ((corrupt.length - nl) >> 1)] ^= 0xff;
    assert.match(dumpWith(corrupt, 'corrupt'), timeLine('none'));
    assert.match(dumpWith(trained.subarray(0, trained.length >> 1), 'truncated'), timeLine('none'));
    // Made for this bundle by this node, but under other V8 flags: offered, and V8 refuses it.
    const flagged = join(dir, 'flagged.cache');
    const make = spawnSync(process.execPath, ['--max-semi-space-size=64', '--input-type=module', '-e', `
      import fs from 'node:fs';
      import { compileCli, cacheFileOf } from ${JSON.stringify(join(REPO_ROOT, 'dist', 'src', 'cli', 'code-cache.js'))};
      const source = fs.readFileSync(process.argv[1]);
      fs.writeFileSync(process.argv[2], cacheFileOf(source, compileCli(source, process.argv[1], undefined).script));`,
    join(bin, 'ckpt-cli.js'), flagged], { encoding: 'utf8' });
    assert.equal(make.status, 0, make.stderr);
    assert.match(dumpWith(readFileSync(flagged), 'flagged'), timeLine('rejected'));
    assert.match(dumpWith(trained, 'trained'), timeLine('used'));
    assertPass(await requestCheck(a.work));
  });

  test('a failed dump is logged with its error', SLOW, async () => {
    const dir = makeWorkDir('cli-logfail');
    const log = join(dir, 'ckpt.log');
    const img = join(dir, 'img');
    mkdirSync(img);
    writeFileSync(join(img, 'not-an-image'), 'x');
    const a = await started();
    const r = ckpt(['dump', '-t', String(a.pid), '-D', img, '-R', '--log-file', log]);
    assertCleanError(r);
    const last = readFileSync(log, 'utf8').trimEnd().split('\n').at(-1)!;
    assert.match(last, TIMESTAMP);
    assert.ok(last.includes(`dump: failed after`) && last.includes(`exit ${r.status}: ${r.stderr.replace(/^ckpt: /, '').trim()}`), last);
  });

  test('on a terminal, a dump and a restore of more than 64 MiB draw their progress in place', SLOW, async (t) => {
    if (spawnSync('script', ['--version']).status !== 0) return t.skip('no script(1) to make a terminal');
    const dir = makeWorkDir('cli-progress');
    const { pid } = startProgram(PYTHON, ['-c', `import os, time\nos.closerange(3, 65536)\nb = bytearray(os.urandom(96 << 20))\nopen(os.path.join('${dir}', 'ready'), 'w').close()\ntime.sleep(1000)`]);
    await waitFor('python ready', () => existsSync(join(dir, 'ready')) || undefined, 30_000);
    const img = join(dir, 'img');
    // script(1) gives ckpt a pty for stdin/stdout/stderr; what it wrote comes out on script's stdout.
    const onTty = (args: string[]) => spawnSync('script', ['-qec', [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
    const d = onTty(['dump', '-t', String(pid), '-D', img]);
    assert.equal(d.status, 0, d.stdout);
    await waitGone(pid);
    const draws = d.stdout.split('\r').filter((s) => /^ckpt: dump: [0-9.]+ \/ [0-9.]+ MiB/.test(s));
    assert.ok(draws.length >= 1, `progress drawn:\n${JSON.stringify(d.stdout)}`);
    const last = /^ckpt: dump: ([0-9.]+) \/ ([0-9.]+) MiB +([0-9]+) MiB\/s/.exec(draws.at(-1)!);
    assert.ok(last, draws.at(-1));
    assert.equal(last[1], last[2], 'the last line is complete');
    assert.ok(Number(last[1]) > 90, `about 96 MiB: ${last[1]}`);

    const pidfile = join(dir, 'pid');
    const r = onTty(['restore', '-D', img, '-d', '--pidfile', pidfile]);
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /\rckpt: restore: ([0-9.]+) \/ \1 MiB +[0-9]+ MiB\/s/);
  });
});
