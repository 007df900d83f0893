import { readProcText } from './read.js';
import { badProc, lines } from './text.js';

export type IdQuad = [real: number, effective: number, saved: number, fs: number];

/** /proc/PID/status, keys in camelCase of the kernel's own. */
export interface Status {
  /** comm, with the kernel's \n and \\ escapes undone */
  name: string;
  umask?: number;
  /** the state letter: R S D T t Z X I ... */
  state: string;
  tgid: number;
  ngid: number;
  pid: number;
  ppid: number;
  tracerPid: number;
  uid: IdQuad;
  gid: IdQuad;
  fdSize: number;
  groups: number[];
  /** outermost pid namespace first; the last value is the id in the task's own namespace */
  nstgid: number[];
  nspid: number[];
  nspgid: number[];
  nssid: number[];
  kthread?: boolean;
  threads: number;
  sigQ: [queued: number, limit: number];
  sigPnd: bigint;
  shdPnd: bigint;
  sigBlk: bigint;
  sigIgn: bigint;
  sigCgt: bigint;
  capInh: bigint;
  capPrm: bigint;
  capEff: bigint;
  capBnd: bigint;
  capAmb: bigint;
  noNewPrivs: boolean;
  /** SECCOMP_MODE_DISABLED 0, STRICT 1, FILTER 2 */
  seccomp: number;
  seccompFilters: number;
  speculationStoreBypass?: string;
  cpusAllowedList: string;
  memsAllowedList: string;
  voluntaryCtxtSwitches: number;
  nonvoluntaryCtxtSwitches: number;
  /** every 'N kB' line by its kernel key: VmPeak, VmRSS, RssAnon, VmSwap, HugetlbPages... */
  kB: Record<string, number>;
  /** every line, by its kernel key, value trimmed (Name untrimmed, still escaped) */
  raw: Record<string, string>;
}

export function parseStatus(text: string): Status {
  const raw: Record<string, string> = {};
  const kB: Record<string, number> = {};
  for (const line of lines(text)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw badProc('status', `line ${JSON.stringify(line)}`);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1);
    // Name keeps leading/trailing blanks: they are part of comm
    raw[key] = key === 'Name' ? value.replace(/^\t/, '') : value.trim();
    const k = /^(\d+) kB$/.exec(raw[key]!);
    if (k) kB[key] = Number(k[1]);
  }

  const get = (key: string): string => {
    const v = raw[key];
    if (v === undefined) throw badProc('status', `missing ${key}`);
    return v;
  };
  const int = (key: string): number => toInt(get(key), key);
  const ints = (key: string): number[] => get(key).split(/\s+/).filter(Boolean).map((s) => toInt(s, key));
  const quad = (key: string): IdQuad => {
    const v = ints(key);
    if (v.length !== 4) throw badProc('status', `${key} ${JSON.stringify(raw[key])}`);
    return v as IdQuad;
  };
  const mask = (key: string): bigint => {
    const v = get(key);
    if (!/^[0-9a-f]+$/.test(v)) throw badProc('status', `${key} ${JSON.stringify(v)}`);
    return BigInt('0x' + v);
  };
  const sigQ = /^(\d+)\/(\d+)$/.exec(get('SigQ'));
  if (!sigQ) throw badProc('status', `SigQ ${JSON.stringify(raw['SigQ'])}`);

  return {
    name: unescapeName(get('Name')),
    umask: raw['Umask'] === undefined ? undefined : parseInt(raw['Umask'], 8),
    state: get('State').charAt(0),
    tgid: int('Tgid'),
    ngid: int('Ngid'),
    pid: int('Pid'),
    ppid: int('PPid'),
    tracerPid: int('TracerPid'),
    uid: quad('Uid'),
    gid: quad('Gid'),
    fdSize: int('FDSize'),
    groups: ints('Groups'),
    nstgid: ints('NStgid'),
    nspid: ints('NSpid'),
    nspgid: ints('NSpgid'),
    nssid: ints('NSsid'),
    kthread: raw['Kthread'] === undefined ? undefined : raw['Kthread'] === '1',
    threads: int('Threads'),
    sigQ: [Number(sigQ[1]), Number(sigQ[2])],
    sigPnd: mask('SigPnd'),
    shdPnd: mask('ShdPnd'),
    sigBlk: mask('SigBlk'),
    sigIgn: mask('SigIgn'),
    sigCgt: mask('SigCgt'),
    capInh: mask('CapInh'),
    capPrm: mask('CapPrm'),
    capEff: mask('CapEff'),
    capBnd: mask('CapBnd'),
    capAmb: mask('CapAmb'),
    noNewPrivs: int('NoNewPrivs') !== 0,
    seccomp: int('Seccomp'),
    seccompFilters: int('Seccomp_filters'),
    speculationStoreBypass: raw['Speculation_Store_Bypass'],
    cpusAllowedList: get('Cpus_allowed_list'),
    memsAllowedList: get('Mems_allowed_list'),
    voluntaryCtxtSwitches: int('voluntary_ctxt_switches'),
    nonvoluntaryCtxtSwitches: int('nonvoluntary_ctxt_switches'),
    kB,
    raw,
  };
}

function toInt(s: string, key: string): number {
  if (!/^-?\d+$/.test(s)) throw badProc('status', `${key} ${JSON.stringify(s)}`);
  return Number(s);
}

// status escapes only '\n' and '\\' in Name (comm itself may hold any byte but NUL)
function unescapeName(s: string): string {
  return s.replace(/\\([n\\])/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
}

export const readStatus = (pid: number): Status => parseStatus(readProcText(pid, 'status'));

/**
 * The last entry of an NSpid/NStgid/NSpgid/NSsid list: the id as the task's
 * own (innermost) pid namespace sees it; `fallback` when the list is empty.
 */
export const innermost = (ids: number[], fallback: number): number => (ids.length ? ids[ids.length - 1] : fallback);

/** The status of one thread of a process. */
export const readTaskStatus = (pid: number, tid: number): Status => parseStatus(readProcText(pid, `task/${tid}/status`));
