#!/usr/bin/env node
// Bundle the CLI (and the workers it starts) into dist/bin: one module to
// compile instead of ~80 cuts ckpt's start-up by ~100 ms. koffi stays
// external (a native addon). The library (dist/src) is left unbundled.
//
// The CLI is split: dist/bin/ckpt.js (src/cli/bin.ts) imports the command
// line, and the engine's code and `ckpt run`'s are chunks that only the
// commands using them import. The workers are bundled whole, each one file.
import { build } from 'esbuild';
import fs from 'node:fs';

// Chunk names carry a hash: start empty so that no stale chunk ships.
fs.rmSync('dist/bin', { recursive: true, force: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outdir: 'dist/bin',
  external: ['koffi', '@toondepauw/node-zstd', 'lz4-napi'],
  logLevel: 'warning',
};

// The executable starts as a shell script that runs node on itself without
// NODE_EXTRA_CA_CERTS: node 20 parses every CA certificate it names at
// start-up (~90 ms here), and ckpt makes no TLS connection. The variable is
// passed on as CKPT_EXTRA_CA_CERTS, and bin.ts puts it back for what ckpt
// starts. To JavaScript the second line is a string and a comment.
const SH_PRELUDE = `#!/bin/sh
':' //; exec /usr/bin/env -u NODE_EXTRA_CA_CERTS \${NODE_EXTRA_CA_CERTS+"CKPT_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS"} node "$0" "$@"`;

await build({
  ...common,
  entryPoints: { ckpt: 'dist/src/cli/bin.js' },
  splitting: true,
  chunkNames: 'ckpt-[name]-[hash]',
  banner: { js: SH_PRELUDE },
});
await build({
  ...common,
  entryPoints: {
    'helper-worker': 'dist/src/helper-worker.js',
    'engine-worker': 'dist/src/api/engine-worker.js',
  },
});
fs.chmodSync('dist/bin/ckpt.js', 0o755);
