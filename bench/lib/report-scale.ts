import type { Results } from './results.js';
import { reportFormat as f, type Target } from './report.js';

/**
 * The scale-out section (issue 15) of the report and its targets: routing (pattern vs interest
 * with four instances), shards (one Redis vs a 3-master cluster under the same load) and
 * subscription churn. Rows are medians of the repetitions with their ranges.
 */

const ROUTING_LABEL: Readonly<Record<string, string>> = {
  pattern: '`pattern` (every instance `PSUBSCRIBE wse:*`)',
  interest: '`interest` (each instance subscribes what its connections follow)',
};
const SHARD_LABEL: Readonly<Record<string, string>> = {
  pattern: 'one Redis, `pattern`',
  interest: 'one Redis, `interest`',
  cluster: 'Redis Cluster, 3 masters (sharded pub/sub)',
};

/** Where the limit was in a window of several instances (% of one core; 200 % = the machine). */
function limitedBy(r: Results, kase: string, system: string, instances: number): string {
  const med = (metric: string): number => r.med('scale', kase, system, metric);
  const busiest = med('serverCpuPct');
  const servers = med('serversCpuPct');
  const redis = med('redisCpuPct');
  const busiestRedis = med('busiestRedisCpuPct');
  const clients = med('clientCpuPct');
  const foreign = med('foreignCpuPct');
  const total = servers + redis + clients + (Number.isFinite(foreign) ? foreign : 0);
  if (!Number.isFinite(total)) return 'n/a';
  const parts =
    `${instances} instances ${f.pct(servers)} (busiest ${f.pct(busiest)}), redis ${f.pct(redis)}, clients ${f.pct(clients)}` +
    (foreign >= 5 ? `, **other processes ${f.pct(foreign)}**` : '');
  if (busiestRedis >= 85) return `a redis-server (${parts})`;
  if (busiest >= 85) return `an instance (${parts})`;
  if (total >= 170) return `machine, ${f.pct(total)} of 200 % (${parts})`;
  if (med('held') < 0.99) return `not all delivered, though no process was busy all the time (${parts})`;
  return `neither (${parts}): the offered load`;
}

export function scaleTargets(r: Results): Target[] {
  const known = (x: number): boolean | undefined => (Number.isFinite(x) ? true : undefined);
  const check = (value: number, ok: boolean): boolean | undefined => known(value) && ok;
  const interest = r.med('scale', 'routing', 'interest', 'deliveriesPerSec');
  const pattern = r.med('scale', 'routing', 'pattern', 'deliveriesPerSec');
  const single = r.med('scale', 'shards', 'interest', 'redis0CpuUsPerMsg');
  const busiest = r.med('scale', 'shards', 'cluster', 'busiestRedisCpuUsPerMsg');
  const clusterDelivery = r.med('scale', 'shards', 'cluster', 'cpuUsPerDelivery');
  const singleDelivery = r.med('scale', 'shards', 'interest', 'cpuUsPerDelivery');
  return [
    {
      name: 'Scale-out: four instances with interest routing publish at least 2.5x of pattern routing',
      measured: `${f.ratio(interest / pattern)} (${f.perSec(interest)} vs ${f.perSec(pattern)} deliveries/s)`,
      met: check(interest / pattern, interest / pattern >= 2.5),
    },
    {
      name: "Cluster: the busiest of 3 shards does at most 0.45x of one Redis's CPU per message",
      measured: `${f.ratio(busiest / single)} (${f.us(busiest)} vs ${f.us(single)} µs/msg)`,
      met: check(busiest / single, busiest / single <= 0.45),
    },
    {
      name: "Cluster: the instances' CPU per delivery at most 1.3x of one Redis",
      measured: `${f.ratio(clusterDelivery / singleDelivery)} (${f.us(clusterDelivery)} vs ${f.us(singleDelivery)} µs)`,
      met: check(clusterDelivery / singleDelivery, clusterDelivery / singleDelivery <= 1.3),
    },
  ];
}

export function scaleSection(r: Results): string[] {
  const has = (kase: string): boolean => r.measurements.some((m) => m.scenario === 'scale' && m.case === kase);
  if (!has('routing') && !has('outside') && !has('shards') && !has('churn')) return [];
  const cell = (kase: string, system: string, metric: string, format: (x: number) => string): string =>
    f.cell(r.summary('scale', kase, system, metric), format);
  const lines: string[] = ['## 7. Scaling out: interest routing and Redis Cluster', ''];

  if (has('routing')) {
    const pattern = r.med('scale', 'routing', 'pattern', 'deliveriesPerSec');
    const rows = ['pattern', 'interest'].map((system) => [
      ROUTING_LABEL[system],
      cell('routing', system, 'deliveriesPerSec', f.perSec),
      f.ratio(r.med('scale', 'routing', system, 'deliveriesPerSec') / pattern),
      [0, 1, 2, 3].map((i) => f.pct(r.med('scale', 'routing', system, `instance${i}CpuPct`))).join(' / '),
      cell('routing', system, 'cpuUsPerDelivery', f.us),
      cell('routing', system, 'redisCpuPct', f.pct),
      cell('routing', system, 'held', (x) => f.pct(x * 100)),
      limitedBy(r, 'routing', system, 4),
    ]);
    lines.push(
      '(a) Four instances on one redis-server; each instance holds its own topics (one connection per topic) and ' +
        'every topic is followed on one instance only. All four flood Redis (publishes in flight bounded per ' +
        'instance) over all the topics, so each message has one recipient and deliveries/s is the deployment’s ' +
        'publish capacity. With `pattern` each instance receives every message and drops three in four.',
      '',
      f.table(
        [
          'routing',
          'deliveries/s (= publishes delivered/s)',
          'vs pattern',
          'CPU of each instance (median)',
          'instance CPU µs/delivery',
          'redis-server CPU',
          'delivered',
          'limited by',
        ],
        rows,
      ),
      '',
      '**What bounds interest routing here.** The instances both publish and deliver. Interest routing removes ' +
        'the receiving and dropping of the messages an instance does not deliver (instance CPU per delivery ' +
        `${f.us(r.med('scale', 'routing', 'pattern', 'cpuUsPerDelivery'))} µs with \`pattern\`, ` +
        `${f.us(r.med('scale', 'routing', 'interest', 'cpuUsPerDelivery'))} µs with \`interest\`); what is left ` +
        'is the publishing side (serializing, the pipeline, the batch command) and the one delivery, the same in ' +
        'both modes, and the 2-core machine is full in both (see "limited by"). A deployment whose publishers are ' +
        'other processes (PUBLISH from a backend) keeps only the receiving side on the instances: that is (a2).',
      '',
    );
  }

  if (has('outside')) {
    const pattern = r.med('scale', 'outside', 'pattern', 'cpuUsPerDelivery');
    const rows = ['pattern', 'interest'].map((system) => [
      ROUTING_LABEL[system],
      cell('outside', system, 'deliveriesPerSec', f.perSec),
      [0, 1, 2, 3].map((i) => f.pct(r.med('scale', 'outside', system, `instance${i}CpuPct`))).join(' / '),
      cell('outside', system, 'cpuUsPerDelivery', f.us),
      f.ratio(pattern / r.med('scale', 'outside', system, 'cpuUsPerDelivery')),
      cell('outside', system, 'redisCpuPct', f.pct),
      cell('outside', system, 'held', (x) => f.pct(x * 100)),
      limitedBy(r, 'outside', system, 4),
    ]);
    lines.push(
      '(a2) The same four instances and topics, with the publisher outside them: one process sends plain ' +
        '`PUBLISH wse:<topic>` at a fixed rate over all the topics (as a backend would), so the instances only ' +
        'receive and deliver. With `pattern` each instance receives every message; with `interest` a quarter. ' +
        'An instance on a machine of its own is bounded by its CPU per delivery, so the ratio of the two is the ' +
        'ratio of the deployments’ capacities (on this 2-core machine the fixed rate leaves room, see "limited by").',
      '',
      f.table(
        [
          'routing',
          'deliveries/s (the offered rate)',
          'CPU of each instance (median)',
          'instance CPU µs/delivery',
          'capacity vs pattern',
          'redis-server CPU',
          'delivered',
          'limited by',
        ],
        rows,
      ),
      '',
      ...outsideBounds(r),
    );
  }

  if (has('shards')) {
    const single = r.med('scale', 'shards', 'interest', 'redis0CpuUsPerMsg');
    const singleDelivery = r.med('scale', 'shards', 'interest', 'cpuUsPerDelivery');
    const rows = ['pattern', 'interest', 'cluster'].map((system) => {
      const shards = r.med('scale', 'shards', system, 'shards');
      const perShard = Array.from({ length: Number.isFinite(shards) ? shards : 1 }, (_, i) =>
        f.us(r.med('scale', 'shards', system, `redis${i}CpuUsPerMsg`)),
      ).join(' / ');
      return [
        SHARD_LABEL[system],
        cell('shards', system, 'deliveriesPerSec', f.perSec),
        perShard,
        cell('shards', system, 'busiestRedisCpuUsPerMsg', f.us),
        f.ratio(r.med('scale', 'shards', system, 'busiestRedisCpuUsPerMsg') / single),
        cell('shards', system, 'cpuUsPerDelivery', f.us),
        f.ratio(r.med('scale', 'shards', system, 'cpuUsPerDelivery') / singleDelivery),
        cell('shards', system, 'held', (x) => f.pct(x * 100)),
        limitedBy(r, 'shards', system, 2),
      ];
    });
    lines.push(
      '(b) Two instances under the same fixed load (each publishes at a paced rate over the topics, each topic ' +
        'followed on one instance) on one redis-server and on a local Redis Cluster of three masters. This ' +
        'machine has two cores, so the capacity a cluster adds shows as where the work goes: the CPU time of each ' +
        'redis-server process (/proc/<pid>/stat utime + stime) per message published. Ratios are against one ' +
        'Redis with `interest` routing.',
      '',
      f.table(
        [
          'Redis',
          'deliveries/s',
          'redis-server CPU µs/msg, each process',
          'busiest process µs/msg',
          'busiest vs one Redis',
          'instance CPU µs/delivery',
          'vs one Redis',
          'delivered',
          'limited by',
        ],
        rows,
      ),
      '',
      '**What bounds the cluster here.** The messages of a tick are grouped by the master owning each ' +
        'channel’s slot, and each master gets one script call of `SPUBLISH`es (a plain `SPUBLISH` when it has ' +
        'a single message of the tick). At this paced rate a tick holds only a few messages per master, against ' +
        'the whole tick in one script on a single Redis, so a master spreads its cost per command over fewer ' +
        'messages and three masters share the work at more than a third each; the instances pay one command and ' +
        'one promise per master and tick instead of one per message.',
      '',
    );
  }

  if (has('churn')) {
    const rows = ['pattern', 'interest', 'cluster'].map((system) => [
      SHARD_LABEL[system],
      cell('churn', system, 'connections', (x) => f.thousands(x)),
      cell('churn', system, 'commands', (x) => f.thousands(Math.round(x))),
      cell('churn', system, 'commandsPerConnection', (x) => x.toFixed(3)),
      cell('churn', system, 'subscribeMs', f.ms),
      cell('churn', system, 'leaveMs', f.ms),
    ]);
    lines.push(
      '(c) Subscription churn on one instance: connections each subscribing a topic of its own, then all leaving. ' +
        'Commands are the subscribe and unsubscribe commands Redis counted (INFO commandstats of every node before ' +
        'and after); the times run from the first connection attempt until Redis holds every subscription, and ' +
        'from the first close until Redis holds none.',
      '',
      f.table(
        [
          'Redis',
          'connections',
          'subscription commands',
          'per connection',
          'until all subscribed in Redis, ms',
          'until all dropped, ms',
        ],
        rows,
      ),
      '',
    );
  }
  return lines;
}

/**
 * What (a2) says about capacity: with the publishers outside, an instance pays R per message it
 * receives and D per delivery, so per delivery `pattern` costs 4R + D and `interest` R + D.
 */
function outsideBounds(r: Results): string[] {
  const pattern = r.med('scale', 'outside', 'pattern', 'cpuUsPerDelivery');
  const interest = r.med('scale', 'outside', 'interest', 'cpuUsPerDelivery');
  if (!Number.isFinite(pattern) || !Number.isFinite(interest)) return [];
  const receive = (pattern - interest) / 3;
  const deliver = interest - receive;
  if (!(receive > 0) || !(deliver > 0)) {
    return [
      `**What (a2) shows.** Per delivery ${f.us(pattern)} µs with \`pattern\` and ${f.us(interest)} µs with ` +
        '`interest`: in this run the difference is within the noise, so it does not separate the cost of receiving ' +
        'a message from the cost of delivering it.',
      '',
    ];
  }
  const instancesFor = (ratio: number): number => Math.ceil((ratio * (receive + deliver) - deliver) / receive);
  return [
    `**Receiving against delivering.** With the publishers outside, an instance spends R per message it ` +
      `receives and D per delivery, so a delivery costs 4R + D with \`pattern\` and R + D with \`interest\`. ` +
      `From the two rows: R = ${f.us(receive)} µs (receiving a message and dropping it: ioredis reads the reply, ` +
      `the instance looks its channel up and finds nobody; the payload is not parsed) and D = ${f.us(deliver)} µs ` +
      '(the delivery: the frame, the write round, one socket write per message at this rate, and the kernel’s ' +
      `loopback send). The capacity ratio of N instances is (N·R + D) / (R + D): ${f.ratio((4 * receive + deliver) / (receive + deliver))} ` +
      `for four, and 2.5x from about ${instancesFor(2.5)} instances on. Interest routing removes the receiving, ` +
      'which is the cheap part of an instance’s work here; what it removes for certain is Redis’s egress and ' +
      'each instance’s ingest bandwidth, three quarters of both with four instances.',
    '',
  ];
}
