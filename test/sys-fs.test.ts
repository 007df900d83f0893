/**
 * onMemoryFs (sys/syscalls.ts): whether a file has no disk behind it, which
 * decides that startWriteback does nothing there.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { onMemoryFs } from '../src/sys/syscalls.js';

test('onMemoryFs tells tmpfs from a disk', (t) => {
  const shm = fs.mkdtempSync('/dev/shm/ckpt-fs-');
  const disk = fs.mkdtempSync(path.join(process.cwd(), '.ckpt-fs-'));
  try {
    const fd = fs.openSync(path.join(shm, 'f'), 'w+');
    try {
      assert.equal(onMemoryFs(fd), true);
    } finally {
      fs.closeSync(fd);
    }
    const diskFd = fs.openSync(path.join(disk, 'f'), 'w+');
    try {
      const type = fs.statfsSync(disk).type;
      if (type === 0x01021994 || type === 0x858458f6) t.diagnostic('the working directory is on tmpfs: no disk to compare');
      else assert.equal(onMemoryFs(diskFd), false);
    } finally {
      fs.closeSync(diskFd);
    }
    assert.equal(onMemoryFs(987654), undefined, 'a bad fd');
  } finally {
    fs.rmSync(shm, { recursive: true, force: true });
    fs.rmSync(disk, { recursive: true, force: true });
  }
});
