import { pagesCrc } from '../kinds/pages.js';

export interface PageCheck { offset: number; len: number; crc: number; what: string }

/** Index of the first range whose CRC differs, or -1. */
export function checkPageCrcs(fd: number, checks: PageCheck[]): number {
  return checks.findIndex((c) => pagesCrc(fd, c.offset, c.len) !== c.crc);
}
