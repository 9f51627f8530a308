import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { PublishVia } from '../lib/apis.js';
import type { BenchConfig, RampConfig } from '../lib/config.js';
import type { LoadClients, Server, Window } from '../lib/rig.js';
import type { Results } from '../lib/results.js';

export interface Context {
  readonly config: BenchConfig;
  readonly results: Results;
  readonly jwtSecret: string;
  /** Development filter (`--systems=wse,socketio`): the systems to run; all when undefined. */
  readonly systems: readonly string[] | undefined;
  /** `--baseline=<index.js of another build>`: that build runs as `wse-base` beside `wse`. */
  readonly baseline: string | undefined;
  /** Epoch ms past which the remaining measurements are skipped (and the report says so). */
  readonly budgetEndsAt: number;
  log(line: string): void;
}

/** False, with a note in the report, once the run's time budget is spent. */
export function withinBudget(ctx: Context, what: string): boolean {
  if (Date.now() < ctx.budgetEndsAt) return true;
  ctx.results.note(`${what}: skipped, the run's time budget was spent`);
  return false;
}

/** The systems of `list` the run includes. */
export function selected<T extends string>(ctx: Context, list: readonly T[]): T[] {
  return list.filter((s) => ctx.systems === undefined || ctx.systems.includes(s));
}

/** The list, plus the baseline build of nestjs-wse right after `wse` when `--baseline` is given. */
export function withBaseline<T extends string>(ctx: Context, list: readonly T[]): (T | 'wse-base')[] {
  if (ctx.baseline === undefined) return [...list];
  const out: (T | 'wse-base')[] = [];
  for (const s of list) {
    out.push(s);
    if (s === 'wse') out.push('wse-base');
  }
  return out;
}

/** The figures of one measurement window, as stored in Results. */
export function windowMetrics(w: Window, mode: 'burst' | 'paced'): Record<string, number> {
  const loopSec = Math.max(1, w.loop.endMs - w.loop.startMs) / 1000;
  // Paced windows are judged against their schedule: what was offered, over the schedule's length.
  const scheduledSec = (w.loop.scheduledMs ?? w.loop.endMs - w.loop.startMs) / 1000;
  const offered = (w.loop.scheduled ?? w.loop.published) * w.subscribers;
  const held = offered === 0 ? 0 : w.frames / offered;
  const p99 = w.latency.quantile(0.99);
  const receiptSec = Math.max(1, w.lastFrameMs - w.loop.startMs) / 1000;
  // A burst runs to its last delivery. A paced rate that was held delivered its offer over the
  // schedule; one that was not is charged the whole time until its last delivery.
  const deliverySec =
    mode === 'burst' ? receiptSec : held >= 0.99 && p99 < 100 ? scheduledSec : Math.max(scheduledSec, receiptSec);
  const spanMs = mode === 'burst' ? Math.max(w.lastFrameMs, w.loop.endMs) - w.loop.startMs : w.wallMs;
  return {
    deliveriesPerSec: Math.min(w.frames, offered) / deliverySec,
    msgsPerSec: w.loop.published / (mode === 'burst' ? loopSec : Math.max(loopSec, scheduledSec)),
    offeredDeliveriesPerSec: offered / scheduledSec,
    held,
    cpuUsPerDelivery: w.serverCpuUs / Math.max(1, w.frames),
    framesPerRead: w.frames / Math.max(1, w.reads),
    serverCpuPct: w.serverCpuUs / 10 / Math.max(1, spanMs),
    otherServerCpuPct: w.otherServerCpuUs / 10 / Math.max(1, spanMs),
    clientCpuPct: w.clientCpuUs / 10 / Math.max(1, spanMs),
    p50: w.latency.quantile(0.5),
    p99,
    p999: w.latency.quantile(0.999),
    samples: w.latency.total,
    dropped: w.dropped,
    foreignCpuPct: w.cpu.foreign,
    kernelCpuPct: w.cpu.kernel,
    stealCpuPct: w.cpu.steal,
  };
}

/** Sample about 20k frames/s across the clients: enough for p99.9, cheap for the load generator. */
export function sampleEvery(deliveriesPerSec: number): number {
  return Math.max(1, Math.round(deliveriesPerSec / 20_000)) | 1;
}

/** A fixed rate is held when (nearly) everything offered arrived and the p99 stayed bounded. */
export function holds(m: Record<string, number>): boolean {
  return m.held >= 0.99 && m.p99 < 100;
}

/** Publishes one message and checks that every subscriber got it exactly once. */
export async function verifyDelivery(
  publisher: Server,
  clients: LoadClients,
  topic: string,
  via: PublishVia,
  subscribers: number,
): Promise<void> {
  await clients.reset(1);
  await publisher.child.call('publishOne', { topic, via });
  const frames = await clients.settle(subscribers, 1_000, 5_000);
  if (frames !== subscribers) {
    throw new Error(`${publisher.system}: a check message reached ${frames} of ${subscribers} subscribers`);
  }
}

/** Cross-checks the raw Engine.IO clients against the official socket.io-client. */
export async function verifySocketIo(
  publisher: Server,
  subscriberServer: Server,
  clients: LoadClients,
  topic: string,
  via: PublishVia,
): Promise<void> {
  const checker = clients.clients[0];
  await checker.call('socketIoCheckStart', { port: subscriberServer.port, topic });
  await publisher.child.call('publishOne', { topic, via });
  const received = await checker.call('socketIoCheckResult', { timeoutMs: 5_000 });
  if (!received.includes('"t":"bench"')) throw new Error(`socket.io-client received ${received}`);
}

/**
 * Raises the offered rate step by step from `startRate` until a step is not held (see `holds`);
 * returns the figures of the highest held step, or undefined when none held.
 */
export async function ramp(
  ramp: RampConfig,
  startRate: number,
  step: (rate: number) => Promise<Record<string, number>>,
  log: (line: string) => void,
): Promise<{ best: Record<string, number> | undefined; firstFailedRate: number }> {
  let best: Record<string, number> | undefined;
  let rate = startRate;
  for (let i = 0; i < ramp.maxSteps && rate <= ramp.capRate; i++) {
    const m = { ...(await step(rate)), rate };
    log(`    ramp ${rate} msg/s: ${describe(m)}${holds(m) ? '' : '  (not held)'}`);
    if (!holds(m)) return { best, firstFailedRate: rate };
    best = m;
    rate = Math.round(rate * ramp.factor);
  }
  return { best, firstFailedRate: Number.NaN };
}

/** Where a rate sweep records its figures: `results.add(scenario, <case>, system, rep, ...)`. */
export interface SweepTarget {
  readonly scenario: 'sustained' | 'cross';
  readonly system: string;
  readonly rep: number;
}

/**
 * The fixed offered rates, then the ramp: each fixed rate is measured and recorded as
 * `rate=<r>` (rates above one not held are recorded as skipped, not run), `between` runs after
 * them (and may measure more), then the ramp starts from the highest held fixed rate (times
 * the ramp factor) and the maximum is recorded as `max`.
 */
export async function rateSweep(
  ctx: Context,
  target: SweepTarget,
  config: { readonly rates: readonly number[]; readonly durationMs: number; readonly ramp: RampConfig },
  measure: (rate: number, durationMs: number) => Promise<Record<string, number>>,
  options: {
    drain: () => Promise<void>;
    describeExtra?: (m: Record<string, number>) => string;
    between?: () => Promise<void>;
  },
): Promise<void> {
  const { scenario, system, rep } = target;
  const extra = options.describeExtra ?? (() => '');
  let bestFixed = 0;
  let bestFixedMetrics: Record<string, number> | undefined;
  let failedAt = 0;
  for (const rate of config.rates) {
    if (failedAt > 0) {
      // A higher rate than one not held is not held either; running it only costs time.
      ctx.results.add(scenario, `rate=${rate}`, system, rep, { skippedAbove: failedAt });
      ctx.log(`  ${scenario} ${rate} msg/s ${system} #${rep}: not run, ${failedAt} msg/s was not held`);
      continue;
    }
    const m = { ...(await measure(rate, config.durationMs)), rate };
    ctx.results.add(scenario, `rate=${rate}`, system, rep, m);
    ctx.log(`  ${scenario} ${rate} msg/s ${system} #${rep}: ${describe(m)}${extra(m)}`);
    if (holds(m)) {
      bestFixed = rate;
      bestFixedMetrics = m;
    } else {
      failedAt = rate;
      await options.drain();
    }
  }
  await options.between?.();
  const start = bestFixed > 0 ? bestFixed * config.ramp.factor : config.rates[0];
  const { best, firstFailedRate } = await ramp(
    config.ramp,
    Math.round(start),
    (rate) => measure(rate, config.ramp.stepMs),
    ctx.log,
  );
  const max = best ?? bestFixedMetrics;
  if (max !== undefined) ctx.results.add(scenario, 'max', system, rep, { ...max, firstFailedRate });
  else ctx.results.note(`${scenario}, ${system}, repetition ${rep}: no offered rate was held`);
}

export function kilo(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x >= 10_000 ? `${Math.round(x / 1000)}k` : x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0);
}

export function describe(m: Record<string, number>): string {
  const parts = [`${kilo(m.deliveriesPerSec)} deliveries/s`, `held ${(m.held * 100).toFixed(1)}%`];
  if (Number.isFinite(m.p99)) parts.push(`p50 ${m.p50.toFixed(2)} / p99 ${m.p99.toFixed(2)} ms`);
  parts.push(`server ${m.serverCpuPct.toFixed(0)}% clients ${m.clientCpuPct.toFixed(0)}%`);
  parts.push(`${m.framesPerRead.toFixed(1)} frames/read`);
  if (m.dropped > 0) parts.push(`dropped ${m.dropped}`);
  parts.push(`irq+softirq ${m.kernelCpuPct.toFixed(0)}% (inside the others)`);
  if (m.foreignCpuPct >= 10) parts.push(`OTHER PROCESSES ${m.foreignCpuPct.toFixed(0)}%`);
  return parts.join(', ');
}

/** user+system CPU of another process (redis-server), microseconds, from /proc. */
export function processCpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime) in clock ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return Number.NaN;
  }
}

/** Redis's own count of PUBLISH commands. */
export async function publishCalls(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  const match = /cmdstat_publish:calls=(\d+)/.exec(info);
  return match === null ? 0 : Number(match[1]);
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0] : String(error);
}
