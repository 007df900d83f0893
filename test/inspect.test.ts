/**
 * End-to-end tests of the inspection commands: ckpt show --tree/--files/--maps/
 * --cmdline/--env, ckpt mem (search, read) and ckpt diff, on images of a real
 * process (test/programs/inspect-secret.c) dumped twice with -R.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  assertCleanError, assertPass, ckpt, cleanup, compile, dumpOk, makeWorkDir, readCounter, requestCheck, startProgram,
  waitCounterAbove, waitReady,
} from './lib/index.js';
import { memSearch } from '../src/inspect/mem.js';

const SLOW = { timeout: 120_000 };
const ARGS = ['--flavour=inspect-arg-7f3a', 'two words', ''];
const MARK = `ckpt-inspect-env-${process.pid}`;

let pid: number;
let work: string;
let imgA: string;
let imgB: string;
let facts: Record<string, string>;
let secret: string;

function json<T = any>(args: string[]): T {
  const r = ckpt(args);
  assert.equal(r.status, 0, `ckpt ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
function text(args: string[]): string {
  const r = ckpt(args);
  assert.equal(r.status, 0, `ckpt ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}
const addr = (k: string) => Number(BigInt(facts[k]));

/** Bytes of the live process's memory (it still runs: the dumps were -R). */
function liveMemory(at: number, len: number): Buffer {
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const buf = Buffer.alloc(len);
    assert.equal(readSync(fd, buf, 0, len, at), len);
    return buf;
  } finally {
    closeSync(fd);
  }
}

before(async () => {
  const bin = compile('inspect-secret');
  work = makeWorkDir('inspect');
  const w = join(work, 'w');
  mkdirSync(w);
  const p = startProgram(bin, [w, ...ARGS], { env: { ...process.env, CKPT_INSPECT_MARK: MARK } });
  pid = p.pid;
  facts = await waitReady(w, { pid });
  secret = `ckpt-secret-${pid}`;
  imgA = join(work, 'a');
  imgB = join(work, 'b');
  await dumpOk(pid, imgA, '-R');
  await waitCounterAbove(w, readCounter(w) + 10);
  await dumpOk(pid, imgB, '-R');
  assertPass(await requestCheck(w));
});

after(cleanup);

describe('ckpt mem', () => {
  test('--search finds the heap secret, with its VMA and context', SLOW, () => {
    const r = json(['mem', '-D', imgA, '--pid', String(pid), '--search', secret, '--json']);
    const heap = r.matches.filter((m: any) => m.vma.path === '[heap]');
    assert.equal(heap.length, 1, `one match in [heap]: ${JSON.stringify(r.matches.map((m: any) => [m.addr, m.vma.path]))}`);
    const m = heap[0];
    assert.equal(Number(BigInt(m.addr)), addr('secret'));
    assert.ok(Number(BigInt(m.vma.start)) <= addr('secret') && addr('secret') < Number(BigInt(m.vma.end)));
    assert.equal(m.text, secret);
    assert.equal(m.length, secret.length);
    assert.ok(m.context.ascii.includes(secret), m.context.ascii);
    assert.ok(Buffer.from(m.context.hex, 'hex').includes(Buffer.from(secret)));

    const out = text(['mem', '-D', imgA, '--pid', String(pid), '--search', secret]);
    assert.match(out, new RegExp(`^${facts.secret}\\s+\\[heap\\]`, 'm'));
    // The secret starts a 16-byte row (malloc aligns it); with a pid under 1000 it ends inside the row.
    assert.ok(out.includes(`|${secret.slice(0, 16)}`), out);
  });

  test('--regex finds it too; -C sets the context', SLOW, () => {
    const r = json(['mem', '-D', imgA, '--pid', String(pid), '--regex', 'ckpt-secret-[0-9]+', '-C', '4', '--json']);
    const m = r.matches.find((x: any) => Number(BigInt(x.addr)) === addr('secret'));
    assert.ok(m, 'the heap match');
    assert.equal(m.text, secret);
    assert.equal(Buffer.from(m.context.hex, 'hex').length, secret.length + 8);
  });

  test('matches across chunk edges are found (tiny chunks, streamed)', SLOW, () => {
    const whole = memSearch(imgA, pid, { search: secret });
    for (const chunk of [7, 4096, 4096 + 5]) {
      const small = memSearch(imgA, pid, { search: secret, chunk });
      assert.deepEqual(small.matches.map((m) => m.addr), whole.matches.map((m) => m.addr), `chunk ${chunk}`);
      const re = memSearch(imgA, pid, { regex: 'ckpt-secret-[0-9]+', chunk });
      assert.deepEqual(re.matches.map((m) => m.addr), whole.matches.map((m) => m.addr), `regex, chunk ${chunk}`);
    }
    assert.equal(whole.scanned_bytes % 4096, 0);
  });

  test('--addr/--len returns the exact bytes (hexdump, --json, -o)', SLOW, () => {
    const want = Buffer.from(secret + '\0');
    const r = json(['mem', '-D', imgA, '--pid', String(pid), '--addr', facts.secret, '--len', String(want.length), '--json']);
    assert.equal(r.hex, want.toString('hex'));
    const dump = text(['mem', '-D', imgA, '--pid', String(pid), '--addr', facts.secret, '--len', String(want.length)]);
    assert.ok(dump.includes(secret.slice(0, 16)), dump);
    // the read-only pages, raw, equal the live process's
    const file = join(work, 'ro.bin');
    text(['mem', '-D', imgA, '--pid', String(pid), '--addr', facts.ro, '--len', '8192', '-o', file]);
    assert.ok(readFileSync(file).equals(liveMemory(addr('ro'), 8192)), 'ro pages differ from the live process');
    // decimal address, across a page edge of the heap
    const at = addr('secret') - 100;
    const r2 = json(['mem', '-D', imgA, '--pid', String(pid), '--addr', String(at), '--len', '200', '--json']);
    assert.equal(Buffer.from(r2.hex, 'hex').subarray(100, 100 + want.length).toString(), want.toString());
  });

  test('unsaved pages read as zeros; an address outside every VMA is an error naming it', SLOW, () => {
    const maps = json(['show', '-D', imgA, '--maps', '--json']).maps[0].vmas as any[];
    const heap = maps.find((v) => v.path === '[heap]');
    assert.ok(heap.saved_pages < heap.size / 4096, 'the heap has unsaved pages');
    const end = Number(BigInt(heap.end));
    const r = json(['mem', '-D', imgA, '--pid', String(pid), '--addr', `0x${(end - 4096).toString(16)}`, '--len', '4096', '--json']);
    assert.equal(r.unsaved_pages, 1);
    assert.ok(Buffer.from(r.hex, 'hex').equals(Buffer.alloc(4096)));
    const bad = ckpt(['mem', '-D', imgA, '--pid', String(pid), '--addr', '0x1000', '--len', '16']);
    assertCleanError(bad, '0x1000');
    assert.equal(bad.status, 2);
    const across = ckpt(['mem', '-D', imgA, '--pid', String(pid), '--addr', `0x${(end - 8).toString(16)}`, '--len', '16']);
    if (!maps.some((v) => Number(BigInt(v.start)) === end)) assertCleanError(across, `0x${end.toString(16)}`);
  });

  test('bad arguments and images are one clean line', SLOW, () => {
    const e1 = ckpt(['mem', '-D', imgA, '--pid', 'abc', '--search', 'x']);
    assertCleanError(e1, "bad pid 'abc'");
    assert.equal(e1.status, 2);
    const e2 = ckpt(['mem', '-D', imgA, '--pid', String(pid === 1 ? 2 : 1), '--search', 'x']);
    assertCleanError(e2, `holds pid ${pid}`);
    assert.equal(e2.status, 2);
    const e3 = ckpt(['mem', '-D', join(work, 'nope'), '--pid', String(pid), '--search', 'x']);
    assertCleanError(e3, 'no image');
    assert.equal(e3.status, 6);
    assertCleanError(ckpt(['mem', '-D', imgA, '--pid', String(pid)]), 'exactly one of');
    assertCleanError(ckpt(['mem', '-D', imgA, '--pid', String(pid), '--regex', '(']), 'bad --regex');
    const e4 = ckpt(['show', '-D', join(work, 'nope'), '--tree']);
    assertCleanError(e4, 'no image');
    assert.equal(e4.status, 6);
    const e5 = ckpt(['diff', imgA, join(work, 'nope')]);
    assertCleanError(e5, 'no image');
    assertCleanError(ckpt(['diff', imgA]), 'two image directories');
  });
});

describe('ckpt show sections', () => {
  test('--cmdline and --env print what the program was started with', SLOW, () => {
    const bin = compile('inspect-secret');
    assert.deepEqual(text(['show', '-D', imgA, '--cmdline']).split('\n').slice(0, -1), [bin, join(work, 'w'), ...ARGS]);
    const argv = json(['show', '-D', imgA, '--cmdline', '--json']).cmdline[0];
    assert.equal(argv.pid, pid);
    assert.deepEqual(argv.argv, [bin, join(work, 'w'), ...ARGS]);
    const env = text(['show', '-D', imgA, '--env']).split('\n');
    assert.ok(env.includes(`CKPT_INSPECT_MARK=${MARK}`), 'the env var');
    const envJson = json(['show', '-D', imgA, '--env', '--json']).env[0].env as string[];
    assert.ok(envJson.includes(`CKPT_INSPECT_MARK=${MARK}`));
    assert.ok(envJson.length >= 2);
  });

  test('--tree', SLOW, () => {
    const t = json(['show', '-D', imgA, '--tree', '--json']).tree;
    assert.equal(t.length, 1);
    assert.equal(t[0].pid, pid);
    assert.equal(t[0].comm, 'inspect-secret');
    assert.equal(t[0].threads, 1);
    assert.deepEqual(t[0].children, []);
    assert.match(t[0].state, /^[SRDt]$/);
    assert.match(text(['show', '-D', imgA, '--tree']), new RegExp(`^${pid}\\s+inspect-secret\\s+\\S\\s+1$`, 'm'));
  });

  test('--files: fds with kind, path, flags, offset, cloexec; pipes with their bytes', SLOW, () => {
    const f = json(['show', '-D', imgA, '--files', '--json']).files[0];
    const byFd = new Map((f.fds as any[]).map((x) => [x.fd, x]));
    const data = byFd.get(Number(facts.datafd));
    assert.equal(data.kind, 'REG');
    assert.equal(data.path, join(work, 'w', 'data'));
    assert.equal(data.offset, 4);
    assert.match(data.flags_text, /O_RDWR\|O_APPEND/);
    assert.equal(data.cloexec, false);
    const r = byFd.get(Number(facts.piper)), w = byFd.get(Number(facts.pipew));
    assert.equal(r.kind, 'PIPE');
    assert.equal(r.pipe.bytes, 5);
    assert.equal(r.pipe.end, 'read');
    assert.equal(w.pipe.end, 'write');
    assert.equal(w.cloexec, true);
    assert.equal(r.cloexec, false);
    assert.deepEqual([0, 1, 2].map((n) => byFd.get(n).path), ['/dev/null', '/dev/null', '/dev/null']);
    const out = text(['show', '-D', imgA, '--files']);
    assert.match(out, /5 bytes in the pipe/);
    assert.ok(out.includes(join(work, 'w', 'data')));
  });

  test('--maps: ranges, prot, kind, saved pages, path', SLOW, () => {
    const vmas = json(['show', '-D', imgA, '--maps', '--json']).maps[0].vmas as any[];
    const holding = (a: number) => vmas.find((v) => Number(BigInt(v.start)) <= a && a < Number(BigInt(v.end)));
    assert.equal(holding(addr('secret')).path, '[heap]');
    const ro = holding(addr('ro'));
    assert.equal(ro.prot, 'r--');
    assert.equal(ro.kind, 'ANON');
    assert.equal(ro.saved_pages, 2);
    assert.equal(ro.saved_bytes, 8192);
    assert.ok(vmas.some((v) => v.path === '[stack]'));
    assert.ok(vmas.some((v) => v.kind === 'VDSO'));
    const out = text(['show', '-D', imgA, '--maps']);
    assert.match(out, /\[heap\]/);
    assert.ok(out.includes(`${facts.ro}-`), out);
  });

  test('sections combine, and plain show still works', SLOW, () => {
    const j = json(['show', '-D', imgA, '--tree', '--files', '--maps', '--cmdline', '--env', '--json']);
    assert.deepEqual(Object.keys(j), ['tree', 'files', 'maps', 'cmdline', 'env']);
    const out = text(['show', '-D', imgA, '--tree', '--maps']);
    assert.match(out, /^== tree$/m);
    assert.match(out, /^== maps$/m);
    assert.equal(json(['show', '-D', imgA, '--json']).processes[0].task.pid, pid);
  });
});

describe('ckpt diff', () => {
  test('reports the pages the program changed, and none in the read-only region', SLOW, () => {
    const d = json(['diff', imgA, imgB, '--json']);
    assert.equal(d.identical, false);
    assert.equal(d.processes.length, 1);
    const p = d.processes[0];
    assert.equal(p.pid, pid);
    const counter = addr('counter');
    const inRange = (a: number, g: any) => Number(BigInt(g.start)) <= a && a < Number(BigInt(g.end));
    const ranges = (p.pages.vmas as any[]).flatMap((v) => v.ranges);
    assert.ok(ranges.some((g) => g.how === 'changed' && inRange(counter, g)), `the counter page: ${JSON.stringify(ranges)}`);
    assert.ok(p.pages.changed >= 1);
    const ro = addr('ro');
    assert.ok(!(p.pages.vmas as any[]).some((v) => inRange(ro, v.vma)), 'no change in the read-only region');
    assert.ok(!(p.pages.vmas as any[]).some((v) => v.vma.prot[1] !== 'w'), 'no change in any read-only VMA');
    assert.deepEqual(p.vmas, { added: [], removed: [], changed: [] });
    // The protocol opens W/.NAME.tmp for an instant: a dump may catch it open.
    const notProtocol = (f: any) => !/\/w\/\.[a-z]+\.tmp$/.test(f.path ?? '');
    assert.deepEqual(p.fds.added.filter(notProtocol), []);
    assert.deepEqual(p.fds.removed.filter(notProtocol), []);
    assert.deepEqual(p.fds.changed.filter((c: any) => c.fd <= Number(facts.pipew)), []);
    assert.ok(p.counters.some((c: any) => c.field === 'task.nvcsw' && c.delta > 0), JSON.stringify(p.counters));
    assert.ok(!p.state.some((c: any) => /utime|stime|nvcsw|min_flt/.test(c.field)));

    const out = text(['diff', imgA, imgB]);
    assert.match(out, /pages: \d+ changed/);
    assert.ok(out.includes(`0x${(counter - (counter % 4096)).toString(16)}-`), out);
    assert.match(out, /The images differ/);
  });

  test('an image against itself is identical', SLOW, () => {
    const d = json(['diff', imgA, imgA, '--json']);
    assert.equal(d.identical, true);
    assert.equal(d.processes[0].pages.changed, 0);
    assert.deepEqual(d.processes[0].counters, []);
    assert.match(text(['diff', imgA, imgA]), /The images are the same/);
  });
});
