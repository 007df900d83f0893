#!/usr/bin/env node
// npm run demo: start a sample process, checkpoint it (which kills it),
// restore it from the image, and show that it carried on where it stopped.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ckptBin = path.join(root, 'dist/bin/ckpt.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-demo-'));
const bin = path.join(work, 'counter');
const out = path.join(work, 'counter.out');
const image = path.join(work, 'image');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const read = () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').trim() : '');
const alive = (pid) => fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
let pid = 0;

function ckpt(...args) {
  console.log(`$ ckpt ${args.join(' ')}`);
  const r = spawnSync(ckptBin, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`ckpt ${args[0]} failed (exit ${r.status})`);
}

async function main() {
  execFileSync('cc', ['-O2', '-o', bin, path.join(root, 'examples/counter.c')]);
  // Not a child of ckpt: the sample runs in its own session, as a user's process would.
  const child = spawn(bin, [out], { detached: true, stdio: 'ignore' });
  pid = child.pid;
  child.unref();
  await sleep(800);
  console.log(`sample process ${pid} is running: ${read()}`);
  const before = Number(read().split(' ')[0]);
  ckpt('dump', '-t', String(pid), '-D', image, '-v');
  await sleep(300);
  console.log(`after the dump: process ${pid} ${alive(pid) ? 'is still running?!' : 'is gone'}; its file says: ${read()}`);
  for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) await sleep(100); // the old pid must be free
  ckpt('restore', '-D', image, '-d', '-v');
  await sleep(1000);
  const after = read();
  const n = Number(after.split(' ')[0]);
  console.log(`restored process ${pid} is running: ${after}`);
  const ok = alive(pid) && n > before && after.endsWith('memory-ok');
  console.log(ok ? `It carried on: the count went from ${before} on past the dump to ${n}, with its memory intact.` : 'The restored process did not carry on.');
  return ok ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (e) => { console.error(`demo: ${e.message}`); process.exitCode = 1; })
  .finally(() => {
    if (pid) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    fs.rmSync(work, { recursive: true, force: true });
  });
