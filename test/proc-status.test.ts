import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseStat, parseStatus, type Stat, type Status } from '../src/proc/index.js';

const FIXTURES = new URL('../../test/fixtures/proc/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');

test('status: fixtures, table', () => {
  const cases: Array<{ file: string; want: Partial<Status> }> = [
    {
      file: 'status-python.txt',
      want: {
        name: 'a) b (c) d', umask: 0o022, state: 'S', tgid: 3316, ngid: 0, pid: 3316, ppid: 1, tracerPid: 0,
        uid: [0, 0, 0, 0], gid: [0, 0, 0, 0], fdSize: 256, groups: [],
        nstgid: [3316], nspid: [3316], nspgid: [3310], nssid: [2447], kthread: false, threads: 2,
        sigQ: [0, 96364], sigPnd: 0n, shdPnd: 0n, sigBlk: 0xa00n, sigIgn: 0x1001007n, sigCgt: 0x100004000n,
        capInh: 0n, capPrm: 0x1fffeffffffn, capEff: 0x1fffeffffffn, capBnd: 0x1fffeffffffn, capAmb: 0n,
        noNewPrivs: false, seccomp: 0, seccompFilters: 0, speculationStoreBypass: 'thread vulnerable',
        cpusAllowedList: '0-1', memsAllowedList: '0', voluntaryCtxtSwitches: 30, nonvoluntaryCtxtSwitches: 7,
      },
    },
    {
      file: 'status-nested-pidns.txt',
      want: { name: 'sleep', pid: 3809, nstgid: [3809, 3, 1], nspid: [3809, 3, 1], nspgid: [3802, 0, 0], nssid: [2447, 0, 0] },
    },
    {
      file: 'status-groups.txt',
      want: { umask: 0o027, uid: [1000, 1001, 1002, 1001], gid: [1000, 1001, 1002, 1001], groups: [4, 27, 100], capEff: 0n },
    },
    { file: 'status-init.txt', want: { pid: 1, ppid: 0, nspgid: [0], groups: [] } },
    { file: 'status-kthreadd.txt', want: { name: 'kthreadd', pid: 2, kthread: true, kB: {} } },
    { file: 'status-escaped-name.txt', want: { name: 'a\tb\nc\\d e)' } },
  ];
  for (const { file, want } of cases) {
    const s = parseStatus(fixture(file));
    for (const [k, v] of Object.entries(want)) assert.deepEqual(s[k as keyof Status], v, `${file} ${k}`);
  }
});

test('status: kB and raw', () => {
  const s = parseStatus(fixture('status-python.txt'));
  assert.equal(s.kB['VmRSS'], 14804);
  assert.equal(s.kB['VmSwap'], 0);
  assert.equal(s.raw['untag_mask'], '0xffffffffffffffff');
  assert.equal(s.raw['Groups'], '');
  assert.equal(s.raw['State'], 'S (sleeping)');
  assert.equal(s.raw['SpeculationIndirectBranch'], 'conditional enabled');
});

test('status: a missing or malformed required key throws', () => {
  const text = fixture('status-python.txt');
  assert.throws(() => parseStatus(text.replace(/^Pid:.*\n/m, '')), { code: 'INTERNAL', message: /missing Pid/ });
  assert.throws(() => parseStatus(text.replace(/^Uid:.*$/m, 'Uid:\t0\t0')), { code: 'INTERNAL', message: /Uid/ });
  assert.throws(() => parseStatus(text.replace(/^SigBlk:.*$/m, 'SigBlk:\tzz')), { code: 'INTERNAL', message: /SigBlk/ });
});

test('stat: fixtures, table', () => {
  const cases: Array<{ file: string; want: Partial<Stat> }> = [
    {
      file: 'stat-python.txt',
      want: {
        pid: 3316, comm: 'a) b (c) d', state: 'S', ppid: 1, pgrp: 3310, session: 2447, tty_nr: 0, tpgid: -1,
        flags: 4194304, minflt: 3142, cminflt: 6544, majflt: 3, cmajflt: 0, utime: 6, stime: 1, cutime: 5, cstime: 3,
        priority: 20, nice: 0, num_threads: 2, itrealvalue: 0, starttime: 30247, vsize: 94281728, rss: 3663,
        rsslim: 2 ** 64, startcode: 94732041027584, endcode: 94732041027925, startstack: 140731086108688,
        kstkesp: 0, kstkeip: 0, signal: 0, blocked: 2560, sigignore: 16781319, sigcatch: 16384, wchan: 0,
        nswap: 0, cnswap: 0, exit_signal: 17, processor: 0, rt_priority: 0, policy: 0, delayacct_blkio_ticks: 0,
        guest_time: 0, cguest_time: 0, start_data: 94732041039280, end_data: 94732041039896,
        start_brk: 94732739170304, arg_start: 140731086117091, arg_end: 140731086117156,
        env_start: 140731086117156, env_end: 140731086118863, exit_code: 0,
      },
    },
    { file: 'stat-init.txt', want: { pid: 1, comm: 'process_api', priority: 10, nice: -10, num_threads: 12 } },
    { file: 'stat-kthreadd.txt', want: { pid: 2, comm: 'kthreadd', ppid: 0, vsize: 0, startcode: 0, exit_code: 0 } },
    { file: 'stat-newline-comm.txt', want: { comm: 'a\tb\nc\\d e)', state: 'R' } },
  ];
  for (const { file, want } of cases) {
    const s = parseStat(fixture(file));
    assert.equal(Object.keys(s).length, 52, `${file}: all 52 fields`);
    for (const [k, v] of Object.entries(want)) assert.deepEqual(s[k as keyof Stat], v, `${file} ${k}`);
  }
});

test('stat: truncated or garbage text throws', () => {
  const text = fixture('stat-python.txt');
  for (const bad of [text.slice(0, 60), 'no parens here', text.replace(' 94281728 ', ' x ')]) {
    assert.throws(() => parseStat(bad), { code: 'INTERNAL' }, bad);
  }
});
