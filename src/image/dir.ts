/**
 * The image directory. A dump writes into DIR.partial (0700) and renames it to DIR on
 * success, so a crash never leaves a DIR that looks complete.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CkptError } from '../errors.js';
import { errnoOf, fsError } from './fserror.js';
import { IMAGE_FILE, PAGES_FILE } from './writer.js';

export const PARTIAL_SUFFIX = '.partial';
/** Where commit moves an image it replaces (with --force) until the new one is in place. */
export const REPLACED_SUFFIX = '.replaced';

function clean(dir: string): string {
  const d = dir.replace(/\/+$/, '');
  return d === '' ? dir : d;
}

export function partialDir(dir: string): string {
  return clean(dir) + PARTIAL_SUFFIX;
}

type DirState = 'missing' | 'empty' | 'image' | 'other' | 'not-dir';

function lstatOrNone(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false });
  } catch (err) {
    throw fsError(err, 'lstat', p);
  }
}

function dirState(dir: string): DirState {
  const st = lstatOrNone(dir);
  if (!st) return 'missing';
  if (!st.isDirectory()) return 'not-dir';
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw fsError(err, 'readdir', dir);
  }
  if (names.length === 0) return 'empty';
  return names.includes(IMAGE_FILE) ? 'image' : 'other';
}

function refuse(dir: string, state: DirState, force: boolean): void {
  if (state === 'image' && !force) {
    throw new CkptError('IMAGE_EXISTS', `${dir} already holds an image (use --force to overwrite)`, { path: dir });
  }
  if (state === 'other') throw new CkptError('USAGE', `${dir} is not empty and holds no image`, { path: dir });
  if (state === 'not-dir') throw new CkptError('USAGE', `${dir} exists and is not a directory`, { path: dir });
}

/**
 * Remove `p` and all below it, if it is there. Looked for first: node 20's
 * recursive rmSync is a module of JavaScript it compiles at its first use.
 */
function removeTree(p: string): void {
  if (!lstatOrNone(p)) return;
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch (err) {
    throw fsError(err, 'rm', p);
  }
}

function fsyncDir(p: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    fs.fsyncSync(fd);
  } catch (err) {
    throw fsError(err, 'fsync', p);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Check DIR and make a fresh, empty DIR.partial (0700) to write the image into.
 * Returns the path of DIR.partial.
 */
export function createImageDir(dir: string, opts: { force?: boolean } = {}): string {
  refuse(dir, dirState(dir), opts.force ?? false);
  const partial = partialDir(dir);
  removeTree(partial);
  try {
    fs.mkdirSync(partial, 0o700);
    fs.chmodSync(partial, 0o700); // whatever the umask
  } catch (err) {
    throw fsError(err, 'mkdir', partial);
  }
  return partial;
}

/**
 * Move DIR.partial to DIR. An empty DIR is removed first; a DIR holding an image (the
 * caller checked --force in createImageDir) is replaced; anything else is refused.
 */
export function commitImageDir(dir: string): void {
  const partial = partialDir(dir);
  const state = dirState(dir);
  refuse(dir, state, true);
  fsyncDir(partial);
  try {
    if (state === 'empty') fs.rmdirSync(dir);
  } catch (err) {
    throw fsError(err, 'rmdir', dir);
  }
  const replaced = clean(dir) + REPLACED_SUFFIX;
  if (state === 'image') {
    removeTree(replaced);
    try {
      fs.renameSync(dir, replaced);
    } catch (err) {
      throw fsError(err, 'rename', dir);
    }
  }
  try {
    fs.renameSync(partial, dir);
  } catch (err) {
    throw fsError(err, 'rename', partial);
  }
  fsyncDir(path.dirname(path.resolve(dir)));
  if (state === 'image') removeTree(replaced);
}

/** Remove DIR.partial (after a failed dump). */
export function abortImageDir(dir: string): void {
  removeTree(partialDir(dir));
}

export interface ImageDir {
  dir: string;
  /** DIR/ckpt.img */
  image: string;
  /** DIR/pages.img */
  pages: string;
}

/** The paths of the image in DIR; NO_IMAGE if DIR is missing or holds no ckpt.img. */
export function openImageDir(dir: string): ImageDir {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') throw new CkptError('NO_IMAGE', `no image at ${dir}: No such file or directory`, { path: dir });
    throw fsError(err, 'stat', dir);
  }
  const image = path.join(dir, IMAGE_FILE);
  const notImage = () => new CkptError('NO_IMAGE', `${dir} is not a ckpt image (no ${IMAGE_FILE})`, { path: dir });
  if (!st.isDirectory()) throw notImage();
  try {
    fs.lstatSync(image);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') throw notImage();
    throw fsError(err, 'lstat', image);
  }
  return { dir, image, pages: path.join(dir, PAGES_FILE) };
}
