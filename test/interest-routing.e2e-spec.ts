import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { startRedisApp, uniquePrefix, type RedisApp } from './support/redis-app.js';
import { RedisServer } from './support/redis-server.js';
import { eventually, TestClient, type ReceivedFrame } from './support/ws-client.js';

/**
 * Interest routing (CONTRACT section 9, `routing: 'interest'`) on one real redis-server with three
 * instances A, B and C: each instance subscribes in Redis only to what its connections follow,
 * so a topic followed on A reaches A alone; globs are PSUBSCRIBEd; a message that reaches an
 * instance through several of its subscriptions reaches each connection once; a
 * `subscription_update` success means Redis delivers the topic already; changes are batched.
 */

const PUBLISH_WAIT_MS = 5_000;

/** The `n` of each numbered message frame, in arrival order (other frames are left out). */
function numbers(frames: readonly ReceivedFrame[]): number[] {
  const seen: number[] = [];
  for (const frame of frames) {
    const n = (frame.json as { n?: unknown } | undefined)?.n;
    if (typeof n === 'number') seen.push(n);
  }
  return seen;
}

/**
 * The numbers sorted: messages of two publishers (the API and an outside client) interleave in
 * any order, each publisher's own stay in order (checked by `inOrder`).
 */
function sorted(values: readonly number[]): number[] {
  return [...values].sort((x, y) => x - y);
}

/** The values below `split`, then those from it on, each in arrival order. */
function bySource(values: readonly number[], split: number): [number[], number[]] {
  return [values.filter((v) => v < split), values.filter((v) => v >= split)];
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

describe('interest routing: three instances on one Redis', () => {
  let server: RedisServer;
  let outside: Redis;
  let prefix: string;
  let a: RedisApp;
  let b: RedisApp;
  let c: RedisApp;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await RedisServer.launch();
    outside = new Redis(server.url);
    prefix = uniquePrefix('int');
    [a, b, c] = await Promise.all(
      [0, 1, 2].map(() =>
        startRedisApp(
          { url: server.url, prefix, routing: 'interest' },
          { pingIntervalMs: 600_000, idleTimeoutMs: 600_000 },
        ),
      ),
    );
    await eventually(
      () => [a, b, c].every((app) => app.redis.redisConnected() && app.redis.peers === 2),
      10_000,
      'every instance delivering and knowing the two others',
    );
  }, 30_000);
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    outside?.disconnect();
    await Promise.all([a, b, c].map((app) => app?.close()));
    await server?.stop();
  });

  async function follower(app: RedisApp, topics: string[]): Promise<TestClient> {
    const { client } = await TestClient.ready(app.wsUrl);
    clients.push(client);
    const update = await client.subscribe(topics);
    expect(update.p).toMatchObject({ action: 'subscribe', success_topics: topics, failed_topics: [] });
    return client;
  }

  async function numSub(topic: string): Promise<number> {
    const reply = (await outside.pubsub('NUMSUB', prefix + topic)) as [string, number];
    return Number(reply[1]);
  }

  it('reports its mode in the health snapshot', () => {
    expect(a.snapshot()).toMatchObject({ redis_mode: 'interest', redis_connected: true });
  });

  it('delivers a topic followed only on A to A alone: B and C receive nothing from Redis', async () => {
    const topic = 'only-a:1';
    const client = await follower(a, [topic]);
    expect(await numSub(topic)).toBe(1);
    const receivedBefore = [a, b, c].map((app) => app.snapshot().redis_messages_received);
    for (const n of range(50)) b.publisher.publish(topic, { n });
    const frames = await client.take(50, PUBLISH_WAIT_MS);
    expect(numbers(frames)).toEqual(range(50));
    await client.expectNothing(200);
    const receivedAfter = [a, b, c].map((app) => app.snapshot().redis_messages_received);
    expect(receivedAfter[0] - receivedBefore[0]).toBe(50);
    expect(receivedAfter[1]).toBe(receivedBefore[1]);
    expect(receivedAfter[2]).toBe(receivedBefore[2]);
  });

  it('follows subscribe and unsubscribe in PUBSUB NUMSUB, per instance and not per connection', async () => {
    const topic = 'numsub:1';
    expect(await numSub(topic)).toBe(0);
    const first = await follower(a, [topic]);
    await follower(a, [topic]);
    expect(await numSub(topic)).toBe(1);
    const onB = await follower(b, [topic]);
    expect(await numSub(topic)).toBe(2);
    await onB.subscribe([topic], 'unsubscribe');
    await eventually(() => b.snapshot().redis_subscriptions === 0, 2_000, 'B to drop the topic');
    await expect(waitForNumSub(topic, 1)).resolves.toBe(1);
    await first.close();
    // A still has the second connection on it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await numSub(topic)).toBe(1);
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await expect(waitForNumSub(topic, 0)).resolves.toBe(0);
  });

  async function waitForNumSub(topic: string, expected: number): Promise<number> {
    const deadline = Date.now() + 2_000;
    let count = await numSub(topic);
    while (count !== expected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      count = await numSub(topic);
    }
    return count;
  }

  it('answers success only once Redis delivers the topic: a PUBLISH right after the answer arrives', async () => {
    const subscribers: TestClient[] = [];
    for (const i of range(20)) {
      const topic = `fresh:${i}`;
      // One connection per topic: each one's first message is the one published right after its answer.
      subscribers.push(await follower(c, [topic]));
      // From outside, at once: no instance had this topic before the answer.
      await outside.publish(prefix + topic, JSON.stringify({ n: i }));
    }
    for (const i of range(20)) expect(numbers(await subscribers[i].take(1, PUBLISH_WAIT_MS))).toEqual([i]);
  });

  it('PSUBSCRIBEs globs: a glob follower gets matching messages once, from the publisher API and from outside', async () => {
    const onB = await follower(b, ['room:*']);
    const receivedBefore = a.snapshot().redis_messages_received;
    for (const n of range(20)) a.publisher.publish(`room:${n % 3}`, { n });
    for (const n of range(40).slice(20)) await outside.publish(`${prefix}room:${n % 3}`, JSON.stringify({ n }));
    a.publisher.publish('other:1', { n: -1 });
    const got = numbers(await onB.take(40, PUBLISH_WAIT_MS));
    expect(sorted(got)).toEqual(range(40));
    expect(bySource(got, 20)).toEqual([range(20), range(40).slice(20)]);
    await onB.expectNothing(200);
    // A follows nothing: none of these reached it.
    expect(a.snapshot().redis_messages_received).toBe(receivedBefore);
  });

  it('reaches a connection once when a message matches its topic and two of its globs, and each other follower once', async () => {
    const topic = 'dup:7';
    const both = await follower(c, [topic, 'dup:*', '*:7']);
    const globOnly = await follower(c, ['d?p:*']);
    const exactOnly = await follower(c, [topic]);
    const dropsBefore = c.snapshot().redis_duplicates_dropped;
    for (const n of range(30)) a.publisher.publish(topic, { n });
    for (const n of range(60).slice(30)) await outside.publish(prefix + topic, JSON.stringify({ n }));
    for (const client of [both, globOnly, exactOnly]) {
      const got = numbers(await client.take(60, PUBLISH_WAIT_MS));
      expect(sorted(got)).toEqual(range(60));
      expect(bySource(got, 30)).toEqual([range(30), range(60).slice(30)]);
      await client.expectNothing(100);
    }
    // Each PUBLISH came to C four times (the topic and three globs); three copies were dropped.
    expect(c.snapshot().redis_duplicates_dropped - dropsBefore).toBe(60 * 3);
  });

  it('delivers every message once, in order, while other connections keep changing what the instance subscribes', async () => {
    const topic = 'churn:1';
    const steady = await follower(b, [topic, 'churn:?']);
    const { client: churner } = await TestClient.ready(b.wsUrl);
    clients.push(churner);
    const total = 600;
    let sent = 0;
    const publishing = (async () => {
      while (sent < total) {
        await outside.publish(prefix + topic, JSON.stringify({ n: sent++ }));
        if (sent % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    // Each round adds and removes subscriptions overlapping the steady one's, so B's exact and
    // pattern subscriptions in Redis change while the stream runs.
    const sets = [['churn:*'], [topic], ['*'], ['churn:*', '*:1', topic], ['c*']];
    for (let round = 0; sent < total && round < 200; round++) {
      const set = sets[round % sets.length];
      await churner.subscribe(set);
      await churner.subscribe(set, 'unsubscribe');
    }
    await publishing;
    const got = numbers(await steady.take(total, PUBLISH_WAIT_MS));
    expect(got).toEqual(range(total));
    await steady.expectNothing(200);
  });

  it('batches subscription changes: 50 connections subscribing 20 topics each cost a handful of commands', async () => {
    const commandsBefore = a.snapshot().redis_subscription_commands;
    const connections = await Promise.all(range(50).map(() => TestClient.ready(a.wsUrl)));
    for (const { client } of connections) clients.push(client);
    await Promise.all(
      connections.map(({ client }, i) => client.subscribe(range(20).map((j) => `batch:${(i * 20 + j) % 400}`))),
    );
    const commands = a.snapshot().redis_subscription_commands - commandsBefore;
    expect(commands).toBeGreaterThan(0);
    expect(commands).toBeLessThanOrEqual(50);
    expect(a.snapshot().redis_subscriptions).toBe(400);
    const reply = (await outside.pubsub('NUMSUB', ...range(400).map((i) => `${prefix}batch:${i}`))) as (
      string | number
    )[];
    const counts = reply.filter((_, i) => i % 2 === 1).map(Number);
    expect(counts.every((count) => count === 1)).toBe(true);
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await eventually(() => a.snapshot().redis_subscriptions === 0, 3_000, 'A to drop all 400 topics');
    expect(await waitForNumSub('batch:0', 0)).toBe(0);
  });

  it('resubscribes everything after Redis restarts, tells the client with resync, and delivers again', async () => {
    const exact = await follower(a, ['again:1']);
    const glob = await follower(b, ['again:*']);
    await server.stop();
    await server.start();
    for (const client of [exact, glob]) {
      const resync = await client.nextOfType('resync', 10_000);
      expect(resync.p).toMatchObject({ reason: 'redis_reconnected' });
    }
    await eventually(
      () => [a, b, c].every((app) => app.redis.redisConnected()),
      10_000,
      'every instance delivering again',
    );
    for (const n of range(10)) c.publisher.publish('again:1', { n });
    expect(numbers(await exact.take(10, PUBLISH_WAIT_MS))).toEqual(range(10));
    expect(numbers(await glob.take(10, PUBLISH_WAIT_MS))).toEqual(range(10));
    expect(await numSub('again:1')).toBe(1);
  }, 30_000);
});
