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
// for what ckpt starts. The shell does it itself: an exec of env(1) between
// it and node cost ~1 ms. To JavaScript the second line is a string and a comment.
const SH_PRELUDE = `#!/bin/sh
':' //; if [ -n "\${NODE_EXTRA_CA_CERTS+set}" ]; then export CKPT_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; fi; exec node "$0" "$@"`;

// Each `import fs from 'node:fs'` of each module becomes `__toESM(require("node:fs"), 1)`,
// which copies every property of the module as a getter: 46 copies of ~100 properties, ~3 ms
// of each start. A node builtin's namespace needs no copy: an object whose prototype is the
// module (its named exports) with the module as its default. Any other module's namespace is
// made once per mode: it is the same for every importer.
function shareNamespaces(src, file) {
  const builtins = src.split('__toESM(require("node:').length - 1;
  const others = src.split('__toESM(require(').length - 1 - builtins;
  const out = src
    .replace(/__toESM\(require\(("node:[^"]+")\), 1\)/g, '__nodeNamespace(require($1))')
    .replace(/__toESM\(require\(/g, '__toESMOnce(require(');
  if (out.includes('__toESM(require("node:')) throw new Error(`bundle: ${file} imports a node builtin in a form this script does not know`);
  const helper = `var __nodeNamespace = (mod) => Object.create(mod, { default: { value: mod, enumerable: true } });
var __toESMSeen = new Map();
var __toESMOnce = (mod, isNodeMode) => {
  let seen = __toESMSeen.get(mod);
  if (!seen) __toESMSeen.set(mod, (seen = []));
  return (seen[isNodeMode ? 1 : 0] ??= __toESM(mod, isNodeMode));
};
`;
  // After the helpers esbuild puts first, before any module's code.
  const at = out.indexOf('var __toESM = ');
  if (builtins + others > 0 && at < 0) throw new Error(`bundle: ${file} calls __toESM but does not define it where expected`);
  return builtins + others > 0 ? out.slice(0, at) + helper + out.slice(at) : out;
}

// esbuild writes strings, templates and regular expressions in ASCII (its default
// charset), but a comment it keeps (on a class field, say) as it was. One non-ASCII
// character makes V8 hold the whole 500 KB source in two bytes a character, and
// node read it ~1 ms slower at every start. Escaped on a comment's line; anywhere else
// (a tagged template's raw text, a line or paragraph separator, which would end a `//`
// comment) the build stops rather than change what the code means.
const COMMENT_LINE = /^\s*(\/\/|\/\*|\*)/;
function asciiOnly(src, file) {
  return src.split('\n').map((line, i) => {
    if (!/[^\x00-\x7f]/.test(line)) return line;
    if (!COMMENT_LINE.test(line) || /[\u2028\u2029\ufeff]/.test(line)) {
      throw new Error(`bundle: ${file}:${i + 1} has a non-ASCII character outside a comment: ${line.trim().slice(0, 120)}`);
    }
    return line.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }).join('\n');
}

function finish(file) {
  const src = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, asciiOnly(shareNamespaces(src, file), file));
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
for (const f of ['ckpt.js', 'ckpt-cli.js', 'helper-worker.js', 'engine-worker.js']) finish(`dist/bin/${f}`);
fs.writeFileSync('dist/bin/package.json', '{ "type": "commonjs" }\n');
fs.chmodSync('dist/bin/ckpt.js', 0o755);
