/**
 * Which pages a dump saves: the kernel's PAGEMAP_SCAN walk (what ckpt uses
 * on Linux 6.7 and later) and ckpt's own read of /proc/PID/pagemap (the
 * fallback for older kernels) must choose the same runs, for anonymous and
 * for private file mappings (only their copied-on-write pages).
 */
import assert from 'node:assert/strict';
import { after, afterEach, test } from 'node:test';
import { Pagemap, readMaps } from '../src/proc/index.js';
import { selectPages, selectPagesByRead } from '../src/kinds/pages.js';
import { VmaKind, type VmaPlan } from '../src/kinds/vma.js';
import { cleanup, compile, killAll, makeWorkDir, startProgram, waitReady } from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

test('PAGEMAP_SCAN and a read of the pagemap choose the same pages of every mapping of mem.c', async () => {
  const work = makeWorkDir('pages-select');
  const { pid } = startProgram(compile('mem'), [work]);
  await waitReady(work, { pid });
  // Stopped, so that nothing changes between the two looks.
  process.kill(pid, 'SIGSTOP');
  const pagemap = new Pagemap(pid);
  const scratch = Buffer.alloc(64 * 1024 * 8);
  let pages = 0;
  try {
    // vdso and vvar are never saved (the kernel provides them).
    for (const vma of readMaps(pid).filter((v) => !v.path.startsWith('[v'))) {
      for (const kind of vma.path.startsWith('/') ? [VmaKind.FILE_PRIVATE] : [VmaKind.ANON]) {
        const plan = { vma, kind } as VmaPlan;
        const scanned = selectPages(pagemap, plan, scratch);
        assert.deepEqual(scanned, selectPagesByRead(pagemap, plan, scratch), `${vma.start.toString(16)}-${vma.end.toString(16)} ${vma.path}`);
        pages += scanned.reduce((n, [, k]) => n + k, 0);
      }
    }
  } finally {
    pagemap.close();
  }
  // mem.c holds 64 MiB of its own: the comparison looked at real data.
  assert.ok(pages > 16 * 1024, `${pages} pages chosen`);
});
