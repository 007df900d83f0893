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
import crypto from 'node:crypto';
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

await build({ ...common, entryPoints: { ckpt: 'dist/src/cli/loader.js' }, banner: { js: SH_PRELUDE } });
// The build id ties the code cache to this bundle: V8 itself checks only the source's length.
const id = crypto.randomBytes(16).toString('hex');
await build({ ...common, entryPoints: { 'ckpt-cli': 'dist/src/cli/bin.js' }, banner: { js: `// ckpt build ${id}` } });
await build({
  ...common,
  entryPoints: {
    'helper-worker': 'dist/src/helper-worker.js',
    'engine-worker': 'dist/src/api/engine-worker.js',
  },
});
fs.writeFileSync('dist/bin/package.json', '{ "type": "commonjs" }\n');
fs.chmodSync('dist/bin/ckpt.js', 0o755);
