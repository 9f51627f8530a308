import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface ProfileEntry {
  readonly name: string;
  readonly location: string;
  readonly area: string;
  readonly selfMs: number;
  /** Share of the non-idle samples. */
  readonly share: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  readonly busyMs: number;
  readonly top: readonly ProfileEntry[];
  readonly areas: readonly { readonly area: string; readonly selfMs: number; readonly share: number }[];
}

/** Where a function lives, in words a reader of the report knows. */
function areaOf(url: string, name: string): string {
  if (name === '(garbage collector)') return 'garbage collector';
  if (name === '(program)') return 'V8/native (program)';
  if (name === '(idle)') return 'idle';
  if (url.includes('/dist-bench/src/')) return 'nestjs-wse';
  if (url.includes('/bench/')) return 'bench publish loop';
  // The innermost package: ws nested under @nestjs/platform-ws is ws.
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const pkg = /^((?:@[^/]+\/)?[^/]+)/.exec(url.slice(nm + 'node_modules/'.length));
    if (pkg !== null) return pkg[1];
  }
  if (url.startsWith('node:')) return 'Node core (net, streams, timers)';
  if (url === '') return 'V8/native builtins';
  return 'other';
}

function shortLocation(url: string, line: number): string {
  if (url === '') return '';
  let path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) path = path.slice(nm + 'node_modules/'.length);
  else if (path.includes('/dist-bench/')) path = path.slice(path.indexOf('/dist-bench/') + '/dist-bench/'.length);
  return `${path}:${line + 1}`;
}

/**
 * Self time per function of the newest `.cpuprofile` in `dir`, counting only the samples taken
 * between `fromUs` and `toUs` (the monotonic clock of `process.hrtime`, which V8's profiler uses
 * too): start-up and connection setup stay out of the picture.
 */
export function summarizeProfile(dir: string, fromUs: number, toUs: number, topCount = 15): ProfileSummary {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  const file = join(dir, files[files.length - 1]);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, CpuProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfUs = new Map<string, { name: string; location: string; area: string; us: number }>();
  let totalUs = 0;
  let idleUs = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i];
    if (at < fromUs || at > toUs) continue;
    // timeDeltas[i + 1] is the time from this sample to the next: how long this stack ran.
    const delta = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    totalUs += delta;
    if (name === '(idle)') {
      idleUs += delta;
      continue;
    }
    const key = `${name}@${url}:${lineNumber}`;
    let entry = selfUs.get(key);
    if (entry === undefined) {
      entry = { name, location: shortLocation(url, lineNumber), area: areaOf(url, name), us: 0 };
      selfUs.set(key, entry);
    }
    entry.us += delta;
  }
  const busyUs = Math.max(1, totalUs - idleUs);
  const entries = [...selfUs.values()].sort((a, b) => b.us - a.us);
  const areas = new Map<string, number>();
  for (const e of entries) areas.set(e.area, (areas.get(e.area) ?? 0) + e.us);
  return {
    file,
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    top: entries.slice(0, topCount).map((e) => ({
      name: e.name,
      location: e.location,
      area: e.area,
      selfMs: e.us / 1000,
      share: e.us / busyUs,
    })),
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, selfMs: us / 1000, share: us / busyUs })),
  };
}

/** Who a sample's time belongs to: the first of these a stack meets, from its leaf up. */
export interface Owner {
  readonly owner: string;
  readonly test: (url: string) => boolean;
}

/** The innermost package of a script URL (ws nested under @nestjs/platform-ws is ws), or ''. */
function packageOf(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm < 0) return '';
  return /^((?:@[^/]+\/)?[^/]+)/.exec(url.slice(nm + 'node_modules/'.length))?.[1] ?? '';
}

const inPackages =
  (...names: string[]) =>
  (url: string): boolean =>
    names.includes(packageOf(url));

/** The accept path's owners: what a handshake's server time is spent on. */
export const ACCEPT_OWNERS: readonly Owner[] = [
  {
    owner: 'token verification (@nestjs/jwt, jsonwebtoken, jws, jwa)',
    test: inPackages('@nestjs/jwt', 'jsonwebtoken', 'jws', 'jwa'),
  },
  {
    owner: "Nest's upgrade path (@nestjs/platform-ws, @nestjs/websockets, rxjs)",
    test: inPackages('@nestjs/platform-ws', '@nestjs/websockets', 'rxjs'),
  },
  { owner: 'nestjs-wse handshake and gateway (and the writes they make)', test: (u) => u.includes('/dist-bench/src/') },
  { owner: 'ws (upgrade, 101 response, socket setup)', test: inPackages('ws') },
];

/**
 * Inclusive shares of the busy samples between `fromUs` and `toUs` per owner: each sample goes to
 * the first owner found walking its stack from the leaf up (a crypto call under jsonwebtoken is
 * token verification; `new URL` under Nest's upgrade listener is Nest's), else to "Node (net,
 * http parser, GC)".
 */
export function ownerShares(
  dir: string,
  fromUs: number,
  toUs: number,
  owners: readonly Owner[],
): { readonly owner: string; readonly share: number }[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, files[files.length - 1]), 'utf8')) as CpuProfile & {
    readonly nodes: readonly (CpuProfileNode & { readonly children?: readonly number[] })[];
  };
  const byId = new Map<number, CpuProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const rest = 'Node (net, http parser, streams, GC)';
  const totals = new Map<string, number>();
  let busy = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i];
    if (at < fromUs || at > toUs) continue;
    const delta = profile.timeDeltas[i + 1] ?? 0;
    let id: number | undefined = profile.samples[i];
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    busy += delta;
    let owner = rest;
    while (id !== undefined) {
      const url = byId.get(id)?.callFrame.url ?? '';
      const found = owners.find((o) => o.test(url));
      if (found !== undefined) {
        owner = found.owner;
        break;
      }
      id = parent.get(id);
    }
    totals.set(owner, (totals.get(owner) ?? 0) + delta);
  }
  return [...owners.map((o) => o.owner), rest].map((owner) => ({
    owner,
    share: (totals.get(owner) ?? 0) / Math.max(1, busy),
  }));
}
