/**
 * The records image/ itself owns: the file header and the END record. Types 0x0000-0x00ff
 * are reserved for image/; kinds use 0x0100 and up.
 *
 * ckpt.img = HEADER, the top-level records, END.
 *  - HEADER (0x0001), content ARRAY: fixed fields magic "CKPTIMG\0", format version,
 *    arch (ELF e_machine), page size, creation time (unix ns); children: one
 *    uts_release (NAME: the kernel release, uname -r) and one tool (NAME: e.g. "ckpt 0.1.0").
 *    A reader ignores header children it does not know. The framing of the header record
 *    and its first five fields are frozen across every format version, so that any
 *    version of ckpt can tell which version wrote an image.
 *  - END (0x0002): records = the number of top-level records before it, HEADER included.
 *    A file without END was cut short.
 */
import { Content } from './record.js';
import { defineRecord } from './schema.js';

export const IMAGE_MAGIC = Buffer.from('CKPTIMG\0', 'latin1');
export const FORMAT_VERSION_MAJOR = 1;
export const FORMAT_VERSION_MINOR = 0;
export const EM_X86_64 = 62;
export const PAGE_SIZE = 4096;

export const HEADER = defineRecord({
  type: 0x0001,
  name: 'header',
  content: Content.ARRAY,
  fields: {
    magic: 'bytes8',
    version_major: 'u16',
    version_minor: 'u16',
    arch: 'u16',
    page_size: 'u32',
    created_ns: 'u64',
  },
} as const);

export const END = defineRecord({
  type: 0x0002,
  name: 'end',
  content: Content.VOID,
  fields: { records: 'u32' },
} as const);

export const UTS_RELEASE = defineRecord({
  type: 0x0003,
  name: 'uts_release',
  content: Content.NAME,
  fields: {},
} as const);

export const TOOL = defineRecord({
  type: 0x0004,
  name: 'tool',
  content: Content.NAME,
  fields: {},
} as const);

export const IMAGE_SCHEMAS = [HEADER, END, UTS_RELEASE, TOOL] as const;

const ARCH_NAMES: Record<number, string> = { 3: 'i386', 40: 'arm', 62: 'x86_64', 183: 'aarch64', 243: 'riscv' };

export function archName(arch: number): string {
  return ARCH_NAMES[arch] ?? 'unknown';
}

/** What the header says, decoded. */
export interface ImageInfo {
  versionMajor: number;
  versionMinor: number;
  arch: number;
  pageSize: number;
  createdNs: bigint;
  utsRelease: string;
  tool: string;
}
