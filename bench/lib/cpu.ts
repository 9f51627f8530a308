import { readFileSync } from 'node:fs';
import { sleep } from './clock.js';

/**
 * CPU accounting of the whole machine from /proc, to tell how much of it went to processes that
 * are not part of the benchmark (other work on a shared machine) during a measurement window.
 */

/** The processes of the benchmark: the orchestrator, every child it forked, redis-server. */
const benchPids = new Set<number>([process.pid]);

export function registerBenchPid(pid: number): void {
  benchPids.add(pid);
}

export function unregisterBenchPid(pid: number): void {
  benchPids.delete(pid);
}

/** Ticks (1/100 s) of all CPUs from the first line of /proc/stat. */
interface MachineTicks {
  readonly total: number;
  /** Busy in processes (user, nice, system). */
  readonly process: number;
  /**
   * Interrupt and softirq handling: on loopback, mostly the TCP receive path of the traffic itself.
   * With tick-based accounting it is also charged to the process that was running (its system
   * time), so it is part of `process` time of someone, not in addition to it.
   */
  readonly kernel: number;
  /** Time the hypervisor ran something else while this machine wanted the CPU. */
  readonly steal: number;
}

function machineTicks(): MachineTicks {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return {
    total: f.slice(0, 8).reduce((sum, v) => sum + v, 0),
    process: f[0] + f[1] + f[2],
    kernel: f[5] + f[6],
    steal: f[7],
  };
}

/** user + system ticks of one process; 0 once it is gone. */
function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

export interface CpuMark {
  readonly machine: MachineTicks;
  readonly bench: Map<number, number>;
}

export function cpuMark(): CpuMark {
  const bench = new Map<number, number>();
  for (const pid of benchPids) bench.set(pid, processTicks(pid));
  return { machine: machineTicks(), bench };
}

/** Where the machine's CPU went between two marks, each in % of one core (200 % = the 2-core machine). */
export interface CpuSplit {
  /** Processes outside the benchmark: other work on a shared machine (and softirq work done in ksoftirqd). */
  readonly foreign: number;
  /** irq + softirq time, wherever it ran: already inside the processes' system time when it ran in their context. */
  readonly kernel: number;
  readonly steal: number;
}

export function cpuSplit(from: CpuMark, to: CpuMark): CpuSplit {
  const totalTicks = to.machine.total - from.machine.total;
  if (totalTicks <= 0) return { foreign: 0, kernel: 0, steal: 0 };
  let benchTicks = 0;
  for (const [pid, ticks] of to.bench) {
    const before = from.bench.get(pid);
    if (before !== undefined) benchTicks += Math.max(0, ticks - before);
  }
  // /proc/stat counts ticks of every CPU: the window lasted totalTicks / cpus ticks of wall time.
  const wallTicks = totalTicks / cpuCount();
  const share = (ticks: number): number => (Math.max(0, ticks) / wallTicks) * 100;
  return {
    // Interrupt and softirq ticks are charged to the running process too (tick-based accounting):
    // busy time is process + kernel, and what the benchmark's processes were not charged is foreign.
    foreign: share(to.machine.process + to.machine.kernel - from.machine.process - from.machine.kernel - benchTicks),
    kernel: share(to.machine.kernel - from.machine.kernel),
    steal: share(to.machine.steal - from.machine.steal),
  };
}

/** CPU used by processes outside the benchmark between two marks, in % of one core. */
export function foreignCpuPct(from: CpuMark, to: CpuMark): number {
  return cpuSplit(from, to).foreign;
}

let cachedCpuCount = 0;
function cpuCount(): number {
  if (cachedCpuCount === 0) {
    cachedCpuCount = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .filter((line) => /^cpu\d+ /.test(line)).length;
  }
  return cachedCpuCount;
}

/** What awaitQuiet may spend waiting over the whole run, so a busy shared machine cannot stretch it without bound. */
let quietBudgetMs = 90_000;

/** Sets that budget (the run's config: less for `--quick`, which has to stay under 4 minutes). */
export function setQuietBudget(ms: number): void {
  quietBudgetMs = ms;
}

/**
 * Waits (at most `maxWaitMs`, and within the run's overall waiting budget) until processes
 * outside the benchmark use less than `limitPct` of a core over a 200 ms sample, so a window
 * does not start in the middle of someone else's work on a shared machine. Returns the last
 * foreign load seen.
 */
export async function awaitQuiet(limitPct = 25, maxWaitMs = 2_000): Promise<number> {
  const started = Date.now();
  const deadline = started + Math.min(maxWaitMs, quietBudgetMs);
  try {
    for (;;) {
      const from = cpuMark();
      await sleep(200);
      const foreign = foreignCpuPct(from, cpuMark());
      if (foreign < limitPct || Date.now() >= deadline) return foreign;
    }
  } finally {
    quietBudgetMs = Math.max(0, quietBudgetMs - (Date.now() - started - 200));
  }
}
