#!/usr/bin/env node
// Bundle the CLI (and the workers it starts) into dist/bin, as CommonJS: one
// script to compile instead of ~80 ES modules, and no ES module loader to
// start. koffi and the codecs stay external (native addons). The library
// (dist/src) is left unbundled.
//
//   ckpt.js          the executable (src/cli/loader.ts): compiles ckpt-cli.js
//                    with the code cache that scripts/train-code-cache.mjs makes
//   ckpt-cli.js      the command line and the engine (src/cli/bin.ts)
//   *-worker.js      the workers, each one file
//   package.json     says that the .js files here are CommonJS
import { build } from 'esbuild';
import fs from 'node:fs';

fs.rmSync('dist/bin', { recursive: true, force: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outdir: 'dist/bin',
  external: ['koffi', '@toondepauw/node-zstd', 'lz4-napi'],
  define: { 'import.meta.url': 'importMetaUrl' },
  inject: ['scripts/bundle-import-meta.js'],
  logLevel: 'warning',
};

// The executable starts as a shell script that runs node on itself without
// NODE_EXTRA_CA_CERTS: node 20 parses every CA certificate it names at
// start-up (~90 ms here), and ckpt makes no TLS connection. The variable is
// passed on as CKPT_EXTRA_CA_CERTS, and src/cli/extra-ca-certs.ts puts it back
// for what ckpt starts. To JavaScript the second line is a string and a comment.
const SH_PRELUDE = `#!/bin/sh
':' //; exec /usr/bin/env -u NODE_EXTRA_CA_CERTS \${NODE_EXTRA_CA_CERTS+"CKPT_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS"} node "$0" "$@"`;

// Each `import fs from 'node:fs'` of each module becomes `__toESM(require("node:fs"))`,
// which copies every property of the module as a getter: 46 copies of ~100 properties, ~3 ms
// of each start. One copy per module and mode is enough: a namespace is the same for all.
function shareNamespaces(file) {
  const src = fs.readFileSync(file, 'utf8');
  const calls = src.split('__toESM(require(').length - 1;
  const out = src.replace(/__toESM\(require\(/g, '__toESMOnce(require(');
  const helper = `var __toESMSeen = new Map();
var __toESMOnce = (mod, isNodeMode) => {
  let seen = __toESMSeen.get(mod);
  if (!seen) __toESMSeen.set(mod, (seen = []));
  return (seen[isNodeMode ? 1 : 0] ??= __toESM(mod, isNodeMode));
};
`;
  // After the helpers esbuild puts first, before any module's code.
  const at = out.indexOf('var __toESM = ');
  if (calls > 0 && at < 0) throw new Error(`bundle: ${file} calls __toESM but does not define it where expected`);
  if (calls > 0) fs.writeFileSync(file, out.slice(0, at) + helper + out.slice(at));
}

await build({ ...common, entryPoints: { ckpt: 'dist/src/cli/loader.js' }, banner: { js: SH_PRELUDE } });
await build({ ...common, entryPoints: { 'ckpt-cli': 'dist/src/cli/bin.js' } });
await build({
  ...common,
  entryPoints: {
    'helper-worker': 'dist/src/helper-worker.js',
    'engine-worker': 'dist/src/api/engine-worker.js',
  },
});
for (const f of ['ckpt-cli.js', 'helper-worker.js', 'engine-worker.js']) shareNamespaces(`dist/bin/${f}`);
fs.writeFileSync('dist/bin/package.json', '{ "type": "commonjs" }\n');
fs.chmodSync('dist/bin/ckpt.js', 0o755);
