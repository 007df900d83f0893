/**
 * End-to-end tests of the process state beyond memory and registers: signal
 * dispositions and pending signals, credentials and capabilities, limits and
 * per-process knobs, timers, memory-area semantics, seccomp filters.
 *
 * Each test/programs/state-*.c program records the state it set up before
 * W/ready and, on every W/check, compares the live state with the record
 * (FAIL names the first item that differs); the comment at the top of each
 * program lists exactly what it checks. An unmodified `sleep` (started by
 * state-launch.c as nobody with lowered limits) is compared from outside,
 * through /proc, before the dump and after the restore.
 *
 * The first describe block needs no ckpt at all: it proves that every program
 * passes its own check when nothing happens to it (and fails when its state is
 * changed behind its back). The others dump (killing the process), wait until
 * the pid is gone, restore without -d, and ask for a check.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, afterEach, describe, test } from 'node:test';
import {
  assertPass,
  assertSuccess,
  ckpt,
  cleanup,
  compile,
  dumpOk,
  exists,
  killAll,
  makeWorkDir,
  pidsWithArg,
  procInfo,
  readCounter,
  reportedCounter,
  requestCheck,
  restoreInBackground,
  sleep,
  startProgram,
  SYSCALL,
  currentSyscall,
  tracerPid,
  track,
  waitCounterAbove,
  waitFor,
  waitGone,
  waitReady,
  whileRunning,
  type BackgroundCkpt,
} from './lib/index.js';
import { diffSnapshots, procSnapshot, STAT_EXCLUDED, STATUS_EXCLUDED } from './lib/proc-snapshot.js';

const SLOW = { timeout: 180_000 };
/** A restored program has to be rebuilt before it can answer: be patient. */
const AFTER_RESTORE = { timeoutMs: 60_000 };

/** Work dirs of the programs started here: whatever still runs with one in its argv is ours. */
const started: string[] = [];

/**
 * killAll() recognises a program by its comm; state-limits changes its comm,
 * and a restored copy might not get it back. So also kill by work dir, which
 * is in the argv of the original and of any restored copy.
 */
async function killStarted(): Promise<void> {
  for (const dir of started.splice(0)) {
    for (const pid of pidsWithArg(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      await waitGone(pid).catch(() => {});
    }
  }
}

afterEach(async () => {
  await killStarted();
  await killAll();
});
after(async () => {
  await killStarted();
  await cleanup();
});

interface StateProgram {
  name: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** The comm the program gives itself, if not its name. */
  comm?: string;
  proves: string;
}

const MEMSEM_ENV = { PATH: process.env.PATH, CKPT_STATE_MARK: 'memsem ünïcode = yes', EMPTY: '' };

const PROGRAMS: StateProgram[] = [
  {
    name: 'state-signals',
    proves: 'sigactions (handlers, flags, masks, SIG_IGN), the blocked mask, sigaltstack, a tgkill SIGUSR2 and three queued SIGRTMIN+1 (11, 22, 33) pending and delivered in order',
  },
  {
    name: 'state-creds',
    proves: 'res uids/gids 1000/1001/1002, fsuid/fsgid, supplementary groups, effective/permitted/inheritable/bounding/ambient caps, securebits, no_new_privs',
  },
  {
    name: 'state-limits',
    comm: 'st-limits-comm',
    proves: 'lowered rlimits, umask, cwd, personality, nice, SCHED_BATCH, affinity, oom_score_adj, timer slack, comm, pdeath signal, subreaper, keep-caps, dumpable',
  },
  {
    name: 'state-timers',
    proves: 'ITIMER_REAL/VIRTUAL/PROF and six POSIX timers (several clocks, SIGEV_SIGNAL/THREAD_ID/NONE, one disarmed) under their same kernel ids',
  },
  {
    name: 'state-memsem',
    args: ['alpha', 'two words', ''],
    env: MEMSEM_ENV,
    proves: 'VMAs with dc, wf, dd, lo, nh, hg, gd and a PROT_NONE guard page, their contents, cmdline, environ, exe',
  },
  {
    name: 'state-root',
    proves: 'a chroot: "/" is still the same directory, ".." of "/" stays inside, the cwd inside it is kept',
  },
  {
    name: 'state-seccomp',
    proves: 'two seccomp filters (Seccomp_filters 2) under no_new_privs, whose errnos still come back, the newer first',
  },
];

async function startState(p: StateProgram, extraArgs: string[] = []) {
  const dir = makeWorkDir(p.name);
  started.push(dir);
  const { pid } = startProgram(compile(p.name), [dir, ...(p.args ?? []), ...extraArgs], { env: p.env });
  const ready = await waitReady(dir, { pid });
  if (p.comm) track(pid, p.comm);
  return { dir, pid, ready };
}

async function checkTwice(dir: string): Promise<string> {
  const first = await requestCheck(dir);
  assertPass(first);
  await waitCounterAbove(dir, reportedCounter(first));
  const second = await requestCheck(dir);
  assertPass(second);
  return second;
}

/** `ckpt show -D IMAGE --json` succeeds, prints JSON, and the pid is the value of some field. */
function assertShowJson(image: string, pid: number): void {
  const r = ckpt(['show', '-D', image, '--json']);
  assertSuccess(r, 'ckpt show --json');
  let json: unknown;
  assert.doesNotThrow(() => (json = JSON.parse(r.stdout)), `show --json printed no JSON: ${r.stdout.slice(0, 500)}`);
  assert.ok(holdsValue(json, pid), `pid ${pid} is the value of no field in: ${r.stdout.slice(0, 1000)}`);
}

function holdsValue(value: unknown, wanted: number): boolean {
  if (Array.isArray(value)) return value.some((v) => holdsValue(v, wanted));
  if (value !== null && typeof value === 'object') return Object.values(value).some((v) => holdsValue(v, wanted));
  return Number(value) === wanted;
}

/** No tracer (false too while the pid is absent or vanishing: a restore may still be at work). */
function untraced(pid: number): boolean {
  try {
    return tracerPid(pid) === 0;
  } catch {
    return false;
  }
}

async function stopRestored(pid: number, restore: BackgroundCkpt): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  await restore.exited;
  await waitGone(pid);
}

/** The rates in a state-timerate report, each within ±20% of what the timers are set to. */
function assertRates(report: string, when: string): void {
  assertPass(report);
  const num = (key: string) => Number(new RegExp(`\\b${key}=([\\d.]+)`).exec(report)?.[1] ?? NaN);
  const window = num('window');
  assert.ok(window >= 1 && window <= 3, `${when}: no measuring window of 1-3 s: ${report}`);
  const itimer = num('itimer_hz');
  const posix = num('posix_hz');
  assert.ok(itimer >= 80 && itimer <= 120, `${when}: ITIMER_REAL fires at ${itimer}/s, want 100/s ±20%: ${report}`);
  assert.ok(posix >= 16 && posix <= 24, `${when}: the POSIX timer fires at ${posix}/s, want 20/s ±20%: ${report}`);
}

// ---- the unmodified sleep, started by state-launch.c ---------------------------------

const LAUNCH_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', CKPT_STATE_MARK: 'launched sleep' };

async function startLaunchedSleep() {
  const { pid } = startProgram(compile('state-launch'), ['sleep', '1000'], { env: LAUNCH_ENV });
  await waitFor(
    `pid ${pid} to exec sleep as nobody`,
    () => {
      const info = procInfo(pid);
      if (!info || info.state === 'Z') throw new Error(`state-launch (pid ${pid}) died before it exec'd sleep`);
      return info.comm === 'sleep' && currentSyscall(pid) === SYSCALL.clock_nanosleep ? true : undefined;
    },
    10_000,
  );
  track(pid, 'sleep');
  return pid;
}

function assertLaunchedState(pid: number): void {
  const s = procSnapshot(pid);
  assert.equal(s.status.get('Uid'), '65534\t65534\t65534\t65534');
  assert.equal(s.status.get('Gid'), '65534\t65534\t65534\t65534');
  assert.equal(s.status.get('Groups'), '');
  assert.equal(s.status.get('Umask'), '0027');
  assert.equal(s.status.get('Cpus_allowed_list'), '0');
  assert.equal(s.stat.get(19), '5', 'nice');
  assert.equal(s.stat.get(6), String(pid), 'session: its own');
  assert.match(s.limits, /^Max open files\s+512\s+1024\s+files\s*$/m);
  assert.equal(s.cmdline, 'sleep\x001000\x00');
  assert.ok(s.environ.includes('CKPT_STATE_MARK=launched sleep\0'), s.environ);
}

// =======================================================================================

describe('without a dump, every state program passes its own check (must pass today)', () => {
  for (const p of PROGRAMS) {
    test(`${p.name}: ${p.proves}; two checks in a row PASS`, SLOW, async () => {
      const { dir } = await startState(p);
      await checkTwice(dir);
    });
  }

  test('state-limits pdeath-tolerant: PASSes too', SLOW, async () => {
    const { dir } = await startState(PROGRAMS.find((p) => p.name === 'state-limits')!, ['pdeath-tolerant']);
    await checkTwice(dir);
  });

  test('state-signals: stopped by SIGSTOP it shows State T and its counter stands still; SIGCONT resumes it', SLOW, async () => {
    const { dir, pid } = await startState(PROGRAMS[0]);
    assertPass(await requestCheck(dir));
    process.kill(pid, 'SIGSTOP');
    await waitFor(`pid ${pid} to stop`, () => (procInfo(pid)?.state === 'T' ? true : undefined), 5_000);
    const stopped = readCounter(dir);
    await sleep(300);
    assert.equal(readCounter(dir), stopped, 'the counter moved while stopped');
    process.kill(pid, 'SIGCONT');
    await waitCounterAbove(dir, stopped);
    assertPass(await requestCheck(dir));
  });

  test('state-timerate: ITIMER_REAL fires 100/s and the POSIX timer 20/s (±20%)', SLOW, async () => {
    const { dir } = await startState({ name: 'state-timerate', proves: '' });
    await sleep(1_500);
    assertRates(await requestCheck(dir), 'without a dump');
  });

  test('the checks see a change: prlimit on state-limits, a stray SIGURG to state-signals, a 4th SIGRTMIN+1', SLOW, async () => {
    const limits = await startState(PROGRAMS.find((p) => p.name === 'state-limits')!);
    const r = spawnSync('prlimit', ['--pid', String(limits.pid), '--nofile=100:512'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `prlimit: ${r.stderr}`);
    assert.match(await requestCheck(limits.dir), /^FAIL RLIMIT_NOFILE is 100:512, was 256:512/);

    const urg = await startState(PROGRAMS[0]);
    process.kill(urg.pid, 'SIGURG');
    assert.match(await requestCheck(urg.dir), /^FAIL handler a_urg ran/);

    const rt = await startState(PROGRAMS[0]);
    const rtmin1 = Number(rt.ready.rtmin) + 1;
    const q = spawnSync('kill', [`-${rtmin1}`, String(rt.pid)], { encoding: 'utf8' });
    assert.equal(q.status, 0, `kill -${rtmin1}: ${q.stderr}`);
    assert.match(await requestCheck(rt.dir), /^FAIL arrival 2: .*want signal \d+ code -1|^FAIL 5 signals arrived/);
  });

  test('the launched sleep runs as nobody with its limits, nice, umask and affinity; two /proc snapshots 1 s apart compare equal', SLOW, async () => {
    const pid = await startLaunchedSleep();
    assertLaunchedState(pid);
    const first = procSnapshot(pid);
    await sleep(1_000);
    assert.deepEqual(diffSnapshots(first, procSnapshot(pid)), []);
    // every exclusion names a field that exists: a typo would silently compare nothing away
    for (const key of Object.keys(STATUS_EXCLUDED)) assert.ok(first.status.has(key), `no status field ${key}`);
    for (const n of Object.keys(STAT_EXCLUDED)) assert.ok(first.stat.has(Number(n)), `no stat field ${n}`);
  });
});

describe('dump → restore (without -d): each state program PASSes its check', () => {
  for (const p of PROGRAMS) {
    test(`${p.name}: ${p.proves}`, SLOW, async () => {
      const { dir, pid } = await startState(p);
      assertPass(await requestCheck(dir));
      const image = makeWorkDir('img');
      await dumpOk(pid, image);
      assertShowJson(image, pid);

      const restore = restoreInBackground(image);
      const report = await whileRunning(restore, requestCheck(dir, AFTER_RESTORE));
      assertPass(report);
      await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
      assertPass(await whileRunning(restore, requestCheck(dir)));
      await stopRestored(pid, restore);
    });
  }

  test('state-limits pdeath-tolerant: PASSes with the pdeath signal either re-armed or cleared', SLOW, async () => {
    const { dir, pid } = await startState(PROGRAMS.find((p) => p.name === 'state-limits')!, ['pdeath-tolerant']);
    assertPass(await requestCheck(dir));
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    const restore = restoreInBackground(image);
    assertPass(await whileRunning(restore, requestCheck(dir, AFTER_RESTORE)));
    await stopRestored(pid, restore);
  });

  test('state-signals stopped by SIGSTOP at dump time comes back stopped (State T), and SIGCONT resumes it', SLOW, async () => {
    const { dir, pid } = await startState(PROGRAMS[0]);
    assertPass(await requestCheck(dir));
    process.kill(pid, 'SIGSTOP');
    await waitFor(`pid ${pid} to stop`, () => (procInfo(pid)?.state === 'T' ? true : undefined), 5_000);
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    assertShowJson(image, pid);
    const atDump = readCounter(dir);

    const restore = restoreInBackground(image);
    // restored, no longer traced by ckpt, and stopped
    await whileRunning(
      restore,
      waitFor(
        () => `pid ${pid} to be back, untraced and stopped (now: ${JSON.stringify(procInfo(pid))})`,
        () => (exists(pid) && procInfo(pid)?.state === 'T' && untraced(pid) ? true : undefined),
        60_000,
      ),
    );
    await sleep(500);
    assert.equal(procInfo(pid)?.state, 'T', 'the restored process did not stay stopped');
    assert.equal(readCounter(dir), atDump, 'the restored process ran while it should be stopped');

    process.kill(pid, 'SIGCONT');
    await whileRunning(restore, waitCounterAbove(dir, atDump));
    assertPass(await whileRunning(restore, requestCheck(dir)));
    await stopRestored(pid, restore);
  });

  test('state-timerate: after the restore ITIMER_REAL still fires 100/s and the POSIX timer 20/s (±20%)', SLOW, async () => {
    const { dir, pid } = await startState({ name: 'state-timerate', proves: '' });
    await sleep(1_500);
    assertRates(await requestCheck(dir), 'before the dump');
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    assertShowJson(image, pid);
    const atDump = readCounter(dir);

    const restore = restoreInBackground(image);
    await whileRunning(restore, waitCounterAbove(dir, atDump, 60_000));
    await sleep(1_500); // a full measuring window after the restore
    assertRates(await whileRunning(restore, requestCheck(dir)), 'after the restore');
    await stopRestored(pid, restore);
  });

  test('an unmodified sleep running as nobody with lowered limits: /proc status, stat, limits, cmdline, environ are the same after the restore', SLOW, async () => {
    const pid = await startLaunchedSleep();
    const before = procSnapshot(pid);
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    assertShowJson(image, pid);

    const restore = restoreInBackground(image);
    await whileRunning(
      restore,
      waitFor(
        () => `pid ${pid} to be back, untraced, asleep in clock_nanosleep (now: ${JSON.stringify(procInfo(pid))})`,
        () =>
          exists(pid) && procInfo(pid)?.comm === 'sleep' && untraced(pid) && currentSyscall(pid) === SYSCALL.clock_nanosleep
            ? true
            : undefined,
        60_000,
      ),
    );
    const diffs = diffSnapshots(before, procSnapshot(pid));
    assert.deepEqual(diffs, [], `what /proc says changed across dump and restore:\n${diffs.join('\n')}`);
    assertLaunchedState(pid);
    await stopRestored(pid, restore);
  });
});
