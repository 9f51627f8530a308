import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { defineHistoryCommands, type HistoryCommands } from '../src/broker/redis/history-scripts.js';
import { RedisHistory, type BatchMessage } from '../src/broker/redis/redis-history.js';
import { RedisServer } from './support/redis-server.js';
import { eventually } from './support/ws-client.js';

/**
 * The history scripts against a real redis-server (CONTRACT section 11, Redis mode): one atomic
 * step per message (offset, history, PUBLISH), reads of positions and missed messages by any
 * client, trimming to size, expiry after ttlMs, and a new epoch when the history is gone.
 */

const PREFIX = 'wse:';
const TOPIC = 'chat:lobby';

interface Stamped {
  tp: string;
  e: string;
  o: number;
  n?: number;
}

describe('history scripts on a real redis-server', () => {
  let server: RedisServer;
  const connections: Redis[] = [];

  async function connect(): Promise<HistoryCommands> {
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    redis.on('error', () => undefined);
    connections.push(redis);
    defineHistoryCommands(redis);
    await redis.ping();
    return redis;
  }

  function history(redis: HistoryCommands, options: { size?: number; ttlMs?: number; maxReplay?: number } = {}) {
    return new RedisHistory(
      {
        prefix: PREFIX,
        size: options.size ?? 128,
        ttlMs: options.ttlMs ?? 60_000,
        maxReplay: options.maxReplay ?? 500,
      },
      () => redis,
    );
  }

  /** A subscriber to `wse:*` keeping what arrives, parsed. */
  async function listen(): Promise<Stamped[]> {
    const subscriber = new Redis(server.url);
    subscriber.on('error', () => undefined);
    connections.push(subscriber);
    const received: Stamped[] = [];
    subscriber.on('pmessage', (_pattern, _channel, message: string) => received.push(JSON.parse(message) as Stamped));
    await subscriber.psubscribe(`${PREFIX}*`);
    return received;
  }

  /** Publishes a batch expecting `expected` receivers each; asserts every message reached them. */
  async function append(
    redis: HistoryCommands,
    store: RedisHistory,
    items: BatchMessage[],
    expected = 0,
  ): Promise<void> {
    expect(await redis.wsePublishHistoryBatch(...store.batchArguments(expected, items))).toEqual([]);
  }

  const message = (n: number, topic = TOPIC): BatchMessage => ({
    topic,
    channel: PREFIX + topic,
    payload: JSON.stringify({ n }),
  });

  beforeAll(async () => {
    server = await RedisServer.launch();
  });
  beforeEach(async () => {
    await server.command('FLUSHALL');
  });
  afterEach(async () => {
    await Promise.all(
      connections.splice(0).map((connection) => connection.quit().catch(() => connection.disconnect())),
    );
  });
  afterAll(async () => {
    await server.stop();
  });

  it('numbers, keeps and publishes each message in one step, stamped', async () => {
    const redis = await connect();
    const store = history(redis);
    const received = await listen();
    await append(redis, store, [message(1), message(2), message(1, 'chat:other')]);
    await eventually(() => received.length === 3, 2_000, 'three messages on the subscriber');
    expect(received.map((m) => [m.tp, m.o, m.n])).toEqual([
      [TOPIC, 1, 1],
      [TOPIC, 2, 2],
      ['chat:other', 1, 1],
    ]);
    expect(received[0].e).toBe(received[1].e);
    expect(await store.position(TOPIC)).toEqual({ epoch: received[0].e, offset: 2 });
  });

  it('stamps exactly: the stamp first, the payload bytes after, an empty object closed', async () => {
    const redis = await connect();
    const store = history(redis);
    const subscriber = new Redis(server.url);
    connections.push(subscriber);
    const texts: string[] = [];
    subscriber.on('message', (_channel, text: string) => texts.push(text));
    await subscriber.subscribe(PREFIX + TOPIC);
    await append(redis, store, [
      { topic: TOPIC, channel: PREFIX + TOPIC, payload: '{"t":"m","p":{"x":"ü"}}' },
      { topic: TOPIC, channel: PREFIX + TOPIC, payload: Buffer.from('{}') },
      { topic: TOPIC, channel: PREFIX + TOPIC, payload: Buffer.from('{ "n":[1]}') },
      { topic: TOPIC, channel: PREFIX + TOPIC, payload: '{ \n}' },
      { topic: TOPIC, channel: PREFIX + TOPIC, payload: Buffer.from('{\t }') },
    ]);
    await eventually(() => texts.length === 5, 2_000, 'five messages');
    const epoch = (JSON.parse(texts[0]) as Stamped).e;
    expect(texts).toEqual([
      `{"tp":"${TOPIC}","e":"${epoch}","o":1,"t":"m","p":{"x":"ü"}}`,
      `{"tp":"${TOPIC}","e":"${epoch}","o":2}`,
      `{"tp":"${TOPIC}","e":"${epoch}","o":3, "n":[1]}`,
      `{"tp":"${TOPIC}","e":"${epoch}","o":4}`,
      `{"tp":"${TOPIC}","e":"${epoch}","o":5}`,
    ]);
  });

  it('lets another client read the missed messages, as they were published', async () => {
    const writer = await connect();
    const reader = await connect();
    const received = await listen();
    await append(
      writer,
      history(writer),
      [1, 2, 3, 4, 5].map((n) => message(n)),
    );
    await eventually(() => received.length === 5, 2_000, 'five messages');
    const read = await history(reader).read(TOPIC, received[0].e, 2);
    expect(read.recovered).toBe(true);
    if (!read.recovered) return;
    expect(read.position).toEqual({ epoch: received[0].e, offset: 5 });
    expect(read.entries.map((entry) => JSON.parse(entry.toString()) as Stamped)).toEqual(received.slice(2));
    expect(await history(reader).read(TOPIC, received[0].e, 5)).toEqual({
      recovered: true,
      position: { epoch: received[0].e, offset: 5 },
      entries: [],
    });
  });

  it('never gives two messages one offset, whichever client publishes', async () => {
    const [a, b] = await Promise.all([connect(), connect()]);
    const received = await listen();
    const batches: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      const client = i % 2 === 0 ? a : b;
      batches.push(
        append(
          client,
          history(client),
          [1, 2, 3, 4, 5].map((n) => message(i * 5 + n)),
        ),
      );
    }
    await Promise.all(batches);
    await eventually(() => received.length === 100, 5_000, '100 messages');
    expect(received.map((m) => m.o)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(new Set(received.map((m) => m.e)).size).toBe(1);
  });

  it('keeps the last size messages: reaching before them is not recovered', async () => {
    const redis = await connect();
    const store = history(redis, { size: 4 });
    await append(
      redis,
      store,
      Array.from({ length: 10 }, (_, i) => message(i + 1)),
    );
    const { epoch } = await store.position(TOPIC);
    expect(await store.read(TOPIC, epoch, 5)).toEqual({
      recovered: false,
      position: { epoch, offset: 10 },
      reason: 'trimmed',
    });
    const read = await store.read(TOPIC, epoch, 6);
    expect(read.recovered && read.entries.map((e) => (JSON.parse(e.toString()) as Stamped).o)).toEqual([7, 8, 9, 10]);
    expect(await redis.xlen(`${PREFIX}{${TOPIC}}:h`)).toBe(4);
  });

  it("sends a topic's keys once per command, however its messages interleave, and numbers each topic apart", async () => {
    const redis = await connect();
    const store = history(redis, { size: 3 });
    const received = await listen();
    const topics = ['a', 'b', 'c'];
    const items = Array.from({ length: 12 }, (_, i) => message(i + 1, topics[i % 3]));
    const args = store.batchArguments(0, items);
    expect(args[0]).toBe(6);
    expect(args.slice(1, 7)).toEqual(topics.flatMap((t) => [`${PREFIX}{${t}}:h`, `${PREFIX}{${t}}:m`]));
    expect(await redis.wsePublishHistoryBatch(...args)).toEqual([]);
    await eventually(() => received.length === 12, 2_000, 'twelve messages');
    expect(received.map((m) => [m.tp, m.o, m.n])).toEqual(
      items.map((item, i) => [item.topic, Math.floor(i / 3) + 1, i + 1]),
    );
    for (const topic of topics) {
      expect(await redis.xlen(`${PREFIX}{${topic}}:h`)).toBe(3);
      expect(await store.position(topic)).toMatchObject({ offset: 4 });
    }
  });

  it('reads a history written in the earlier entry format (id <offset>-0, the time in a field t)', async () => {
    const redis = await connect();
    const store = history(redis, { ttlMs: 60_000 });
    const stream = `${PREFIX}{${TOPIC}}:h`;
    const now = Date.now();
    for (let o = 1; o <= 3; o++) {
      await redis.xadd(stream, `${o}-0`, 't', String(now), 'd', `{"tp":"${TOPIC}","e":"old","o":${o}}`);
    }
    await redis.hset(`${PREFIX}{${TOPIC}}:m`, 'e', 'old', 'o', 3);
    const read = await store.read(TOPIC, 'old', 1);
    expect(read.recovered && read.entries.map((e) => (JSON.parse(e.toString()) as Stamped).o)).toEqual([2, 3]);
    // Appending goes on from there, in the current format, and both read together.
    await append(redis, store, [message(4)]);
    const after = await store.read(TOPIC, 'old', 2);
    expect(after.recovered && after.entries.map((e) => (JSON.parse(e.toString()) as Stamped).o)).toEqual([3, 4]);
  });

  it('refuses more than maxReplay, another epoch and an offset ahead', async () => {
    const redis = await connect();
    const store = history(redis, { maxReplay: 3 });
    await append(
      redis,
      store,
      Array.from({ length: 6 }, (_, i) => message(i + 1)),
    );
    const { epoch } = await store.position(TOPIC);
    expect(await store.read(TOPIC, epoch, 2)).toMatchObject({ recovered: false, reason: 'over_max_replay' });
    expect(await store.read(TOPIC, epoch, 3)).toMatchObject({ recovered: true });
    expect(await store.read(TOPIC, 'other', 3)).toMatchObject({ recovered: false, reason: 'epoch_changed' });
    expect(await store.read(TOPIC, epoch, 7)).toMatchObject({ recovered: false, reason: 'ahead' });
  });

  it('expires messages after ttlMs, and the whole history with them', async () => {
    const redis = await connect();
    const store = history(redis, { ttlMs: 300 });
    await append(redis, store, [message(1), message(2)]);
    const { epoch } = await store.position(TOPIC);
    expect(await store.read(TOPIC, epoch, 0)).toMatchObject({ recovered: true });
    // Expiry is the passing of time itself: wait past it.
    await new Promise((resolve) => setTimeout(resolve, 450));
    const after = await store.read(TOPIC, epoch, 0);
    expect(after).toMatchObject({ recovered: false, reason: 'epoch_changed' });
    expect(after.position.epoch).not.toBe(epoch);
    expect(after.position.offset).toBe(0);
  });

  it('expires the old messages of a topic still in use, one by one', async () => {
    const redis = await connect();
    const store = history(redis, { ttlMs: 1000 });
    await append(redis, store, [message(1)]);
    const firstAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 600));
    await append(redis, store, [message(2)]);
    const { epoch } = await store.position(TOPIC);
    // Past the first message's time, well before the second's.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstAt + 1100 - Date.now())));
    expect(await store.read(TOPIC, epoch, 0)).toMatchObject({ recovered: false, reason: 'trimmed' });
    const read = await store.read(TOPIC, epoch, 1);
    expect(read.recovered && read.entries.map((e) => (JSON.parse(e.toString()) as Stamped).o)).toEqual([2]);
  });

  it('starts a new epoch when Redis comes back empty', async () => {
    const redis = await connect();
    const store = history(redis);
    await append(redis, store, [message(1), message(2)]);
    const before = await store.position(TOPIC);
    await server.stop();
    await server.start();
    await eventually(() => redis.status === 'ready', 5_000, 'the client to reconnect');
    await append(redis, store, [message(3)]);
    const after = await store.position(TOPIC);
    expect(after.epoch).not.toBe(before.epoch);
    expect(after.offset).toBe(1);
    expect(await store.read(TOPIC, before.epoch, 2)).toMatchObject({ recovered: false, reason: 'epoch_changed' });
  });

  it('answers a refused message in the reply, leaves no trace of it, and publishes the others', async () => {
    const redis = await connect();
    const store = history(redis);
    await redis.set(`${PREFIX}{bad}:m`, 'not a hash');
    const reply = await redis.wsePublishHistoryBatch(
      ...store.batchArguments(0, [message(1), message(1, 'bad'), message(2)]),
    );
    expect(reply).toHaveLength(2);
    expect(reply[0]).toBe(2);
    expect(String(reply[1])).toMatch(/WRONGTYPE/);
    expect(await store.position(TOPIC)).toMatchObject({ offset: 2 });
  });

  it('undoes a history message whose PUBLISH is refused: its offset is given back', async () => {
    const admin = await connect();
    await admin.call('ACL', 'SETUSER', 'limited', 'on', '>pw', '~*', '&wse:chat:*', '+@all');
    const limited = new Redis(server.url, { username: 'limited', password: 'pw', maxRetriesPerRequest: 1 });
    limited.on('error', () => undefined);
    connections.push(limited);
    defineHistoryCommands(limited);
    const store = history(limited);
    const received = await listen();
    const reply = await limited.wsePublishHistoryBatch(
      ...store.batchArguments(0, [message(1), message(1, 'secret:room'), message(2)]),
    );
    expect(reply[0]).toBe(2);
    expect(String(reply[1])).toMatch(/can't publish to the channel/);
    expect(await store.position('secret:room')).toMatchObject({ offset: 0 });
    expect(await admin.xlen(`${PREFIX}{secret:room}:h`)).toBe(0);
    await eventually(() => received.length === 2, 2_000, 'the two allowed messages');
    expect(received.map((m) => [m.tp, m.o])).toEqual([
      [TOPIC, 1],
      [TOPIC, 2],
    ]);
    await admin.call('ACL', 'DELUSER', 'limited');
  });

  it('carries plain messages in the same command, in order, unstamped, and counts short deliveries', async () => {
    const redis = await connect();
    const store = history(redis);
    const subscriber = new Redis(server.url);
    connections.push(subscriber);
    const texts: string[] = [];
    subscriber.on('pmessage', (_pattern, _channel, text: string) => texts.push(text));
    await subscriber.psubscribe(`${PREFIX}*`);
    const reply = await redis.wsePublishHistoryBatch(
      ...store.batchArguments(2, [
        { channel: `${PREFIX}news`, payload: '{"plain":1}' },
        message(1),
        { channel: `${PREFIX}news`, payload: 'text' },
      ]),
    );
    // One subscriber where two were expected: every message reports its short delivery.
    expect(reply).toEqual([-1, 1, -2, 1, -3, 1]);
    await eventually(() => texts.length === 3, 2_000, 'three messages');
    expect(texts[0]).toBe('{"plain":1}');
    expect(JSON.parse(texts[1])).toMatchObject({ tp: TOPIC, o: 1, n: 1 });
    expect(texts[2]).toBe('text');
  });
});
