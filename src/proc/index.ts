export { PROT_READ, PROT_WRITE, PROT_EXEC, parseMaps, parseVmaLine, readMaps, type Vma } from './maps.js';
export { parseSmaps, readSmaps, residentBytes, type SmapsVma } from './smaps.js';
export { innermost, parseStatus, readStatus, readTaskStatus, type Status, type IdQuad } from './status.js';
export { parseStat, readStat, type Stat } from './stat.js';
export { parseFdinfo, parseFdinfoPairs, readFdinfo, type Fdinfo } from './fdinfo.js';
export {
  parseAuxv, readAuxv, type AuxvEntry,
  AT_NULL, AT_PHDR, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_ENTRY, AT_HWCAP, AT_RANDOM, AT_HWCAP2,
  AT_EXECFN, AT_SYSINFO_EHDR, AT_MINSIGSTKSZ,
} from './auxv.js';
export { parseLimits, readLimits, RLIM_INFINITY, RLIMIT_NAMES, type Rlimit } from './limits.js';
export { parseChildren, readChildren, readTids } from './tasks.js';
export { readFdList, readFdLink } from './fd.js';
export { readCmdline, readEnviron, readComm, readThreadComm } from './cmdline.js';
export { readExe, readCwd, readRoot } from './links.js';
export { Pagemap, PM_PRESENT, PM_SWAPPED, PM_FILE } from './pagemap.js';
