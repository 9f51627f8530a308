import type { TitledProfile } from '../scenarios/profile.js';
import { renderChart, renderLineChart, type ChartLine, type ChartPanel } from './chart.js';
import type { BenchConfig } from './config.js';
import type { MachineInfo } from './machine.js';
import type { Results, Summary } from './results.js';
import { scaleSection, scaleTargets } from './report-scale.js';
import { WSE_BACKOFF_DEFAULTS } from '../../src/client/backoff.js';

/** WseClient's default reconnect bounds in seconds, as the storm ran them: "1, 1.5, 2.25". */
function wseBackoffBounds(count: number): string {
  const { initialDelayMs, factor, maxDelayMs } = WSE_BACKOFF_DEFAULTS;
  return Array.from({ length: count }, (_, i) => Math.min(maxDelayMs, initialDelayMs * factor ** i) / 1000)
    .map((bound) => String(Math.round(bound * 100) / 100))
    .join(', ');
}

/** Everything about the run that is not a measurement. */
export interface RunInfo {
  readonly config: BenchConfig;
  readonly command: string;
  readonly startedAt: Date;
  readonly durationMs: number;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly machine: MachineInfo;
  readonly profiles: readonly TitledProfile[];
  readonly chartFile: string;
  /** The reconnect storm's chart (clients connected over time). */
  readonly stormChartFile: string;
  /** Systems measured at the large connection count. */
  readonly largeSizeSystems: ReadonlySet<string>;
  /** `--baseline=`: the baseline build measured as `wse-base`, when given. */
  readonly baseline?: string;
}

export interface Target {
  readonly name: string;
  readonly measured: string;
  /** undefined: not measured in this run. */
  readonly met: boolean | undefined;
}

const LABEL: Readonly<Record<string, string>> = {
  'ws-naive': '(a) ws, naive send loop',
  'ws-prebuilt': '(b) ws, pre-built frames',
  socketio: '(c) Socket.IO 4',
  wse: '(d) nestjs-wse',
  'wse-base': '(d) nestjs-wse, baseline build',
  'wse-history': '(d) nestjs-wse, history topics',
  'wse-glob': '(d) nestjs-wse, glob subscription',
  ws: 'bare ws (no auth)',
  'b-jwt': 'b-jwt: ws + jsonwebtoken, same work',
  'socketio-jwt': 'Socket.IO 4, JWT in io.use',
  'wse-anon': 'nestjs-wse, anonymous',
  'wse-jwt': 'nestjs-wse, JWT (HS256)',
};

const CROSS_LABEL: Readonly<Record<string, string>> = {
  'ws-naive': '(a) ws + ioredis, naive',
  'ws-prebuilt': '(b) ws + ioredis, pre-built',
  socketio: '(c) Socket.IO + redis-adapter',
  wse: '(d) nestjs-wse',
};

const COLOR: Readonly<Record<string, string>> = {
  'ws-naive': '#a0a0a0',
  'ws-prebuilt': '#546e7a',
  socketio: '#e69a28',
  wse: '#2e7d32',
  'wse-glob': '#81c784',
  ws: '#546e7a',
  'b-jwt': '#263238',
  'socketio-jwt': '#b26a00',
  'wse-anon': '#81c784',
  'wse-jwt': '#2e7d32',
};

const BURST_SYSTEMS = ['ws-naive', 'ws-prebuilt', 'socketio', 'wse', 'wse-glob'];
const FOUR_SYSTEMS = ['ws-naive', 'ws-prebuilt', 'socketio', 'wse'];
const CONNECTION_SYSTEMS = ['ws', 'b-jwt', 'socketio', 'socketio-jwt', 'wse-anon', 'wse-jwt'];
const STORM_SYSTEMS = ['wse', 'socketio'];
const RESTART_KINDS = ['graceful', 'kill'];
const STORM_LABEL: Readonly<Record<string, string>> = {
  wse: 'nestjs-wse (WseClient on ws)',
  socketio: 'Socket.IO 4 (socket.io-client)',
};
const RESTART_LABEL: Readonly<Record<string, string>> = {
  graceful: 'graceful stop, then SIGKILL',
  kill: 'SIGKILL at once',
};

// ---- number formats ------------------------------------------------------------------------

type Format = (x: number) => string;

const perSec: Format = (x) => {
  if (!Number.isFinite(x)) return 'n/a';
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e4) return `${Math.round(x / 1e3)}k`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(x >= 100 ? 0 : 1);
};
const ms: Format = (x) => {
  if (!Number.isFinite(x)) return 'n/a';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
};
const pct: Format = (x) => (Number.isFinite(x) ? `${x.toFixed(0)}%` : 'n/a');
const fraction: Format = (x) => pct(x * 100);
const us: Format = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const kb: Format = (x) => (Number.isFinite(x) ? (x / 1024).toFixed(1) : 'n/a');
const sec: Format = (x) => (Number.isFinite(x) ? (x / 1000).toFixed(2) : 'n/a');
const mb: Format = (x) => (Number.isFinite(x) ? (x / 2 ** 20).toFixed(0) : 'n/a');
const ratio: Format = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a');
const thousands = (n: number): string => n.toLocaleString('en');

function cell(s: Summary | undefined, format: Format): string {
  if (s === undefined) return 'n/a';
  if (s.n === 1) return format(s.median);
  return `${format(s.median)} (${format(s.min)}–${format(s.max)})`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

/** " (2 of 3 runs)" when some repetitions skipped a case because a lower rate was not held. */
/** The p50, p99 and p99.9 cells of a latency table row. */
function latencyCells(r: Results, scenario: string, kase: string, system: string): string[] {
  return (['p50', 'p99', 'p999'] as const).map((q) => cell(r.summary(scenario, kase, system, q), ms));
}

function runsNote(r: Results, scenario: string, kase: string, system: string, reps: number): string {
  const ran = r.values(scenario, kase, system, 'deliveriesPerSec').length;
  return ran > 0 && ran < reps ? ` (${ran} of ${reps} runs; the others skipped it)` : '';
}

/** "not run" for a case every repetition skipped because a lower rate was not held. */
function skippedNote(r: Results, scenario: string, kase: string, system: string): string | undefined {
  const all = r.measurements.filter((m) => m.scenario === scenario && m.case === kase && m.system === system);
  if (all.length === 0 || !all.every((m) => 'skippedAbove' in m.values)) return undefined;
  const rates = [...new Set(all.map((m) => m.values.skippedAbove))].join(' / ');
  return `not run: ${rates} msg/s was not held`;
}

interface CpuParts {
  readonly server: number;
  readonly clients: number;
  /** Further benchmark processes: the other instance and redis-server in section 3. */
  readonly others?: number;
  /** Processes outside the benchmark. */
  readonly foreign: number;
  /** The window's offer was not held (deliveries missing or p99 over 100 ms). */
  readonly notHeld?: boolean;
}

/** Where the limit was, from the CPU each party used in the window (% of one core; 200 % = the machine). */
function bottleneck(c: CpuParts): string {
  const others = c.others ?? 0;
  const total = c.server + c.clients + others + c.foreign;
  if (!Number.isFinite(total)) return 'n/a';
  const parts =
    `server ${pct(c.server)}, clients ${pct(c.clients)}` +
    (others >= 5 ? `, A + redis ${pct(others)}` : '') +
    (c.foreign >= 5 ? `, **other processes ${pct(c.foreign)}**` : '');
  if (c.server >= 85) return `server (${parts})`;
  if (total >= 170) return `machine, ${pct(total)} of 200 % (${parts})`;
  if (c.notHeld === true) return `not held, though no process was busy all the time (${parts})`;
  return `neither (${parts}): the offered load`;
}

/** The CPU parts of a (scenario, case, system), medians. */
function cpuOf(r: Results, scenario: string, kase: string, system: string, withOthers = false): CpuParts {
  const med = (metric: string): number => r.med(scenario, kase, system, metric);
  const foreign = med('foreignCpuPct');
  return {
    server: med('serverCpuPct'),
    clients: med('clientCpuPct'),
    others: withOthers ? med('otherServerCpuPct') + med('redisCpuPct') : 0,
    foreign: Number.isFinite(foreign) ? foreign : 0,
    notHeld: med('held') < 0.99 || med('p99') >= 100,
  };
}

function verdict(met: boolean | undefined): string {
  return met === undefined ? '**not measured**' : met ? 'met' : '**not met**';
}

// ---- targets -------------------------------------------------------------------------------

export function evaluateTargets(r: Results, config: BenchConfig): Target[] {
  const targets: Target[] = [];
  const known = (x: number): boolean | undefined => (Number.isFinite(x) ? true : undefined);
  const check = (value: number, ok: boolean): boolean | undefined => known(value) && ok;
  for (const n of config.burst.sizes) {
    const d = r.med('burst', `N=${n}`, 'wse', 'deliveriesPerSec');
    const b = r.med('burst', `N=${n}`, 'ws-prebuilt', 'deliveriesPerSec');
    const c = r.med('burst', `N=${n}`, 'socketio', 'deliveriesPerSec');
    targets.push(
      {
        name: `Burst fan-out, N = ${thousands(n)}: at least 0.95x of (b)`,
        measured: `${ratio(d / b)} (${perSec(d)} vs ${perSec(b)} deliveries/s)`,
        met: check(d / b, d / b >= 0.95),
      },
      {
        name: `Burst fan-out, N = ${thousands(n)}: at least 1.4x of Socket.IO`,
        measured: `${ratio(d / c)} (${perSec(d)} vs ${perSec(c)} deliveries/s)`,
        met: check(d / c, d / c >= 1.4),
      },
    );
  }
  const sMax = r.med('sustained', 'max', 'wse', 'deliveriesPerSec');
  const sMaxIo = r.med('sustained', 'max', 'socketio', 'deliveriesPerSec');
  const s200p99 = r.med('sustained', 'rate=200', 'wse', 'p99');
  const s200held = r.med('sustained', 'rate=200', 'wse', 'held');
  targets.push(
    {
      name: `Sustained, ${thousands(config.sustained.subscribers)} subscribers: at least 1,000k deliveries/s held`,
      measured: `${perSec(sMax)} deliveries/s`,
      met: check(sMax, sMax >= 1_000_000),
    },
    {
      name: "Sustained: at least 8x Socket.IO's maximum",
      measured: `${ratio(sMax / sMaxIo)} (${perSec(sMax)} vs ${perSec(sMaxIo)} deliveries/s)`,
      met: check(sMax / sMaxIo, sMax / sMaxIo >= 8),
    },
    {
      name: 'Sustained: p99 under 30 ms at 200k deliveries/s offered',
      measured: `p99 ${ms(s200p99)} ms, ${fraction(s200held)} held`,
      met: check(s200p99, s200p99 < 30 && s200held >= 0.99),
    },
  );
  const histPub = r.med('cross', 'publish', 'wse-history', 'msgsPerSec');
  const plainPub = r.med('cross', 'publish', 'wse', 'msgsPerSec');
  const recover = r.med('cross', 'recover500', 'wse-history', 'ms');
  targets.push(
    {
      name: 'History topics: publish rate through Redis at least 0.7x of plain topics',
      measured: `${ratio(histPub / plainPub)} (${perSec(histPub)} vs ${perSec(plainPub)} msg/s)`,
      met: check(histPub / plainPub, histPub / plainPub >= 0.7),
    },
    {
      name: 'Recovery: 500 missed messages replayed in under 50 ms',
      measured: `${ms(recover)} ms`,
      met: check(recover, recover < 50),
    },
  );
  const x200p99 = r.med('cross', 'rate=200', 'wse', 'p99');
  const x200held = r.med('cross', 'rate=200', 'wse', 'held');
  const x200rate = r.med('cross', 'rate=200', 'wse', 'deliveriesPerSec');
  const pub = r.med('cross', 'publish', 'wse', 'msgsPerSec');
  targets.push(
    {
      name: 'Cross-instance: 200k deliveries/s held at p99 under 30 ms',
      measured: `${perSec(x200rate)} deliveries/s, ${fraction(x200held)} held, p99 ${ms(x200p99)} ms`,
      met: check(x200p99, x200p99 < 30 && x200held >= 0.99),
    },
    {
      name: 'Cross-instance: one instance publishes at least 100k msg/s into Redis',
      measured: `${perSec(pub)} msg/s`,
      met: check(pub, pub >= 100_000),
    },
  );
  const acceptJwt = r.med('connections', 'accept', 'wse-jwt', 'rate');
  const acceptB = r.med('connections', 'accept', 'b-jwt', 'rate');
  const acceptIoJwt = r.med('connections', 'accept', 'socketio-jwt', 'rate');
  targets.push(
    {
      name: 'Connections: accept rate with JWT at least 0.9x of b-jwt (ws doing the same work)',
      measured: `${ratio(acceptJwt / acceptB)} (${perSec(acceptJwt)}/s vs ${perSec(acceptB)}/s)`,
      met: check(acceptJwt / acceptB, acceptJwt / acceptB >= 0.9),
    },
    {
      name: 'Connections: accept rate with JWT at least 1.3x of Socket.IO with JWT',
      measured: `${ratio(acceptJwt / acceptIoJwt)} (${perSec(acceptJwt)}/s vs ${perSec(acceptIoJwt)}/s)`,
      met: check(acceptJwt / acceptIoJwt, acceptJwt / acceptIoJwt >= 1.3),
    },
  );
  for (const size of config.connections.sizes) {
    const jwt = r.med('connections', `rss@${size}`, 'wse-jwt', 'bytesPerConnection');
    const anon = r.med('connections', `rss@${size}`, 'wse-anon', 'bytesPerConnection');
    const worst = Number.isFinite(anon) ? Math.max(jwt, anon) : jwt;
    targets.push({
      name: `Connections: at most 12 KB RSS per idle connection at ${thousands(size)}`,
      measured: `${kb(jwt)} KB with JWT${Number.isFinite(anon) ? `, ${kb(anon)} KB anonymous` : ''}`,
      met: check(worst, worst <= 12 * 1024),
    });
  }
  for (const kind of RESTART_KINDS) {
    // A run that never got to 99 % within the wait is a NaN: it fails our target, and bounds
    // Socket.IO's time from below by the wait.
    const times = (system: string): number[] => r.values('storm', kind, system, 't99Receiving');
    const wseRuns = times('wse');
    const wseMissed = wseRuns.some((x) => !Number.isFinite(x));
    const wse = r.med('storm', kind, 'wse', 't99Receiving');
    const ioRuns = times('socketio');
    const ioMissed = ioRuns.length > 0 && ioRuns.every((x) => !Number.isFinite(x));
    const wait = r.med('storm', kind, 'socketio', 'waitMs');
    const io = ioMissed ? wait : r.med('storm', kind, 'socketio', 't99Receiving');
    const refused = r.med('storm', kind, 'wse', 'refused');
    const missedNote = wseMissed
      ? `; ${wseRuns.filter((x) => !Number.isFinite(x)).length} run(s) not at 99 % in time`
      : '';
    targets.push(
      {
        name: `Reconnect storm (${RESTART_LABEL[kind]}): 99 % connected, resubscribed and receiving in under 10 s`,
        measured: `${sec(wse)} s${missedNote}`,
        met: wseRuns.length === 0 ? undefined : !wseMissed && wse < 10_000,
      },
      {
        name: `Reconnect storm (${RESTART_LABEL[kind]}): at least 1.5x faster than Socket.IO`,
        measured: ioMissed
          ? `at least ${ratio(io / wse)} (${sec(wse)} s; Socket.IO not at 99 % within ${sec(wait)} s)`
          : `${ratio(io / wse)} (${sec(wse)} s vs ${sec(io)} s)`,
        met: check(io / wse, !wseMissed && io / wse >= 1.5),
      },
      {
        name: `Reconnect storm (${RESTART_LABEL[kind]}): no handshake refused (maxConnections is above the client count)`,
        measured: Number.isFinite(refused)
          ? `${Math.max(...r.values('storm', kind, 'wse', 'refused'))} refused (most in a run)`
          : 'n/a',
        met: check(refused, Math.max(...r.values('storm', kind, 'wse', 'refused')) === 0),
      },
    );
  }
  const g0 = r.med('patterns', 'globs=0', 'wse', 'publishesPerSec');
  const g1k = r.med('patterns', 'globs=1000', 'wse', 'publishesPerSec');
  targets.push({
    name: 'Patterns: 1,000 glob subscriptions cost at most 20 % of publish throughput',
    measured:
      g1k <= g0
        ? `${pct((1 - g1k / g0) * 100)} lower (${perSec(g1k)} vs ${perSec(g0)} publishes/s)`
        : `no cost measured: ${pct((g1k / g0 - 1) * 100)} higher (${perSec(g1k)} vs ${perSec(g0)} publishes/s)`,
    met: check(g1k / g0, g1k / g0 >= 0.8),
  });
  targets.push(...scaleTargets(r));
  return targets;
}

// ---- chart ---------------------------------------------------------------------------------

function chart(r: Results, run: RunInfo): string {
  const { config } = run;
  const bars = (
    scenario: string,
    kase: string,
    systems: readonly string[],
    metric: string,
    labels: Readonly<Record<string, string>> = LABEL,
  ) =>
    systems.map((system) => ({
      label: labels[system] ?? system,
      color: COLOR[system],
      summary: r.summary(scenario, kase, system, metric),
    }));
  const panels: ChartPanel[] = [
    ...config.burst.sizes.map((n) => ({
      title: `1. Burst fan-out, ${thousands(n)} subscribers, one message per event-loop turn`,
      unit: 'deliveries/s',
      bars: bars('burst', `N=${n}`, BURST_SYSTEMS, 'deliveriesPerSec'),
    })),
    {
      title: `2. Sustained fan-out to ${thousands(config.sustained.subscribers)} subscribers, maximum held (p99 < 100 ms)`,
      unit: 'deliveries/s',
      bars: bars('sustained', 'max', FOUR_SYSTEMS, 'deliveriesPerSec'),
    },
    {
      title: '3. Cross-instance fan-out (publish on A, subscribers on B), maximum held',
      unit: 'deliveries/s',
      bars: bars('cross', 'max', FOUR_SYSTEMS, 'deliveriesPerSec', CROSS_LABEL),
    },
    {
      title: '3. Publish throughput of one instance into Redis',
      unit: 'msg/s',
      bars: bars('cross', 'publish', FOUR_SYSTEMS, 'msgsPerSec', CROSS_LABEL),
    },
    {
      title: `4. Accept rate (${thousands(config.connections.sizes[0])} connections)`,
      unit: 'conn/s',
      bars: bars('connections', 'accept', CONNECTION_SYSTEMS, 'rate'),
    },
  ];
  const m = run.machine;
  return renderChart(
    'nestjs-wse benchmarks',
    `${run.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${m.nproc} cores (${m.cpuModel}), ` +
      `Node ${m.node}; bars: median of ${config.reps}, lines: min–max; each panel has its own scale`,
    panels,
  );
}

// ---- sections ------------------------------------------------------------------------------

function introSection(run: RunInfo, targets: readonly Target[]): string[] {
  const { config } = run;
  const met = targets.filter((t) => t.met === true).length;
  return [
    '# Benchmarks',
    '',
    `Generated by \`${run.command}\` on ${run.startedAt.toISOString().slice(0, 19).replace('T', ' ')} UTC in ` +
      `${(run.durationMs / 60_000).toFixed(1)} minutes. Every figure in this file comes from that run` +
      (config.quick ? ' (**quick mode: 1 repetition, smaller sizes; not the reference figures**).' : '.'),
    '',
    `Figures are medians of ${config.reps} repetition${config.reps > 1 ? 's' : ''}` +
      (config.reps > 1 ? ' with the min–max range in parentheses' : '') +
      '; ratios are ratios of medians. The systems: (a) plain `ws` with a naive send loop ' +
      '(`for (const c of clients) c.send(JSON.stringify(msg))`); (b) plain `ws` with the message serialized once and ' +
      'the same Buffer sent to each (`ws.send(buffer)`); (c) Socket.IO 4 (room emit; `@socket.io/redis-adapter` ' +
      'across instances); (d) nestjs-wse through its public API (a Nest app with `WseModule.forRoot` and `WseWsAdapter`, ' +
      'publishing with `WsePublisher`). Servers, load clients and redis-server are separate processes on 127.0.0.1.',
    '',
    '## Targets',
    '',
    `${met} of ${targets.length} met in this run.`,
    '',
    table(
      ['target (ratios within this run, on this 2-core machine)', 'measured (medians)', 'verdict'],
      targets.map((t) => [t.name, t.measured, verdict(t.met)]),
    ),
    '',
    `![deliveries per second per scenario and system](${run.chartFile})`,
    '',
  ];
}

function burstSection(r: Results, config: BenchConfig): string[] {
  const out = [
    '## 1. Burst fan-out',
    '',
    'The server publishes one 100-byte message per event-loop turn (a `setImmediate` loop) for ' +
      `${config.burst.durationMs} ms to N subscribers of one topic (for (d), also to N subscribers of the glob ` +
      '`bench:*`). Deliveries/s are counted by the load clients up to the last delivery; CPU per delivery is the ' +
      "server process's `process.cpuUsage()` over the window divided by the deliveries. Frames per read is what " +
      'the clients found in each socket read, about what one server write carried. (a), (b) and (c) write every ' +
      'message to every socket in the turn it is published, one write each. nestjs-wse writes its connections in ' +
      'rounds, 128 per turn (see `src/transport/outbound-writer.ts`): a message published while a round is under ' +
      'way joins the frames still waiting for the connections the round has not reached, so under this load its ' +
      'writes carry several messages each; that is its fan-out design, not a different load.',
    '',
  ];
  for (const n of config.burst.sizes) {
    const k = `N=${n}`;
    const b = r.med('burst', k, 'ws-prebuilt', 'deliveriesPerSec');
    out.push(
      `**N = ${thousands(n)}**`,
      '',
      table(
        ['system', 'deliveries/s', 'vs (b)', 'server CPU µs/delivery', 'frames per read', 'p50 / p99 ms', 'limited by'],
        BURST_SYSTEMS.map((system) => [
          LABEL[system],
          cell(r.summary('burst', k, system, 'deliveriesPerSec'), perSec),
          ratio(r.med('burst', k, system, 'deliveriesPerSec') / b),
          cell(r.summary('burst', k, system, 'cpuUsPerDelivery'), us),
          r.med('burst', k, system, 'framesPerRead').toFixed(1),
          `${ms(r.med('burst', k, system, 'p50'))} / ${ms(r.med('burst', k, system, 'p99'))}`,
          bottleneck(cpuOf(r, 'burst', k, system)),
        ]),
      ),
      '',
    );
  }
  return out;
}

function sustainedSection(r: Results, config: BenchConfig): string[] {
  const { sustained } = config;
  const rows: string[][] = [];
  for (const rate of sustained.rates) {
    const k = `rate=${rate}`;
    for (const system of FOUR_SYSTEMS) {
      const offered = `${rate} msg/s (${perSec(rate * sustained.subscribers)}/s)`;
      const skipped = skippedNote(r, 'sustained', k, system);
      if (skipped !== undefined) {
        rows.push([offered, LABEL[system], skipped, '', '', '', '', '']);
        continue;
      }
      rows.push([
        offered,
        LABEL[system],
        cell(r.summary('sustained', k, system, 'deliveriesPerSec'), perSec) +
          runsNote(r, 'sustained', k, system, config.reps),
        cell(r.summary('sustained', k, system, 'held'), fraction),
        ...latencyCells(r, 'sustained', k, system),
        bottleneck(cpuOf(r, 'sustained', k, system)),
      ]);
    }
  }
  const bMax = r.med('sustained', 'max', 'ws-prebuilt', 'deliveriesPerSec');
  return [
    '## 2. Sustained fan-out',
    '',
    `Fixed offered rates to ${thousands(sustained.subscribers)} subscribers of one topic, ${sustained.durationMs} ms ` +
      'each, published by an open-loop timer in the server: message n is stamped with its scheduled time, so a ' +
      'publisher held up by a busy event loop shows as latency (no coordinated omission), and whatever is due when ' +
      'the timer fires is published at once. Latency is publish-to-receipt, sampled in the clients (about 20k ' +
      'samples/s), on the shared system clock (`performance.timeOrigin + performance.now()`). A rate is *held* when ' +
      'at least 99 % of the offered deliveries arrive and p99 stays under 100 ms; a server more than 1 s behind its ' +
      'schedule stops publishing, and rates above one not held are not run. The maximum comes from a ramp ' +
      `(x${sustained.ramp.factor} per ${sustained.ramp.stepMs} ms step) from the highest held fixed rate.`,
    '',
    table(
      ['offered (deliveries/s)', 'system', 'deliveries/s', 'held', 'p50 ms', 'p99 ms', 'p99.9 ms', 'limited by'],
      rows,
    ),
    '',
    '**Maximum held**',
    '',
    table(
      [
        'system',
        'msg/s',
        'deliveries/s',
        'vs (b)',
        'p50 ms',
        'p99 ms',
        'p99.9 ms',
        'next step, not held',
        'limited by',
      ],
      FOUR_SYSTEMS.map((system) => [
        LABEL[system],
        cell(r.summary('sustained', 'max', system, 'rate'), perSec),
        cell(r.summary('sustained', 'max', system, 'deliveriesPerSec'), perSec),
        ratio(r.med('sustained', 'max', system, 'deliveriesPerSec') / bMax),
        ...latencyCells(r, 'sustained', 'max', system),
        cell(r.summary('sustained', 'max', system, 'firstFailedRate'), (x) => `${perSec(x)} msg/s`),
        bottleneck(cpuOf(r, 'sustained', 'max', system)),
      ]),
    ),
    '',
  ];
}

function crossSection(r: Results, config: BenchConfig): string[] {
  const { cross } = config;
  const bPub = r.med('cross', 'publish', 'ws-prebuilt', 'msgsPerSec');
  const publishRows = FOUR_SYSTEMS.map((system) => {
    const last = r.measurements
      .filter((m) => m.scenario === 'cross' && m.case === 'publish' && m.system === system)
      .at(-1)?.values;
    return [
      CROSS_LABEL[system],
      cell(r.summary('cross', 'publish', system, 'msgsPerSec'), perSec),
      ratio(r.med('cross', 'publish', system, 'msgsPerSec') / bPub),
      last === undefined
        ? 'n/a'
        : `${last.counted} / ${last.redisPublishCalls} / ${Number.isFinite(last.acknowledged) ? last.acknowledged : 'n/a'}`,
      cell(r.summary('cross', 'publish', system, 'serverCpuPct'), pct),
      cell(r.summary('cross', 'publish', system, 'redisCpuPct'), pct),
    ];
  });
  const cases = [...cross.rates.map((rate) => `rate=${rate}`), `external=${cross.externalRate}`, 'max'];
  const rows: string[][] = [];
  for (const kase of cases) {
    const label =
      kase === 'max'
        ? 'maximum held'
        : kase.startsWith('external')
          ? `external PUBLISH, ${cross.externalRate} msg/s`
          : `${kase.slice('rate='.length)} msg/s`;
    for (const system of FOUR_SYSTEMS) {
      if (kase.startsWith('external') && system === 'socketio') continue;
      const skipped = skippedNote(r, 'cross', kase, system);
      if (skipped !== undefined) {
        rows.push([label, CROSS_LABEL[system], '', skipped, '', '', '', '', '', '']);
        continue;
      }
      rows.push([
        label,
        CROSS_LABEL[system],
        cell(r.summary('cross', kase, system, 'rate'), perSec),
        cell(r.summary('cross', kase, system, 'deliveriesPerSec'), perSec) +
          runsNote(r, 'cross', kase, system, config.reps),
        cell(r.summary('cross', kase, system, 'held'), fraction),
        ...latencyCells(r, 'cross', kase, system),
        `${pct(r.med('cross', kase, system, 'serverCpuPct'))} / ${pct(r.med('cross', kase, system, 'otherServerCpuPct'))} / ` +
          `${pct(r.med('cross', kase, system, 'redisCpuPct'))} / ${pct(r.med('cross', kase, system, 'clientCpuPct'))}`,
        bottleneck(cpuOf(r, 'cross', kase, system, true)),
      ]);
    }
  }
  return [
    '## 3. Cross-instance',
    '',
    'One redis-server (persistence off) and two instances of the same system. (a) and (b) are the hand-rolled ' +
      'multi-instance versions: ioredis `PUBLISH`, and `PSUBSCRIBE wse:*` fanned out with the naive / pre-built loop ' +
      '((b) publishes with auto-pipelining; nestjs-wse sends the publishes of one tick as one command).',
    '',
    `**Publish throughput of one instance.** Instance A alone publishes in a loop for ${cross.floodMs} ms (up to 512 ` +
      'per turn while fewer than 20,000 wait for their acknowledgement) to a topic nobody subscribes. Messages/s are ' +
      'counted by a separate PSUBSCRIBE connection (a raw socket counting `pmessage` replies) up to the last one, and ' +
      "cross-checked with Redis's own `cmdstat_publish` and, for (d), `redis_messages_published`. Every instance also " +
      'receives its own messages back through its PSUBSCRIBE, as the design requires, and pays for that too.',
    '',
    table(
      [
        'system',
        'msg/s into Redis',
        'vs (b)',
        'counted / PUBLISH calls / acknowledged (last repetition)',
        'publisher CPU',
        'redis-server CPU',
      ],
      publishRows,
    ),
    '',
    `**Fan-out through Redis.** A publishes at fixed rates (open loop, as in section 2) to ${thousands(cross.subscribers)} ` +
      'subscribers connected to instance B; latency runs from the scheduled publish time on A to receipt. The ' +
      'external case is a plain ioredis client (not nestjs-wse) running `PUBLISH wse:<topic> <payload>`; it is not ' +
      "run for Socket.IO, whose adapter's messages are msgpack envelopes. CPU columns: instance B / instance A / " +
      'redis-server / load clients.',
    '',
    table(
      [
        'case',
        'system',
        'msg/s',
        'deliveries/s',
        'held',
        'p50 ms',
        'p99 ms',
        'p99.9 ms',
        'CPU B / A / redis / clients',
        'limited by',
      ],
      rows,
    ),
    '',
  ];
}

function connectionsSection(r: Results, run: RunInfo): string[] {
  const { config } = run;
  const [small, large] = config.connections.sizes;
  const acceptWs = r.med('connections', 'accept', 'ws', 'rate');
  const acceptB = r.med('connections', 'accept', 'b-jwt', 'rate');
  const largeCell = (system: string, metric: string): string =>
    run.largeSizeSystems.has(system) ? cell(r.summary('connections', `rss@${large}`, system, metric), kb) : 'not run';
  return [
    '## 4. Connections',
    '',
    `**Accept rate**: ${thousands(small)} connections opened by 2 client processes with ` +
      `${config.connections.concurrency} handshakes in flight each. A connection counts once it is usable: bare ws ` +
      'at the 101 response; Socket.IO at the namespace `40` answer; nestjs-wse at its `server_ready` frame, which ' +
      'with a secret comes after the HS256 token in the `Authorization` header was verified. Each client signs its ' +
      'own tokens (`sub` = user-<n>) before the clock starts. The same-work baselines: **b-jwt** is plain `ws` whose ' +
      'upgrade reads the token where nestjs-wse reads it (the `access_token` cookie, `Authorization: Bearer`, ' +
      '`?token=`), verifies it with `jsonwebtoken` (HS256, `exp` required, the key a `KeyObject` made once, as ' +
      'nestjs-wse does) and sends a first frame of the same fields and size as `server_ready` (434 bytes); it counts ' +
      'at that frame, as nestjs-wse does. **Socket.IO with JWT** verifies the same token with `jsonwebtoken` in its ' +
      'middleware (`io.use`) before the namespace is joined. "Server CPU µs/handshake" is the server process\'s ' +
      'CPU over the accept window divided by the connections accepted: its own work per handshake, whatever bounded ' +
      'the rate (on this machine the server shares the 2 cores with the load clients). **RSS per idle connection**: server RSS after a forced ' +
      'GC, minus the RSS before any connection, over the connection count (connected, nothing subscribed). User-space ' +
      `memory only: kernel socket buffers are not in RSS. The large size is ${thousands(large)}, not 20,000: the ` +
      `open-files limit here is ${run.machine.openFiles} per process, and a process cannot raise its hard limit; it ` +
      `is measured for ${[...run.largeSizeSystems].map((s) => LABEL[s]).join(' and ')} only, to keep the run within ` +
      'its time budget.',
    '',
    table(
      [
        'system',
        'accepted/s',
        'vs bare ws',
        'vs b-jwt',
        'server CPU µs/handshake',
        `KB RSS/conn at ${thousands(small)}`,
        `KB heap/conn at ${thousands(small)}`,
        `KB RSS/conn at ${thousands(large)}`,
        `KB heap/conn at ${thousands(large)}`,
        'accept limited by',
      ],
      CONNECTION_SYSTEMS.map((system) => [
        LABEL[system],
        cell(r.summary('connections', 'accept', system, 'rate'), perSec),
        ratio(r.med('connections', 'accept', system, 'rate') / acceptWs),
        ratio(r.med('connections', 'accept', system, 'rate') / acceptB),
        cell(r.summary('connections', 'accept', system, 'serverCpuUsPerConnection'), (x) => x.toFixed(0)),
        cell(r.summary('connections', `rss@${small}`, system, 'bytesPerConnection'), kb),
        cell(r.summary('connections', `rss@${small}`, system, 'heapPerConnection'), kb),
        largeCell(system, 'bytesPerConnection'),
        largeCell(system, 'heapPerConnection'),
        bottleneck(cpuOf(r, 'connections', 'accept', system)),
      ]),
    ),
    '',
    ...acceptProfileNote(r, run),
  ];
}

/**
 * What bounds nestjs-wse's accept rate against b-jwt, from this run: the server CPU per handshake
 * of both, and the accept profile's split of a handshake's server time by owner.
 */
function acceptProfileNote(r: Results, run: RunInfo): string[] {
  const wse = r.med('connections', 'accept', 'wse-jwt', 'serverCpuUsPerConnection');
  const b = r.med('connections', 'accept', 'b-jwt', 'serverCpuUsPerConnection');
  const profile = run.profiles.find((p) => p.owners !== undefined && p.summary !== undefined);
  if (!Number.isFinite(wse) && profile === undefined) return [];
  const parts = [
    `**What bounds nestjs-wse with JWT against b-jwt.** Server CPU per handshake: ${wse.toFixed(0)} µs against ` +
      `${b.toFixed(0)} µs (${ratio(wse / b)}).`,
  ];
  if (profile?.owners !== undefined && profile.summary !== undefined) {
    const busy = profile.summary.busyMs / Math.max(1, profile.summary.totalMs);
    parts.push(
      `In the accept profile (below) the server was busy ${pct(busy * 100)} of the window; its time, inclusive: ` +
        profile.owners.map((o) => `${o.owner} ${pct(o.share * 100)}`).join(', ') +
        ". The token check is the same library work as b-jwt's (jsonwebtoken with a `KeyObject`, through " +
        "`@nestjs/jwt`). Most of nestjs-wse's own share is the one write of the 101 response with `server_ready` " +
        "(`uncork`), mostly the kernel's loopback work for a new connection's first bytes, which b-jwt pays " +
        "too, inside ws, in two writes. The rest of nestjs-wse's share is " +
        'the connection object and its registration, `server_ready` (its per-connection fields filled into a ' +
        'template serialized once), the token expiry (a bucket of one shared 1 s timer wheel, no timer per ' +
        "connection) and the socket listeners (made once, shared by every socket). Nest's upgrade path is what " +
        "is left of `@nestjs/platform-ws`'s upgrade listener (`WseWsAdapter` reads a plain request path itself " +
        "instead of a `new URL` parse per handshake) and `@nestjs/websockets`' rxjs connection stream. Beyond " +
        "b-jwt's work, a handshake here still pays for Nest (its connection stream, a `close` listener per socket " +
        'for gateways without `handleDisconnect`), the registry and the outbound writer, and `@nestjs/jwt` ' +
        'around jsonwebtoken.',
    );
  }
  return [parts.join(' '), ''];
}

function patternsSection(r: Results, config: BenchConfig): string[] {
  const { patterns } = config;
  const g0 = r.med('patterns', 'globs=0', 'wse', 'publishesPerSec');
  const row = (label: string, kase: string, versus: string): string[] => [
    label,
    cell(r.summary('patterns', kase, 'wse', 'publishesPerSec'), perSec),
    versus,
    cell(r.summary('patterns', kase, 'wse', 'cpuUsPerPublish'), us),
    cell(r.summary('patterns', kase, 'wse', 'held'), fraction),
    cell(r.summary('patterns', kase, 'wse', 'serverCpuPct'), pct),
  ];
  const rows = patterns.globs.map((globs) =>
    row(
      `${thousands(globs)} prefix-anchored globs (\`user:<id>:*\`)`,
      `globs=${globs}`,
      ratio(r.med('patterns', `globs=${globs}`, 'wse', 'publishesPerSec') / g0),
    ),
  );
  const leadBase = r.med('patterns', 'globs=0 leading-baseline', 'wse', 'publishesPerSec');
  const lead = r.med('patterns', 'globs=1000 leading', 'wse', 'publishesPerSec');
  rows.push(
    row(
      '1,000 leading-wildcard globs (`*:<id>:audit`), worst case',
      'globs=1000 leading',
      `${ratio(lead / leadBase)} (of ${perSec(leadBase)} with 0 on the same server)`,
    ),
  );
  return [
    '## 5. Patterns',
    '',
    'nestjs-wse only (plain ws and Socket.IO have no glob subscriptions). `publishLocal` in a loop, 32 per ' +
      `event-loop turn, over ${thousands(patterns.subscribers * patterns.topicsPerSubscriber)} distinct topics ` +
      `\`user:<i>:events\` with one subscriber each (${patterns.subscribers} connections holding ` +
      `${patterns.topicsPerSubscriber} topics each): more topics than the registry's topic-to-patterns cache ` +
      'holds (10,000), so most publishes miss it and walk the pattern index. The globs are held by further ' +
      'connections (1,000 each) and match nothing published: deliveries stay the same, only matching costs change. ' +
      'Prefix-anchored globs are the common shape; leading-wildcard globs all sit at the root of the prefix index, ' +
      'so every cache miss tests each of them. Each glob count is measured in ' +
      `${config.patterns.windows} window(s) per repetition (one window's rate varies by about a quarter from the next ` +
      `on this machine): medians and ranges here are over the ${config.patterns.windows * config.reps} windows.`,
    '',
    table(['globs present', 'publishes/s', 'vs 0 globs', 'server CPU µs/publish', 'delivered', 'server CPU'], rows),
    '',
  ];
}

/** History topics (CONTRACT section 11) beside plain ones, through Redis, and a recovery's wait. */
function historySection(r: Results): string[] {
  const rows: string[][] = [];
  const row = (what: string, kase: string, metric: string, format: Format): void => {
    const plain = r.summary('cross', kase, 'wse', metric);
    const history = r.summary('cross', kase, 'wse-history', metric);
    if (plain === undefined && history === undefined) return;
    rows.push([
      what,
      cell(plain, format),
      cell(history, format),
      ratio((history?.median ?? NaN) / (plain?.median ?? NaN)),
    ]);
  };
  row('one instance publishing into Redis, msg/s', 'publish', 'msgsPerSec', perSec);
  row('publisher CPU while flooding, %', 'publish', 'serverCpuPct', pct);
  row('redis-server CPU while flooding, %', 'publish', 'redisCpuPct', pct);
  // CPU per message from the medians: % of a core over msg/s.
  const perMessage = (system: string, metric: string): number =>
    (r.med('cross', 'publish', system, metric) * 10_000) / r.med('cross', 'publish', system, 'msgsPerSec');
  const perMessageRow = (what: string, metric: string): void => {
    const plain = perMessage('wse', metric);
    const history = perMessage('wse-history', metric);
    if (Number.isFinite(plain) || Number.isFinite(history))
      rows.push([what, us(plain), us(history), ratio(history / plain)]);
  };
  perMessageRow('publisher CPU µs per message (from the medians)', 'serverCpuPct');
  perMessageRow('redis-server CPU µs per message (from the medians)', 'redisCpuPct');
  row('fan-out on the other instance: max deliveries/s held', 'max', 'deliveriesPerSec', perSec);
  row('p99 at that maximum', 'max', 'p99', ms);
  const recovery = r.summary('cross', 'recover500', 'wse-history', 'ms');
  const rate = r.med('cross', 'publish', 'wse-history', 'msgsPerSec') / r.med('cross', 'publish', 'wse', 'msgsPerSec');
  const bounds =
    Number.isFinite(rate) && rate < 0.7
      ? [
          `**What bounds history topics here.** A history message costs the publisher ` +
            `${us(perMessage('wse-history', 'serverCpuPct'))} µs against ${us(perMessage('wse', 'serverCpuPct'))} µs ` +
            `and redis-server ${us(perMessage('wse-history', 'redisCpuPct'))} µs against ` +
            `${us(perMessage('wse', 'redisCpuPct'))} µs: Redis does an XADD and builds the stamped copy for every ` +
            'message besides the PUBLISH, and the publisher sends a third argument per message and reads the ' +
            'longer replies. The two share the 2 cores with the receiving instance, so the rate is bound by their ' +
            'sum (the profile of the history flood is in "Where the server spends its time"). Tried and kept: ' +
            "each topic's offset, expiry and trim once per batch instead of per message, each topic's keys and name " +
            'once per command, the append time in the entry id instead of a field, and the payload sent as a view ' +
            'of its bytes instead of a copy.',
          '',
        ]
      : [];
  if (rows.length === 0 && recovery === undefined) return [];
  return [
    '## 6. History topics and recovery',
    '',
    "The cross-instance scenario again with every bench topic a history topic (`recovery.topics: ['bench:*']`): " +
      "each publish assigns the next offset, appends to the topic's stream and publishes the stamped payload in one " +
      'script call, batched per tick. Then a client that left recovers 500 messages published meanwhile, on the ' +
      'instance that published them: from its `recover: true` subscribe to the last replayed message.',
    '',
    table(['figure', 'plain topics', 'history topics', 'history / plain'], rows),
    '',
    ...bounds,
    `Recovering 500 missed messages: ${cell(recovery, ms)} ms (replayed ${r.med('cross', 'recover500', 'wse-history', 'replayed')}, recovered: ${r.med('cross', 'recover500', 'wse-history', 'recovered') === 1}).`,
    '',
  ];
}

/** The reconnect storm: per restart kind and system, the times to 99 %, the new server's peaks, refusals. */
function stormSection(r: Results, run: RunInfo): string[] {
  const { storm } = run.config;
  const rows: string[][] = [];
  for (const kind of RESTART_KINDS) {
    const ioTime = r.med('storm', kind, 'socketio', 't99Receiving');
    for (const system of STORM_SYSTEMS) {
      const c = (metric: string, format: Format): string => cell(r.summary('storm', kind, system, metric), format);
      const clients = r.med('storm', kind, system, 'clients');
      if (!Number.isFinite(clients)) {
        rows.push([RESTART_LABEL[kind], STORM_LABEL[system], 'not measured', '', '', '', '', '', '', '', '', '', '']);
        continue;
      }
      rows.push([
        RESTART_LABEL[kind],
        STORM_LABEL[system],
        `${thousands(clients)} (${thousands(r.med('storm', kind, system, 'lost'))} lost, median)`,
        c('listeningMs', sec),
        c('t99Connected', sec),
        c('t99Resubscribed', sec),
        c('t99Receiving', sec) + notReached(r, kind, system),
        c('t99ReceivingAfterUp', sec),
        `${c('t50Receiving', sec)} / ${c('t90Receiving', sec)}`,
        system === 'socketio'
          ? '1.00x'
          : Number.isFinite(ioTime)
            ? ratio(ioTime / r.med('storm', kind, system, 't99Receiving'))
            : // Socket.IO never got to 99 % within the wait: the wait bounds its time from below.
              `at least ${ratio(r.med('storm', kind, 'socketio', 'waitMs') / r.med('storm', kind, system, 't99Receiving'))}`,
        `${c('peakServerCpuPct', pct)} / ${c('peakServerRss', mb)} MB`,
        c('refused', (x) => thousands(x)),
        stormLimit(r, kind, system),
      ]);
    }
  }
  return [
    '## 8. Reconnect storm',
    '',
    `${thousands(storm.clients)} real clients in the 2 load processes: nestjs-wse's own \`WseClient\` ` +
      '(`nestjs-wse/client`) on the `ws` package, and `socket.io-client` (one Manager per client, `forceNew`), each ' +
      `with its own token (HS256, sent as \`?token=\` by WseClient and as \`auth.token\` by socket.io-client) and ` +
      `subscribed to ${storm.topicsPerClient} of ${storm.topics} topics. The server is restarted ` +
      `${storm.restarts.length === 1 ? 'once' : `${storm.restarts.length} times`} per repetition ` +
      `(${storm.restarts.map((k) => RESTART_LABEL[k]).join('; then ')}). A graceful restart is the system's own ` +
      "stop (nestjs-wse: Nest's `app.close()`, which closes every connection with 1012; Socket.IO: " +
      '`io.close()`), then the process is killed. A new server process listens on ' +
      'the same port. The clients reconnect with their **default** backoff, untuned: WseClient full jitter, a ' +
      `uniform wait in [0, min(${WSE_BACKOFF_DEFAULTS.maxDelayMs / 1000} s, ${WSE_BACKOFF_DEFAULTS.initialDelayMs / 1000} s x ` +
      `${WSE_BACKOFF_DEFAULTS.factor}^failures)); socket.io-client 1 s doubling to 5 s at most, ±50 % ` +
      'jitter. WseClient resubscribes by itself; for Socket.IO the application does it in its `connect` handler. The ' +
      `new server publishes one message to each topic every ${storm.tickMs} ms. Times run from the start of the ` +
      'restart (so they include the stop and the new process starting up, as a real restart does) until 99 % of the ' +
      'clients are connected again, have every topic subscribed again (WseClient: a `resync` event per topic; ' +
      'Socket.IO: the acknowledged `subscribe`) and have received a message on each of their topics; "after up" ' +
      'counts from the moment the new server listened. Peak CPU and RSS of the new server process, from /proc every ' +
      '200 ms. Refused: handshakes the server answered with a refusal (a close code such as 1013 or 4401, a ' +
      'middleware error), counted by the clients; an attempt while nothing listens is not a refusal.',
    '',
    table(
      [
        'restart',
        'system',
        'clients',
        'new server listening, s',
        '99 % connected, s',
        '99 % resubscribed, s',
        '99 % receiving, s',
        '99 % receiving after up, s',
        '50 % / 90 % receiving, s',
        'vs Socket.IO (time ratio)',
        'peak CPU / RSS of the new server',
        'refused',
        'limited by',
      ],
      rows,
    ),
    '',
    `![clients connected again over time, per system and restart](${run.stormChartFile})`,
    '',
  ];
}

/** For a storm whose 99 % never came within the wait: how far it got. */
function notReached(r: Results, kind: string, system: string): string {
  const n = r.values('storm', kind, system, 't99Receiving').filter((x) => !Number.isFinite(x)).length;
  if (n === 0) return '';
  const share = r.med('storm', kind, system, 'receivingShare');
  return ` (not reached within ${sec(r.med('storm', kind, system, 'waitMs'))} s in ${n} run${n === 1 ? '' : 's'}; ${fraction(share)} at the end)`;
}

/** What bounded a storm: the server's CPU when it was busy, otherwise the clients' own waits. */
function stormLimit(r: Results, kind: string, system: string): string {
  const cpu = r.med('storm', kind, system, 'peakServerCpuPct');
  const afterUp = r.med('storm', kind, system, 't99ConnectedAfterUp');
  if (!Number.isFinite(cpu)) return 'n/a';
  const backoff =
    system === 'wse'
      ? `WseClient's default backoff: full jitter, a wait drawn from [0, b) with b = ${wseBackoffBounds(4)} s… after ` +
        'each failed attempt, spreads the returns over several seconds on purpose (a client that tried while the ' +
        'server was still down waits up to the next bound more)'
      : "socket.io-client's default backoff: 1 s ±50 %, doubling to 5 s at most";
  const server = cpu >= 85 ? `the server's CPU (peak ${pct(cpu)} over a 200 ms sample), and ` : '';
  return `${server}${backoff}; the server peaked at ${pct(cpu)} of a core; 99 % were back ${sec(afterUp)} s after it listened`;
}

function stormChart(r: Results, run: RunInfo): string {
  const lines: ChartLine[] = [];
  const colors: Record<string, string> = { wse: COLOR.wse, socketio: COLOR.socketio };
  for (const system of STORM_SYSTEMS) {
    for (const kind of RESTART_KINDS) {
      // The repetition with the median time, so the line drawn is a typical one.
      const series = r.series.filter((x) => x.scenario === 'storm' && x.system === system && x.case === kind);
      if (series.length === 0) continue;
      const time = (rep: number): number =>
        r.measurements.find((m) => m.scenario === 'storm' && m.case === kind && m.system === system && m.rep === rep)
          ?.values.t99Receiving ?? Number.POSITIVE_INFINITY;
      const sorted = [...series].sort((a, b) => time(a.rep) - time(b.rep));
      const pick = sorted[Math.floor((sorted.length - 1) / 2)];
      lines.push({
        label: `${STORM_LABEL[system]}, ${kind === 'kill' ? 'SIGKILL' : 'graceful'}`,
        color: colors[system],
        dash: kind === 'kill' ? '6 3' : undefined,
        points: [[0, 0], ...pick.points.map((p) => [p[0] / 1000, p[1]] as [number, number])],
      });
    }
  }
  const m = run.machine;
  return renderLineChart(
    'Reconnect storm: clients connected again after a server restart',
    `${thousands(run.config.storm.clients)} clients; ${run.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, ` +
      `${m.nproc} cores, Node ${m.node}; the repetition with the median time to 99 % receiving; red: the 10 s target`,
    lines,
    { x: 'seconds since the restart began', y: 'clients connected', yMax: run.config.storm.clients, marks: [10] },
  );
}

/** RSS per connection when every connection holds exact topics and a glob. */
function subscribedSection(r: Results, run: RunInfo): string[] {
  const { subscribed } = run.config;
  const kase = `rss@${subscribed.connections}`;
  const idle = r.summary('connections', kase, 'wse-jwt', 'bytesPerConnection');
  if (r.summary('subscribed', kase, 'wse-jwt', 'bytesPerConnection') === undefined && idle === undefined) return [];
  return [
    '## 9. Memory of subscribed connections',
    '',
    `nestjs-wse with JWT, ${thousands(subscribed.connections)} connections, each subscribed in one message to ` +
      `${subscribed.exact} exact topics shared with others (\`room:<n>\` from a pool of 10,000: about ` +
      `${Math.round((subscribed.connections * subscribed.exact) / 10_000)} subscribers per topic) and one glob of ` +
      'its own (`user:<n>:*`). Measured as in section 4 (server RSS after a forced GC, minus before any connection, ' +
      "over the connection count); the idle figure is section 4's at the same size, when it ran.",
    '',
    table(
      ['connections', 'KB RSS/conn', 'KB heap/conn', 'idle KB RSS/conn (section 4)', 'accepted and subscribed/s'],
      [
        [
          thousands(subscribed.connections),
          cell(r.summary('subscribed', kase, 'wse-jwt', 'bytesPerConnection'), kb),
          cell(r.summary('subscribed', kase, 'wse-jwt', 'heapPerConnection'), kb),
          cell(idle, kb),
          cell(r.summary('subscribed', kase, 'wse-jwt', 'rate'), perSec),
        ],
      ],
    ),
    '',
  ];
}

/** Each new capability beside its plain path, from this one run. */
function capabilitiesSection(r: Results): string[] {
  const histPub = r.med('cross', 'publish', 'wse-history', 'msgsPerSec');
  const plainPub = r.med('cross', 'publish', 'wse', 'msgsPerSec');
  const histMax = r.med('cross', 'max', 'wse-history', 'deliveriesPerSec');
  const plainMax = r.med('cross', 'max', 'wse', 'deliveriesPerSec');
  const direct = r.med('events', 'direct', 'wse', 'eventsPerSec');
  const bare = r.med('events', 'pipeline', 'wse', 'eventsPerSec');
  const ev = (kase: string): Summary | undefined => r.summary('events', kase, 'wse', 'eventsPerSec');
  const evUs = (kase: string): Summary | undefined => r.summary('events', kase, 'wse', 'usPerEvent');
  const plainClient = r.med('client', 'plain', 'wse', 'messagesPerSec');
  const rows: string[][] = [
    [
      'history topics: one instance publishing into Redis',
      `${cell(r.summary('cross', 'publish', 'wse-history', 'msgsPerSec'), perSec)} msg/s`,
      `${perSec(plainPub)} msg/s (plain topics)`,
      ratio(histPub / plainPub),
      'at least 0.7x',
    ],
    [
      'history topics: fan-out through Redis, max deliveries/s held',
      cell(r.summary('cross', 'max', 'wse-history', 'deliveriesPerSec'), perSec),
      `${perSec(plainMax)} (plain topics)`,
      ratio(histMax / plainMax),
      '',
    ],
    [
      'recovery of 500 missed messages',
      `${cell(r.summary('cross', 'recover500', 'wse-history', 'ms'), ms)} ms`,
      '',
      '',
      'under 50 ms',
    ],
    [
      'interest routing versus pattern routing',
      'section 7 (the scale scenario, `bench/scenarios/scale.ts`)',
      '',
      '',
      '',
    ],
    [
      '`@OnWseEvent`, bare (through the pipeline, no enhancer)',
      `${cell(ev('pipeline'), perSec)} events/s (${cell(evUs('pipeline'), us)} µs)`,
      `${perSec(direct)} events/s (method called directly)`,
      ratio(bare / direct),
      '',
    ],
    [
      '`@OnWseEvent` with a guard',
      `${cell(ev('guard'), perSec)} events/s (${cell(evUs('guard'), us)} µs)`,
      `${perSec(bare)} events/s (bare handler)`,
      ratio(r.med('events', 'guard', 'wse', 'eventsPerSec') / bare),
      '',
    ],
    [
      '`@OnWseEvent` with a guard and a ValidationPipe (two-field DTO)',
      `${cell(ev('guard+pipe'), perSec)} events/s (${cell(evUs('guard+pipe'), us)} µs)`,
      `${perSec(bare)} events/s (bare handler)`,
      ratio(r.med('events', 'guard+pipe', 'wse', 'eventsPerSec') / bare),
      '',
    ],
    [
      'client parse-and-dispatch (WseClient in Node), plain messages',
      `${cell(r.summary('client', 'plain', 'wse', 'messagesPerSec'), perSec)} msg/s`,
      '',
      '',
      '',
    ],
    [
      'client parse-and-dispatch, stamped messages of a history topic',
      `${cell(r.summary('client', 'stamped', 'wse', 'messagesPerSec'), perSec)} msg/s`,
      `${perSec(plainClient)} msg/s (plain messages)`,
      ratio(r.med('client', 'stamped', 'wse', 'messagesPerSec') / plainClient),
      '',
    ],
  ];
  return [
    '## 10. The cost of each capability beside the plain path',
    '',
    'History topics and recovery come from the cross-instance scenario (section 6). The event pipeline and the ' +
      'client run in a process of their own (`bench/procs/capabilities.ts`, one core): `@OnWseEvent` handlers of ' +
      'the same work called as the dispatcher calls them, one event at a time, which is the rate one ' +
      "connection's events can be handled at (a connection's events are handled in order; no socket and no JSON, " +
      'only the pipeline); `WseClient` fed ~100-byte message frames as `ws` hands them over (strings), counting its ' +
      '`message` events. Medians of 5 runs inside each repetition.',
    '',
    table(['capability', 'measured', 'plain path', 'ratio', 'target'], rows),
    '',
  ];
}

/**
 * `--baseline=`: today's nestjs-wse beside a baseline build, same load, same run, interleaved
 * (each repetition runs both), so a change near the hot path is judged by one comparison.
 */
function baselineSection(r: Results, run: RunInfo): string[] {
  if (run.baseline === undefined) return [];
  const rows: string[][] = [];
  const row = (what: string, scenario: string, kase: string, metric: string, format: Format): void => {
    const before = r.summary(scenario, kase, 'wse-base', metric);
    const after = r.summary(scenario, kase, 'wse', metric);
    if (before === undefined && after === undefined) return;
    rows.push([
      what,
      cell(before, format),
      cell(after, format),
      ratio((after?.median ?? NaN) / (before?.median ?? NaN)),
    ]);
  };
  for (const n of run.config.burst.sizes) {
    row(`burst N=${thousands(n)}: deliveries/s`, 'burst', `N=${n}`, 'deliveriesPerSec', perSec);
    row(`burst N=${thousands(n)}: server CPU µs/delivery`, 'burst', `N=${n}`, 'cpuUsPerDelivery', us);
  }
  row('sustained: max deliveries/s held', 'sustained', 'max', 'deliveriesPerSec', perSec);
  row('sustained: p99 at the max', 'sustained', 'max', 'p99', ms);
  row('cross-instance: max deliveries/s held', 'cross', 'max', 'deliveriesPerSec', perSec);
  row('cross-instance: one instance publishing into Redis, msg/s', 'cross', 'publish', 'msgsPerSec', perSec);
  return [
    '## Before and after (baseline build)',
    '',
    `The same scenarios against a baseline build of nestjs-wse (\`${run.baseline}\`) in the same run, ` +
      'each repetition measuring both: "after / before" above 1 is faster (for CPU and latency, below 1 is better).',
    '',
    table(['figure', 'before (baseline)', 'after (this build)', 'after / before'], rows),
    '',
  ];
}

function profilesSection(run: RunInfo): string[] {
  const out = [
    '## Where the server spends its time (CPU profiles)',
    '',
    '`node --cpu-prof --cpu-prof-interval=250` on a nestjs-wse server process; only the samples of the ' +
      'measurement window count (start-up and connection setup are cut off by the sample timestamps). Self time ' +
      'per function as a share of the busy (non-idle) samples. Locations in `src/` are the compiled ' +
      '`dist-bench/src/` files (the TypeScript compiled as is: same functions, nearby lines).',
    '',
  ];
  if (run.profiles.length === 0) out.push('No profile was taken in this run.', '');
  for (const profile of run.profiles) {
    out.push(`**${profile.title}**`, '');
    const p = profile.summary;
    if (p === undefined) {
      out.push(`The profile could not be taken: ${profile.error ?? 'unknown error'}.`, '');
      continue;
    }
    const owners =
      profile.owners === undefined
        ? []
        : [
            "Where the handshakes' server time goes, inclusive (each sample counted for the first of these found " +
              'walking its stack up from the leaf): ' +
              profile.owners.map((o) => `${o.owner} ${pct(o.share * 100)}`).join('; ') +
              '.',
            '',
          ];
    out.push(
      `${ms(p.busyMs)} ms busy of ${ms(p.totalMs)} ms in the window (the rest idle).`,
      '',
      ...owners,
      table(
        ['function', 'where', 'area', 'self ms', 'share'],
        p.top.map((e) => [
          `\`${e.name}\``,
          e.location === '' ? '(native)' : `\`${e.location}\``,
          e.area,
          e.selfMs.toFixed(0),
          pct(e.share * 100),
        ]),
      ),
      '',
      `By area: ${p.areas
        .slice(0, 8)
        .map((a) => `${a.area} ${pct(a.share * 100)}`)
        .join(', ')}.`,
      '',
    );
  }
  return out;
}

function loadSection(r: Results, run: RunInfo): string[] {
  const { config } = run;
  const foreign = r.measurements
    .filter((m) => Number.isFinite(m.values.foreignCpuPct))
    .map((m) => ({ m, v: m.values.foreignCpuPct }));
  const sorted = foreign.map((f) => f.v).sort((a, b) => a - b);
  const worst = foreign.reduce<(typeof foreign)[number] | undefined>(
    (w, f) => (w === undefined || f.v > w.v ? f : w),
    undefined,
  );
  const busy = foreign.filter((f) => f.v >= 25).length;
  const foreignLine =
    sorted.length === 0
      ? 'CPU of processes outside the benchmark was not measured.'
      : `CPU used by processes outside the benchmark (other work on this shared machine) during the ` +
        `${sorted.length} measurement windows: median ${pct(sorted[Math.floor(sorted.length / 2)])} of a core, ` +
        `maximum ${pct(worst?.v ?? Number.NaN)} (${worst?.m.scenario} ${worst?.m.case} ${worst?.m.system} ` +
        `#${worst?.m.rep}); ${busy} window${busy === 1 ? '' : 's'} saw 25 % or more (marked in bold in the ` +
        '"limited by" columns when 5 % or more). Before each window the run waits (up to 2 s, ' +
        `${run.config.quietBudgetMs / 1000} s in all) for ` +
        'the machine to be quiet.';
  const kernel = r.measurements
    .map((m) => m.values.kernelCpuPct)
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b);
  const kernelLine =
    kernel.length === 0
      ? ''
      : `- Interrupt and softirq time (the kernel's side of the loopback TCP traffic): median ` +
        `${pct(kernel[Math.floor(kernel.length / 2)])}, maximum ${pct(kernel[kernel.length - 1])} of a core per ` +
        'window. The kernel charges it to whichever process was running, so it is already inside the CPU figures ' +
        "above (mostly the servers' and the clients' system time): delivering a message on loopback costs the " +
        'receiving side about as much kernel work as the sending side.';
  const lastN = `N=${config.burst.sizes.at(-1)}`;
  const line = (what: string, scenario: string, kase: string): string => {
    const server = r.med(scenario, kase, 'wse', 'serverCpuPct');
    const clients = r.med(scenario, kase, 'wse', 'clientCpuPct');
    return `- ${what}: server ${pct(server)} of a core, load clients ${pct(clients)}: limited by ${bottleneck(cpuOf(r, scenario, kase, 'wse'))}.`;
  };
  return [
    '## Load generators and bottlenecks',
    '',
    '- The load clients are 2 processes (one per core) of raw-socket WebSocket clients: a hand-written upgrade ' +
      'request, reads into one buffer shared by all sockets of the process (`onread`, no Buffer or stream event ' +
      'per read) and a frame scanner that counts frames and bytes without decoding them and parses the timestamp ' +
      'of sampled frames only. For Socket.IO they speak Engine.IO v4 over the websocket transport; the official ' +
      '`socket.io-client` is run once per Socket.IO server as a cross-check that it receives the same messages.',
    '- Servers, load clients (and in section 3 the second instance and redis-server) share the 2 cores. Every ' +
      'message a client reads costs it about as much as the server spends writing it when frames travel one per ' +
      'socket write, so in sections 1 and 4 the machine, not the server alone, is the limit; the "limited by" ' +
      "columns give each party's CPU (% of one core) so the reader can tell.",
    '- The reconnect storm (section 8) uses real clients instead, with their reconnect logic and default backoff: ' +
      '`WseClient` on `ws` and `socket.io-client`, half of them in each load process. They parse every message, so ' +
      "the storm's publish period is long (one message per topic and period) to keep the clients' work small.",
    line(`nestjs-wse burst at ${lastN}`, 'burst', lastN),
    line('nestjs-wse sustained maximum', 'sustained', 'max'),
    `- ${foreignLine}`,
    ...(kernelLine === '' ? [] : [kernelLine]),
    `- Load average (1, 5, 15 min) before the run: ${run.loadBefore.map((x) => x.toFixed(2)).join(', ')}; after: ` +
      `${run.loadAfter.map((x) => x.toFixed(2)).join(', ')} (the run itself keeps about 3 processes busy).`,
    '',
  ];
}

function machineSection(run: RunInfo): string[] {
  const m = run.machine;
  return [
    '## Machine, versions and command',
    '',
    `- \`nproc\`: ${m.nproc}; CPU: ${m.cpuModel}; memory: ${m.memory}; ${m.kernel}`,
    `- Node ${m.node}; redis-server ${m.redis}; open files: ${m.openFiles}; ephemeral ports: ${m.portRange}`,
    `- Packages: ${m.packages.map((p) => `${p.name} ${p.version}`).join(', ')}`,
    `- Command: \`${run.command}\` (\`npm run bench -- --quick\`: 1 repetition, smaller sizes, a few minutes, ` +
      'written to `dist-bench/`). It compiles `bench/` with `bench/tsconfig.json` to `dist-bench/` and runs ' +
      '`dist-bench/bench/run.js`; everything listens on 127.0.0.1 and every loop is bounded in count and time.',
    '',
  ];
}

/** The whole report: markdown, the SVG chart, and the target verdicts. */
export function buildReport(
  results: Results,
  run: RunInfo,
): { markdown: string; svg: string; stormSvg: string; targets: Target[] } {
  const targets = evaluateTargets(results, run.config);
  const sections = [
    ...introSection(run, targets),
    ...burstSection(results, run.config),
    ...sustainedSection(results, run.config),
    ...crossSection(results, run.config),
    ...connectionsSection(results, run),
    ...patternsSection(results, run.config),
    ...historySection(results),
    ...scaleSection(results),
    ...stormSection(results, run),
    ...subscribedSection(results, run),
    ...capabilitiesSection(results),
    ...baselineSection(results, run),
    ...profilesSection(run),
    ...loadSection(results, run),
    ...machineSection(run),
  ];
  if (results.notes.length > 0) sections.push('## Notes from this run', '', ...results.notes.map((n) => `- ${n}`), '');
  return { markdown: sections.join('\n'), svg: chart(results, run), stormSvg: stormChart(results, run), targets };
}

/** The number formats and table helpers, for report sections kept in files of their own. */
export const reportFormat = { cell, table, perSec, pct, us, ms, ratio, thousands };
