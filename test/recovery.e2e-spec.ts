import { afterEach, describe, expect, it } from '@jest/globals';
import type { WseModuleOptions } from '../src/index.js';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { parseExposition } from './support/prometheus.js';
import { eventually, TestClient, type Envelope } from './support/ws-client.js';

/**
 * History and recovery without Redis (CONTRACT section 11, in-memory mode), through a real
 * engine app and real ws clients: the stamp, positions in the subscribe answer, recovery with
 * nothing missing and nothing twice at the seam (also while publishes continue), the cases
 * answered `recovered: false` (trimmed, expired, over maxReplay, another epoch, a restart),
 * malformed recovery input answered without closing the connection, and the metrics.
 */

interface Stamped {
  tp: string;
  e: string;
  o: number;
  [field: string]: unknown;
}

interface RecoveryEntry {
  epoch?: string;
  offset?: number;
  recovered: boolean;
  count: number;
  reason?: string;
}

const TOPIC = 'chat:lobby';

describe('history and recovery, single instance (in memory)', () => {
  const servers: EngineApp[] = [];
  const clients: TestClient[] = [];

  async function start(
    recovery: WseModuleOptions['recovery'] = {},
    options: WseModuleOptions = {},
  ): Promise<EngineApp> {
    const server = await startEngineApp({ ...options, recovery: { topics: ['chat:*', 'orders'], ...recovery } });
    servers.push(server);
    return server;
  }

  async function connect(server: EngineApp): Promise<{ client: TestClient; ready: Envelope }> {
    const opened = await TestClient.ready(server.wsUrl);
    clients.push(opened.client);
    return opened;
  }

  /** Sends a subscribe (with `extra` fields in `p`) and returns the answer. */
  async function subscribe(
    client: TestClient,
    topics: unknown,
    extra: Record<string, unknown> = {},
  ): Promise<Envelope> {
    client.send({ t: 'subscription', p: { action: 'subscribe', topics, ...extra } });
    return client.nextOfType('subscription_update');
  }

  function entryOf(answer: Envelope, topic: string): RecoveryEntry {
    return (answer.p.recovery as Record<string, RecoveryEntry>)[topic];
  }

  /** The next `count` frames, parsed as stamped messages. */
  async function stamped(client: TestClient, count: number, timeoutMs = 2_000): Promise<Stamped[]> {
    return (await client.take(count, timeoutMs)).map((frame) => frame.json as Stamped);
  }

  /** A connection subscribed to TOPIC that received `count` messages published now; returns them. */
  async function seenBy(server: EngineApp, count: number): Promise<{ client: TestClient; messages: Stamped[] }> {
    const { client } = await connect(server);
    await subscribe(client, [TOPIC]);
    for (let n = 1; n <= count; n++) server.publisher.publish(TOPIC, { n });
    return { client, messages: await stamped(client, count) };
  }

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
    for (const server of servers.splice(0)) {
      await eventually(() => server.registry.connectionCount === 0, 5_000, 'every connection to be unregistered');
      await server.close();
    }
  });

  describe('advertising', () => {
    it('says features.recovery: true in server_ready when history topics are configured', async () => {
      const { ready } = await connect(await start());
      expect((ready.p.details as { features: Record<string, boolean> }).features.recovery).toBe(true);
    });

    it('says features.recovery: false without history topics', async () => {
      const server = await startEngineApp({});
      servers.push(server);
      const { ready } = await connect(server);
      expect((ready.p.details as { features: Record<string, boolean> }).features.recovery).toBe(false);
    });
  });

  describe('the stamp', () => {
    it('puts tp, e and o first, then the payload fields exactly as published', async () => {
      const server = await start();
      const { client } = await connect(server);
      await subscribe(client, [TOPIC]);
      server.publisher.publish(TOPIC, { t: 'msg', p: { text: 'héllo', n: [1, 2] } });
      server.publisher.publish(TOPIC, '{"raw":true}');
      server.publisher.publish(TOPIC, {});
      const [first, second, third] = await client.take(3);
      const epoch = (first.json as Stamped).e;
      expect(typeof epoch).toBe('string');
      expect(first.text).toBe(`{"tp":"${TOPIC}","e":"${epoch}","o":1,"t":"msg","p":{"text":"héllo","n":[1,2]}}`);
      expect(second.text).toBe(`{"tp":"${TOPIC}","e":"${epoch}","o":2,"raw":true}`);
      expect(third.text).toBe(`{"tp":"${TOPIC}","e":"${epoch}","o":3}`);
    });

    it('leaves non-object payloads unstamped and without an offset', async () => {
      const server = await start();
      const { client } = await connect(server);
      await subscribe(client, [TOPIC]);
      server.publisher.publish(TOPIC, 'plain text');
      server.publisher.publish(TOPIC, [1, 2]);
      server.publisher.publish(TOPIC, 42);
      server.publisher.publish(TOPIC, { n: 1 });
      const frames = await client.take(4);
      expect(frames.slice(0, 3).map((f) => f.text)).toEqual(['plain text', '[1,2]', '42']);
      expect(frames[3].json).toMatchObject({ tp: TOPIC, o: 1, n: 1 });
    });

    it('leaves plain topics byte for byte as published', async () => {
      const server = await start();
      const { client } = await connect(server);
      const answer = await subscribe(client, ['news']);
      expect(answer.p.recovery).toBeUndefined();
      server.publisher.publish('news', { t: 'n', p: { id: 1 } });
      expect((await client.next()).text).toBe('{"t":"n","p":{"id":1}}');
    });

    it('gives exact and glob subscribers the same stamped bytes, once each', async () => {
      const server = await start();
      const exact = await connect(server);
      const glob = await connect(server);
      const both = await connect(server);
      await subscribe(exact.client, [TOPIC]);
      await subscribe(glob.client, ['chat:*']);
      await subscribe(both.client, [TOPIC, 'chat:*', '*']);
      server.publisher.publish(TOPIC, { n: 1 });
      const texts = await Promise.all([exact, glob, both].map(async ({ client }) => (await client.next()).text));
      expect(new Set(texts).size).toBe(1);
      expect(JSON.parse(texts[0])).toMatchObject({ tp: TOPIC, o: 1, n: 1 });
      await both.client.expectNothing(150);
    });

    it('stamps and records publishLocal too', async () => {
      const server = await start();
      const { client } = await connect(server);
      await subscribe(client, ['orders']);
      expect(server.publisher.publishLocal('orders', { id: 1 })).toBe(1);
      server.publisher.publish('orders', { id: 2 });
      const messages = await stamped(client, 2);
      expect(messages.map((m) => [m.o, m.id])).toEqual([
        [1, 1],
        [2, 2],
      ]);
      const { client: late } = await connect(server);
      const answer = await subscribe(late, ['orders'], {
        recover: true,
        recovery: { orders: { epoch: messages[0].e, offset: 0 } },
      });
      expect(entryOf(answer, 'orders')).toMatchObject({ recovered: true, count: 2 });
      expect((await stamped(late, 2)).map((m) => m.id)).toEqual([1, 2]);
    });
  });

  describe('positions', () => {
    it('answers a subscribe to a history topic with its epoch and last offset', async () => {
      const server = await start();
      const { client } = await connect(server);
      const before = await subscribe(client, [TOPIC, 'news']);
      expect(before.p).toMatchObject({ success_topics: [TOPIC, 'news'], failed_topics: [] });
      const first = entryOf(before, TOPIC);
      expect(first).toEqual({ epoch: expect.any(String), offset: 0, recovered: false, count: 0 });
      expect(entryOf(before, 'news')).toBeUndefined();
      for (let n = 1; n <= 3; n++) server.publisher.publish(TOPIC, { n });
      await client.take(3);
      const { client: other } = await connect(server);
      expect(entryOf(await subscribe(other, [TOPIC]), TOPIC)).toEqual({
        epoch: first.epoch,
        offset: 3,
        recovered: false,
        count: 0,
      });
    });

    it('gives a glob subscription no position: it is not recoverable as a whole', async () => {
      const { client } = await connect(await start());
      const answer = await subscribe(client, ['chat:*']);
      expect(answer.p).toMatchObject({ success_topics: ['chat:*'] });
      expect(answer.p.recovery).toBeUndefined();
    });
  });

  describe('recovery', () => {
    it('replays exactly the missed messages, in order, before newer live ones', async () => {
      const server = await start();
      const { client, messages } = await seenBy(server, 3);
      const last = messages[2];
      await client.close();
      for (let n = 4; n <= 8; n++) server.publisher.publish(TOPIC, { n });

      const { client: back } = await connect(server);
      const answer = await subscribe(back, [TOPIC], {
        recover: true,
        recovery: { [TOPIC]: { epoch: last.e, offset: last.o } },
      });
      expect(answer.p).toMatchObject({
        action: 'subscribe',
        success_topics: [TOPIC],
        failed_topics: [],
        recovered: true,
      });
      expect(entryOf(answer, TOPIC)).toEqual({ epoch: last.e, offset: 8, recovered: true, count: 5 });
      const replayed = await stamped(back, 5);
      expect(replayed.map((m) => [m.o, m.n])).toEqual([
        [4, 4],
        [5, 5],
        [6, 6],
        [7, 7],
        [8, 8],
      ]);
      server.publisher.publish(TOPIC, { n: 9 });
      expect((await stamped(back, 1))[0]).toMatchObject({ o: 9, n: 9, e: last.e });
      await back.expectNothing(150);
    });

    it('takes the request in the form WSE clients send it (t: subscription_update)', async () => {
      const server = await start();
      const { client, messages } = await seenBy(server, 3);
      await client.close();
      server.publisher.publish(TOPIC, { n: 4 });
      const { client: back } = await connect(server);
      back.send({
        t: 'subscription_update',
        p: {
          action: 'subscribe',
          topics: [TOPIC],
          recover: true,
          recovery: { [TOPIC]: { epoch: messages[0].e, offset: 3 } },
        },
      });
      const answer = await back.nextOfType('subscription_update');
      expect(answer.p).toMatchObject({ success: true, recovered: true });
      expect(entryOf(answer, TOPIC)).toEqual({ epoch: messages[0].e, offset: 4, recovered: true, count: 1 });
      expect((await stamped(back, 1))[0]).toMatchObject({ o: 4, n: 4 });
    });

    it('replays messages stamped exactly as they were first delivered', async () => {
      const server = await start();
      const { client } = await connect(server);
      await subscribe(client, [TOPIC]);
      server.publisher.publish(TOPIC, { n: 1, text: 'ü' });
      const live = (await client.next()).text;
      const { client: other } = await connect(server);
      const epoch = (JSON.parse(live) as Stamped).e;
      await subscribe(other, [TOPIC], { recover: true, recovery: { [TOPIC]: { epoch, offset: 0 } } });
      expect((await other.next()).text).toBe(live);
    });

    it('answers recovered: true with count 0 when nothing was missed', async () => {
      const server = await start();
      const { messages } = await seenBy(server, 2);
      const { client } = await connect(server);
      const answer = await subscribe(client, [TOPIC], {
        recover: true,
        recovery: { [TOPIC]: { epoch: messages[1].e, offset: 2 } },
      });
      expect(entryOf(answer, TOPIC)).toEqual({ epoch: messages[1].e, offset: 2, recovered: true, count: 0 });
      await client.expectNothing(150);
    });

    it('ends exactly contiguous when publishes go on while a client recovers', async () => {
      const server = await start({ size: 1000, maxReplay: 1000 });
      const { client, messages } = await seenBy(server, 10);
      await client.close();
      for (let n = 11; n <= 30; n++) server.publisher.publish(TOPIC, { n });

      // 50 more publishes, one per turn of the event loop, racing the recovering subscribe.
      let n = 30;
      const publishing = new Promise<void>((resolve) => {
        const step = (): void => {
          server.publisher.publish(TOPIC, { n: ++n });
          if (n < 80) setImmediate(step);
          else resolve();
        };
        setImmediate(step);
      });
      const { client: back } = await connect(server);
      const answer = await subscribe(back, [TOPIC], {
        recover: true,
        recovery: { [TOPIC]: { epoch: messages[9].e, offset: 10 } },
      });
      await publishing;
      expect(entryOf(answer, TOPIC)).toMatchObject({ recovered: true });
      const received = await stamped(back, 70, 5_000);
      expect(received.map((m) => m.o)).toEqual(Array.from({ length: 70 }, (_, i) => 11 + i));
      expect(received.map((m) => m.n)).toEqual(Array.from({ length: 70 }, (_, i) => 11 + i));
      await back.expectNothing(150);
    });

    it('recovers on a connection already subscribed (after a resync), then keeps delivering live once', async () => {
      const server = await start();
      const { client, messages } = await seenBy(server, 4);
      const answer = await subscribe(client, [TOPIC], {
        recover: true,
        recovery: { [TOPIC]: { epoch: messages[1].e, offset: 2 } },
      });
      expect(entryOf(answer, TOPIC)).toMatchObject({ recovered: true, count: 2 });
      // Replayed again: duplicates of what it had, removable by (tp, e, o).
      expect((await stamped(client, 2)).map((m) => m.o)).toEqual([3, 4]);
      server.publisher.publish(TOPIC, { n: 5 });
      expect((await stamped(client, 1))[0].o).toBe(5);
      await client.expectNothing(150);
    });

    it('recovers several topics of one request, each in order', async () => {
      const server = await start();
      const { client } = await connect(server);
      await subscribe(client, ['chat:a', 'chat:b']);
      for (let n = 1; n <= 3; n++) {
        server.publisher.publish('chat:a', { n });
        server.publisher.publish('chat:b', { n });
      }
      const seen = await stamped(client, 6);
      await client.close();
      server.publisher.publish('chat:b', { n: 4 });
      const epochA = seen.find((m) => m.tp === 'chat:a')?.e;
      const epochB = seen.find((m) => m.tp === 'chat:b')?.e;
      const { client: back } = await connect(server);
      const answer = await subscribe(back, ['chat:a', 'chat:b'], {
        recover: true,
        recovery: { 'chat:a': { epoch: epochA, offset: 1 }, 'chat:b': { epoch: epochB, offset: 3 } },
      });
      expect(answer.p.recovered).toBe(true);
      expect(entryOf(answer, 'chat:a')).toMatchObject({ recovered: true, count: 2, offset: 3 });
      expect(entryOf(answer, 'chat:b')).toMatchObject({ recovered: true, count: 1, offset: 4 });
      expect((await stamped(back, 3)).map((m) => [m.tp, m.o])).toEqual([
        ['chat:a', 2],
        ['chat:a', 3],
        ['chat:b', 4],
      ]);
    });
  });

  describe('answered recovered: false with the current position, replaying nothing', () => {
    async function recoverFrom(
      server: EngineApp,
      epoch: unknown,
      offset: unknown,
    ): Promise<{ client: TestClient; answer: Envelope }> {
      const { client } = await connect(server);
      const answer = await subscribe(client, [TOPIC], { recover: true, recovery: { [TOPIC]: { epoch, offset } } });
      return { client, answer };
    }

    it('when the messages after the offset were trimmed past size', async () => {
      const server = await start({ size: 4 });
      const { messages } = await seenBy(server, 10);
      const { client, answer } = await recoverFrom(server, messages[0].e, 5);
      expect(answer.p.recovered).toBe(false);
      expect(entryOf(answer, TOPIC)).toEqual({
        epoch: messages[0].e,
        offset: 10,
        recovered: false,
        count: 0,
        reason: 'messages after this offset are no longer held (trimmed or expired)',
      });
      await client.expectNothing(150);
      // Still subscribed: live messages come.
      server.publisher.publish(TOPIC, { n: 11 });
      expect((await stamped(client, 1))[0].o).toBe(11);
    });

    it('when they expired past ttlMs', async () => {
      const server = await start({ ttlMs: 300 });
      const { messages } = await seenBy(server, 3);
      const expiresAt = Date.now() + 300;
      const { answer: fresh } = await recoverFrom(server, messages[0].e, 1);
      expect(entryOf(fresh, TOPIC)).toMatchObject({ recovered: true, count: 2 });
      // Expiry is the passing of time itself: wait it out, with a margin.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 100));
      const { client, answer } = await recoverFrom(server, messages[0].e, 1);
      expect(entryOf(answer, TOPIC)).toMatchObject({ epoch: messages[0].e, offset: 3, recovered: false, count: 0 });
      await client.expectNothing(150);
    });

    it('when more were missed than maxReplay', async () => {
      const server = await start({ maxReplay: 3 });
      const { messages } = await seenBy(server, 6);
      const { answer } = await recoverFrom(server, messages[0].e, 2);
      expect(entryOf(answer, TOPIC)).toEqual({
        epoch: messages[0].e,
        offset: 6,
        recovered: false,
        count: 0,
        reason: 'more than 3 messages were missed (maxReplay)',
      });
      const { answer: within } = await recoverFrom(server, messages[0].e, 3);
      expect(entryOf(within, TOPIC)).toMatchObject({ recovered: true, count: 3 });
    });

    it('when the epoch is not the topic’s', async () => {
      const server = await start();
      const { messages } = await seenBy(server, 2);
      const { answer } = await recoverFrom(server, 'not-the-epoch', 1);
      expect(entryOf(answer, TOPIC)).toEqual({
        epoch: messages[0].e,
        offset: 2,
        recovered: false,
        count: 0,
        reason: 'epoch changed: the history this position belongs to is gone',
      });
    });

    it('after a server restart, which starts a new epoch', async () => {
      const first = await start();
      const { messages } = await seenBy(first, 2);
      for (const client of clients.splice(0)) await client.close();
      await eventually(() => first.registry.connectionCount === 0, 5_000, 'the first server to be left');
      await first.close();
      servers.splice(servers.indexOf(first), 1);
      const second = await start();
      second.publisher.publish(TOPIC, { n: 1 });
      const { answer } = await recoverFrom(second, messages[1].e, 2);
      const entry = entryOf(answer, TOPIC);
      expect(entry).toMatchObject({ offset: 1, recovered: false, count: 0 });
      expect(entry.epoch).not.toBe(messages[1].e);
    });

    it('when the offset is past the last message', async () => {
      const server = await start();
      const { messages } = await seenBy(server, 2);
      const { answer } = await recoverFrom(server, messages[0].e, 99);
      expect(entryOf(answer, TOPIC)).toMatchObject({
        offset: 2,
        recovered: false,
        reason: 'offset is past the last message of this epoch',
      });
    });
  });

  describe('malformed recovery input: a clear answer, the topic subscribed, the connection open', () => {
    it.each([
      [
        'a negative offset',
        { [TOPIC]: { epoch: 'e', offset: -1 } },
        'recovery position: offset must be a whole number >= 0',
      ],
      [
        'a fractional offset',
        { [TOPIC]: { epoch: 'e', offset: 1.5 } },
        'recovery position: offset must be a whole number >= 0',
      ],
      [
        'an offset as a string',
        { [TOPIC]: { epoch: 'e', offset: '3' } },
        'recovery position: offset must be a whole number >= 0',
      ],
      ['a missing epoch', { [TOPIC]: { offset: 3 } }, 'recovery position: epoch must be a non-empty string'],
      [
        'a position that is not an object',
        { [TOPIC]: 'e:3' },
        'recovery position must be an object {"epoch","offset"}',
      ],
      [
        'recovery that is not an object',
        ['e', 3],
        'p.recovery must be an object of {"epoch","offset"} positions by topic',
      ],
    ])('%s', async (_what, recovery, reason) => {
      const server = await start();
      const { messages } = await seenBy(server, 2);
      const { client } = await connect(server);
      const answer = await subscribe(client, [TOPIC], { recover: true, recovery });
      expect(answer.p).toMatchObject({ success_topics: [TOPIC], failed_topics: [], recovered: false });
      expect(entryOf(answer, TOPIC)).toEqual({ epoch: messages[0].e, offset: 2, recovered: false, count: 0, reason });
      server.publisher.publish(TOPIC, { n: 3 });
      expect((await stamped(client, 1))[0].o).toBe(3);
      expect(client.isOpen).toBe(true);
    });

    it('recover that is not a boolean', async () => {
      const server = await start();
      const { client } = await connect(server);
      const answer = await subscribe(client, [TOPIC], {
        recover: 'yes',
        recovery: { [TOPIC]: { epoch: 'e', offset: 1 } },
      });
      expect(entryOf(answer, TOPIC)).toMatchObject({ recovered: false, reason: 'p.recover must be true or false' });
    });

    it('a position for a plain topic or a glob: subscribed, answered not recoverable', async () => {
      const server = await start();
      const { client } = await connect(server);
      const answer = await subscribe(client, ['news', 'chat:*'], {
        recover: true,
        recovery: { news: { epoch: 'e', offset: 1 }, 'chat:*': { epoch: 'e', offset: 1 } },
      });
      expect(answer.p).toMatchObject({ success_topics: ['news', 'chat:*'], failed_topics: [], recovered: false });
      expect(entryOf(answer, 'news')).toEqual({ recovered: false, count: 0, reason: 'not a history topic' });
      expect(entryOf(answer, 'chat:*')).toEqual({
        recovered: false,
        count: 0,
        reason: 'a pattern is not recoverable as a whole: recover the concrete topics it delivered',
      });
    });

    it('a position for a topic the request does not subscribe: in failed_topics with the reason', async () => {
      const server = await start();
      const { client } = await connect(server);
      const answer = await subscribe(client, [TOPIC], {
        recover: true,
        recovery: { 'chat:other': { epoch: 'e', offset: 1 } },
      });
      expect(answer.p).toMatchObject({
        success_topics: [TOPIC],
        failed_topics: ['chat:other'],
        errors: [{ topic: 'chat:other', reason: 'recovery position for a topic not in p.topics' }],
      });
    });

    it('more positions than topics a subscription may list: INVALID_MESSAGE, the connection stays open', async () => {
      const server = await start({}, { maxTopicsPerSubscription: 2 });
      const { client } = await connect(server);
      const recovery = Object.fromEntries(['a', 'b', 'c'].map((t) => [`chat:${t}`, { epoch: 'e', offset: 1 }]));
      client.send({ t: 'subscription', p: { action: 'subscribe', topics: [TOPIC], recover: true, recovery } });
      expect(await client.nextOfType('error')).toMatchObject({
        p: { code: 'INVALID_MESSAGE', message: 'subscription: at most 2 recovery positions per message' },
      });
      expect(entryOf(await subscribe(client, [TOPIC]), TOPIC)).toMatchObject({ offset: 0 });
    });

    it('positions sent to a server without history topics: subscribed, answered not recoverable', async () => {
      const server = await startEngineApp({});
      servers.push(server);
      const { client } = await connect(server);
      const answer = await subscribe(client, [TOPIC], {
        recover: true,
        recovery: { [TOPIC]: { epoch: 'e', offset: 1 } },
      });
      expect(answer.p).toMatchObject({ success_topics: [TOPIC], recovered: false });
      expect(entryOf(answer, TOPIC)).toEqual({ recovered: false, count: 0, reason: 'not a history topic' });
    });
  });

  describe('metrics', () => {
    it('count appends, recoveries by result, replayed messages and history memory', async () => {
      const server = await start({ size: 4 });
      const { messages } = await seenBy(server, 6);
      const { client } = await connect(server);
      await subscribe(client, [TOPIC], { recover: true, recovery: { [TOPIC]: { epoch: messages[0].e, offset: 4 } } });
      await client.take(2);
      const { client: late } = await connect(server);
      await subscribe(late, [TOPIC], { recover: true, recovery: { [TOPIC]: { epoch: messages[0].e, offset: 0 } } });
      const metrics = parseExposition(await server.metrics.metrics());
      expect(metrics.value('wse_history_appends_total')).toBe(6);
      expect(metrics.value('wse_recoveries_total', { result: 'recovered' })).toBe(1);
      expect(metrics.value('wse_recoveries_total', { result: 'not_recovered' })).toBe(1);
      expect(metrics.value('wse_recovery_replayed_messages_total')).toBe(2);
      expect(metrics.value('wse_history_topics')).toBe(1);
      expect(metrics.value('wse_history_memory_bytes')).toBeGreaterThan(4 * '{"n":1}'.length);
      expect(metrics.types.get('wse_history_memory_bytes')).toBe('gauge');
    });
  });
});
