import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import calculateSlot from 'cluster-key-slot';
import type { WseRedisOptions } from '../src/index.js';
import { clusterHistoryKeys } from '../src/broker/redis/slot-tags.js';
import { RedisCluster, type ClusterNode } from './support/redis-cluster.js';
import { startRedisApp, uniquePrefix, untilWhole, type RedisApp } from './support/redis-app.js';
import { eventually, TestClient, type Envelope } from './support/ws-client.js';

/**
 * History topics in Redis Cluster mode (CONTRACT section 11) on a real local 3-master cluster,
 * two engine apps per cluster. A history topic's keys are on its channel's slot
 * (`<prefix>{<tag>}<topic>:h` / `:m`), so one script on that master numbers, keeps and
 * SPUBLISHes each message, and PUBLISHes the same stamped payload on the classic bus for the
 * globs. Offsets run 1..N per topic on every shard and every instance, a client recovers on one
 * instance what it missed on the other (nothing missing, nothing twice, in order), and a killed
 * shard sends only its own history topic's messages to the DLQ.
 */

const API_KEY = 'cluster-history-key';
const APP_OPTIONS = {
  apiKey: API_KEY,
  pingIntervalMs: 600_000,
  idleTimeoutMs: 600_000,
  recovery: { topics: ['hist:*'], size: 500, maxReplay: 500 },
};

type ClusterRedisOptions = WseRedisOptions & { cluster?: { nodes: string[] } };

interface Stamped {
  tp: string;
  e: string;
  o: number;
  n?: number;
  k?: string;
}

interface RecoveryEntry {
  epoch?: string;
  offset?: number;
  recovered: boolean;
  count: number;
  reason?: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function startClusterApp(cluster: RedisCluster, prefix: string, extra: ClusterRedisOptions = {}) {
  return startRedisApp({ cluster: { nodes: cluster.addresses }, prefix, ...extra } as WseRedisOptions, APP_OPTIONS);
}

/** Candidate topics `<stem>:<i>` until each node owns one; index = node order. */
async function oneTopicPerShard(cluster: RedisCluster, prefix: string, stem: string): Promise<string[]> {
  const candidates = Array.from({ length: 64 }, (_, i) => `${stem}:${i}`);
  const owners = await cluster.slotOwners();
  return cluster.nodes.map((node) => {
    const found = candidates.find((topic) => owners[calculateSlot(prefix + topic)] === node);
    if (found === undefined) throw new Error(`none of 64 candidate topics hashes to ${node.address}`);
    return found;
  });
}

function stampedOf(client: TestClient, topic?: string): Stamped[] {
  return client.frames
    .map((frame) => frame.json as Stamped | undefined)
    .filter((m): m is Stamped => m !== undefined && typeof m.o === 'number' && (topic === undefined || m.tp === topic));
}

async function subscribe(client: TestClient, topics: string[], extra: Record<string, unknown> = {}): Promise<Envelope> {
  client.send({ t: 'subscription', p: { action: 'subscribe', topics, ...extra } });
  return client.nextOfType('subscription_update');
}

describe('Redis Cluster mode: history topics', () => {
  let cluster: RedisCluster;
  let a: RedisApp;
  let b: RedisApp;
  const prefix = uniquePrefix('ch');
  const clients: TestClient[] = [];

  async function connect(app: RedisApp): Promise<TestClient> {
    const { client } = await TestClient.ready(app.wsUrl);
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    cluster = await RedisCluster.launch();
    a = await startClusterApp(cluster, prefix);
    b = await startClusterApp(cluster, prefix);
    await untilWhole([a, b], 15_000);
  }, 60_000);
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await cluster?.stop();
  });

  it('stamps offsets 1..N per topic on each of the three shards, the same on both instances, keys on the channel’s master', async () => {
    const topics = await oneTopicPerShard(cluster, prefix, 'hist:shard');
    const onA = await connect(a);
    const onB = await connect(b);
    await Promise.all([subscribe(onA, topics), subscribe(onB, topics)]);
    const N = 20;
    // Both instances publish, in the same ticks: Redis gives the offsets, one sequence per topic.
    for (let n = 1; n <= N; n++) for (const topic of topics) (n % 2 === 0 ? a : b).publisher.publish(topic, { n });
    await eventually(
      () => stampedOf(onA).length >= 3 * N && stampedOf(onB).length >= 3 * N,
      10_000,
      `${3 * N} stamped messages on each instance (got ${stampedOf(onA).length}, ${stampedOf(onB).length})`,
    );
    await sleep(200);
    for (const topic of topics) {
      const seenA = stampedOf(onA, topic);
      const seenB = stampedOf(onB, topic);
      expect(seenA.map((m) => m.o)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      expect(seenB).toEqual(seenA);
      expect(new Set(seenA.map((m) => m.e)).size).toBe(1);
      // Each instance's own publishes keep their order within the topic's sequence.
      for (const parity of [0, 1]) {
        const ns = seenA.map((m) => m.n!).filter((n) => n % 2 === parity);
        expect(ns).toEqual([...ns].sort((x, y) => x - y));
      }
    }
    const owners = await cluster.slotOwners();
    for (const [i, topic] of topics.entries()) {
      const { stream, meta } = clusterHistoryKeys(prefix, topic);
      const owner: ClusterNode | undefined = owners[calculateSlot(prefix + topic)];
      expect(owner).toBe(cluster.nodes[i]);
      expect(Number(await owner!.server.command('XLEN', stream))).toBe(N);
      expect(String(await owner!.server.command('HGET', meta, 'o'))).toBe(String(N));
    }
    expect(a.redis.dlqSize + b.redis.dlqSize).toBe(0);
  }, 30_000);

  it('gives a glob subscriber on the other instance each stamped message once, as the exact subscribers get it', async () => {
    const topic = 'hist:glob:1';
    const glob = await connect(b);
    const exact = await connect(b);
    await subscribe(glob, ['hist:glob:*']);
    await subscribe(exact, [topic]);
    // Until A knows B's glob (the announcement): warm-up messages on another topic it matches.
    const deadline = Date.now() + 10_000;
    let round = 0;
    while (!stampedOf(glob, 'hist:glob:warm').length) {
      if (Date.now() > deadline) throw new Error('the glob subscriber got no warm-up message in 10 s');
      a.publisher.publish('hist:glob:warm', { n: round++ });
      await sleep(50);
    }
    for (let n = 1; n <= 10; n++) a.publisher.publish(topic, { n });
    await eventually(
      () => stampedOf(glob, topic).length >= 10 && stampedOf(exact, topic).length >= 10,
      5_000,
      'ten messages on the glob and the exact subscriber',
    );
    await sleep(300);
    const viaGlob = stampedOf(glob, topic);
    expect(viaGlob.map((m) => m.o)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(viaGlob.map((m) => m.n)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(viaGlob).toEqual(stampedOf(exact, topic));
  }, 30_000);

  it('recovers on B what a client missed after it saw messages on A: nothing missing, nothing twice, in order, then live ones', async () => {
    const topics = await oneTopicPerShard(cluster, prefix, 'hist:rec');
    const first = await connect(a);
    await subscribe(first, topics);
    for (let n = 1; n <= 3; n++) for (const topic of topics) a.publisher.publish(topic, { n });
    await eventually(() => stampedOf(first).length >= 9, 5_000, 'three messages per topic');
    const last = new Map(topics.map((topic) => [topic, stampedOf(first, topic).at(-1)!]));
    await first.close();
    for (let n = 4; n <= 8; n++) for (const topic of topics) a.publisher.publish(topic, { n });
    // Until a message published after them is back: they are in Redis then.
    const witness = await connect(a);
    await subscribe(witness, topics);
    for (const topic of topics) a.publisher.publish(topic, { n: 9 });
    await eventually(() => stampedOf(witness).length >= 3, 5_000, 'n 9 on the witness');

    const back = await connect(b);
    // Publishes keep coming from A while B recovers: the answer must merge them exactly.
    let n = 9;
    const publishing = new Promise<void>((resolve) => {
      const step = (): void => {
        if (n < 30) {
          n++;
          for (const topic of topics) a.publisher.publish(topic, { n });
        }
        if (n < 30) setImmediate(step);
        else resolve();
      };
      setImmediate(step);
    });
    const recovery = Object.fromEntries(topics.map((topic) => [topic, { epoch: last.get(topic)!.e, offset: 3 }]));
    const answer = await subscribe(back, topics, { recover: true, recovery });
    await publishing;
    expect(answer.p).toMatchObject({ success_topics: topics, recovered: true });
    for (const topic of topics) {
      expect((answer.p.recovery as Record<string, RecoveryEntry>)[topic]).toMatchObject({ recovered: true });
    }
    await eventually(
      () => stampedOf(back).length >= 3 * 27,
      10_000,
      `27 messages per topic (got ${stampedOf(back).length})`,
    );
    await sleep(300);
    for (const topic of topics) {
      const got = stampedOf(back, topic);
      expect(got.map((m) => m.o)).toEqual(Array.from({ length: 27 }, (_, i) => i + 4));
      expect(got.map((m) => m.n)).toEqual(Array.from({ length: 27 }, (_, i) => i + 4));
      expect(new Set(got.map((m) => m.e))).toEqual(new Set([last.get(topic)!.e]));
    }
  }, 45_000);

  it('answers recovered:false with the current position for a wrong epoch', async () => {
    const topic = 'hist:epoch';
    const seen = await connect(a);
    await subscribe(seen, [topic]);
    a.publisher.publish(topic, { n: 1 });
    await eventually(() => stampedOf(seen, topic).length === 1, 5_000, 'one message');
    const back = await connect(b);
    const answer = await subscribe(back, [topic], {
      recover: true,
      recovery: { [topic]: { epoch: 'nope', offset: 0 } },
    });
    const entry = (answer.p.recovery as Record<string, RecoveryEntry>)[topic];
    expect(entry).toMatchObject({ recovered: false, count: 0, epoch: stampedOf(seen, topic)[0].e, offset: 1 });
    await sleep(200);
    expect(stampedOf(back)).toEqual([]);
  }, 20_000);
  it("lists a moved slot's history topic with its current position in the resync, and numbers on from there", async () => {
    // Last in this block: it moves a slot.
    const topic = 'hist:moving';
    const channel = prefix + topic;
    const slot = calculateSlot(channel);
    const from = await cluster.ownerOfSlot(slot);
    const to = cluster.nodes.find((node) => node !== from)!;
    const client = await connect(b);
    await subscribe(client, [topic]);
    for (let n = 1; n <= 5; n++) a.publisher.publish(topic, { n });
    await eventually(() => stampedOf(client, topic).length === 5, 5_000, 'five messages before the move');
    await cluster.migrateSlot(slot, to);
    const resyncOf = ():
      { topics: string[]; recovery?: Record<string, { epoch: string; offset: number }> } | undefined =>
      client.frames
        .map((f) => f.json as { t?: string; p?: { reason?: string; topics: string[]; recovery?: never } } | undefined)
        .find((json) => json?.t === 'resync' && json.p?.reason === 'shard_moved')?.p;
    await eventually(() => resyncOf() !== undefined, 15_000, 'the shard_moved resync');
    const resync = resyncOf()!;
    const { meta } = clusterHistoryKeys(prefix, topic);
    expect(resync.topics).toEqual([topic]);
    expect(resync.recovery?.[topic]).toEqual({
      epoch: stampedOf(client, topic)[0].e,
      offset: Number(await to.server.command('HGET', meta, 'o')),
    });
    // The history moved with its slot: numbering goes on from there on the new master.
    a.publisher.publish(topic, { n: 6 });
    await eventually(() => stampedOf(client, topic).length === 6, 5_000, 'the sixth message after the move');
    expect(stampedOf(client, topic).map((m) => m.o)).toEqual([1, 2, 3, 4, 5, 6]);
  }, 30_000);
});

describe('Redis Cluster mode: history topics with a shard killed', () => {
  let cluster: RedisCluster;
  let a: RedisApp;
  let b: RedisApp;
  let topics: string[];
  let onA: TestClient;
  let onB: TestClient;
  let dlq: { channel: string; reason: string; payload: string }[];
  const prefix = uniquePrefix('ck');
  const PER_TOPIC = 30;

  beforeAll(async () => {
    cluster = await RedisCluster.launch();
    const redis: ClusterRedisOptions = { probeIntervalMs: 1_000, probeTimeoutMs: 1_000, dlqCapacity: 10_000 };
    a = await startClusterApp(cluster, prefix, redis);
    b = await startClusterApp(cluster, prefix, redis);
    await untilWhole([a, b], 15_000);
    topics = await oneTopicPerShard(cluster, prefix, 'hist:k');
    onA = (await TestClient.ready(a.wsUrl)).client;
    onB = (await TestClient.ready(b.wsUrl)).client;
    await Promise.all([subscribe(onA, topics), subscribe(onB, topics)]);
    for (const topic of topics) a.publisher.publish(topic, { n: 0 });
    await eventually(() => stampedOf(onA).length === 3 && stampedOf(onB).length === 3, 5_000, 'one message per topic');

    await cluster.kill(cluster.nodes[0]);
    // Until the instances deliver again without the dead shard (its classic connection may move).
    await eventually(
      () =>
        [a, b].every(
          (app) =>
            app.redis.redisConnected() &&
            app.redis.shards().some((s) => s.node === cluster.nodes[0].address && !s.connected),
        ),
      20_000,
      'both instances delivering with the shard down',
    );
    for (let n = 1; n <= PER_TOPIC; n++) for (const topic of topics) a.publisher.publish(topic, { n });
    await eventually(
      () => {
        const s = a.snapshot();
        return s.redis_messages_published + s.redis_publish_errors >= 3 + 3 * PER_TOPIC;
      },
      20_000,
      'an outcome for every publish',
    );
    await sleep(500);
    dlq = (await a.api('GET', '/api/dlq')).body.entries as { channel: string; reason: string; payload: string }[];
  }, 90_000);
  afterAll(async () => {
    await onA?.close();
    await onB?.close();
    // Back up before the apps stop, as the plain suite ends (a stop against a dead master is not under test here).
    await cluster?.restart(cluster.nodes[0]);
    await a?.close();
    await b?.close();
    await cluster?.stop();
  });

  it("sends the dead shard's history topic to the DLQ, none delivered", () => {
    const dead = topics[0];
    const entries = dlq.filter((e) => e.channel === prefix + dead);
    expect(entries.map((e) => (JSON.parse(e.payload) as { n: number }).n).sort((x, y) => x - y)).toEqual(
      Array.from({ length: PER_TOPIC }, (_, i) => i + 1),
    );
    // Refused, or not answered within half the publish deadline (partial: it may still run).
    expect(entries.filter((e) => !['publish_failed', 'not_connected', 'partial'].includes(e.reason))).toEqual([]);
    expect(stampedOf(onA, dead).map((m) => m.o)).toEqual([1]);
    expect(stampedOf(onB, dead).map((m) => m.o)).toEqual([1]);
  });

  it("keeps numbering and delivering the other shards' history topics on both instances, once each, in order", () => {
    for (const topic of topics.slice(1)) {
      expect(dlq.filter((e) => e.channel === prefix + topic)).toEqual([]);
      for (const client of [onA, onB]) {
        const got = stampedOf(client, topic);
        expect(got.map((m) => m.o)).toEqual(Array.from({ length: PER_TOPIC + 1 }, (_, i) => i + 1));
        expect(got.map((m) => m.n)).toEqual(Array.from({ length: PER_TOPIC + 1 }, (_, i) => i));
      }
    }
  });
});
