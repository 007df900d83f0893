/**
 * The npm package as a user gets it: `npm pack`, then `npm install ./ckpt-*.tgz`
 * into an empty directory, then `npx ckpt check` and `import('ckpt')` there,
 * with no build step.
 *
 * `npm test` has just built dist/, so the pack here skips the prepack script
 * (`npm run build`: a second full build would double this test's time); the
 * test checks that prepack is there, so that a plain `npm pack` from a fresh
 * clone builds first.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { REPO_ROOT } from './lib/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'ckpt-package-'));
after(() => { if (process.env.CKPT_TEST_KEEP !== '1') rmSync(tmp, { recursive: true, force: true }); });

/** The environment without what `npm test` exports to its scripts (npm_config_*, npm_package_*...). */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 90_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} (in ${cwd}) failed: ${r.status ?? r.error}\n${r.stderr}\n${r.stdout}`);
  return r;
}

test('npm pack, npm install of the tarball, npx ckpt check and import("ckpt") work without a build', { timeout: 120_000 }, () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
  assert.equal(pkg.scripts.prepack, 'npm run build', 'npm pack builds first');

  const packDir = join(tmp, 'pack');
  mkdirSync(packDir);
  const packed = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], REPO_ROOT);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  const files = info.files.map((f) => f.path);
  for (const f of ['package.json', 'README.md', 'docs/api.md', 'docs/inspect.md', 'completions/ckpt.bash', pkg.bin.ckpt,
    'dist/bin/engine-worker.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/api/engine-worker.js']) {
    assert.ok(files.includes(f), `the package ships ${f}`);
  }
  assert.deepEqual(files.filter((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.startsWith('src/')), [], 'no tests, no TypeScript sources');

  // A fresh "machine": an empty project that installs the tarball (koffi from the registry or npm's cache).
  const app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'ckpt-package-test', version: '1.0.0', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(packDir, info.filename)], app);

  const check = run('npx', ['--no', '--', 'ckpt', 'check'], app);
  assert.match(check.stdout, /^ok {3}\S/m, `probes printed:\n${check.stdout}`);
  assert.match(check.stdout, /Looks good\.\n$/);

  const version = run('npx', ['--no', '--', 'ckpt', '--version'], app);
  assert.match(version.stdout, /^ckpt \d+\.\d+\.\d+/);

  const lib = run(process.execPath, ['-e', "import('ckpt').then(m => console.log(typeof m.dump))"], app);
  assert.equal(lib.stdout, 'function\n');
});
