#!/usr/bin/env node
// Bundle the CLI (and the workers it starts) into dist/bin: one module to
// compile instead of ~80 cuts ckpt's start-up by ~100 ms. koffi stays
// external (a native addon). The library (dist/src) is left unbundled.
import { build } from 'esbuild';

await build({
  entryPoints: {
    ckpt: 'dist/src/cli/main.js',
    'helper-worker': 'dist/src/helper-worker.js',
    'engine-worker': 'dist/src/api/engine-worker.js',
  },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outdir: 'dist/bin',
  external: ['koffi', '@toondepauw/node-zstd', 'lz4-napi'],
  logLevel: 'warning',
});
(await import('node:fs')).chmodSync('dist/bin/ckpt.js', 0o755);
