import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { WsePublisher } from '../src/index.js';
import { httpCall, type HttpAnswer } from './support/http.js';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { eventually, TestClient, type Envelope } from './support/ws-client.js';

/**
 * CONTRACT sections 5 and 6 through a real engine app, single instance: payloads exactly as
 * published, once-only delivery across overlapping subscriptions, glob meaning, per-connection
 * order, broadcast, sendEvent, and a registry left empty by connection churn.
 *
 * The app runs in anonymous mode, with no hooks of its own, so that no connection holds a
 * subscription it did not ask for.
 */

const API_KEY = 'fanout-api-key';

function connectionIdOf(ready: Envelope): string {
  return (ready.p.details as { connection_id: string }).connection_id;
}

function api(server: EngineApp, method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpAnswer> {
  return httpCall(`${server.httpUrl}${path}`, method, body, API_KEY);
}

/** Runs `task(0..count-1)` with at most `concurrency` in flight; rejects on the first failure. */
async function runBounded(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

describe('fan-out through an engine app (single instance, anonymous, server API on)', () => {
  let server: EngineApp;
  let publisher: WsePublisher;
  const opened: TestClient[] = [];

  /** A ready client subscribed to `topics` (asserting they all succeeded). */
  async function subscriber(topics: string[] = []): Promise<{ client: TestClient; id: string }> {
    const { client, ready } = await TestClient.ready(server.wsUrl);
    opened.push(client);
    if (topics.length > 0) {
      const update = await client.subscribe(topics);
      expect(update.p).toMatchObject({ action: 'subscribe', success_topics: topics, failed_topics: [] });
    }
    return { client, id: connectionIdOf(ready) };
  }

  beforeAll(async () => {
    server = await startEngineApp({ apiKey: API_KEY });
    publisher = server.app.get(WsePublisher);
  });
  afterEach(async () => {
    for (const client of opened.splice(0)) await client.close();
    await eventually(() => server.registry.connectionCount === 0, 5_000, 'every connection to be unregistered');
    expect(server.registry.topicCount).toBe(0);
    expect(server.registry.patternCount).toBe(0);
  });
  afterAll(async () => {
    await server.close();
  });

  describe('payloads arrive exactly as published', () => {
    const cases: Array<[string, unknown, string]> = [
      ['a plain string as the same text', 'hello', 'hello'],
      ['a string with quotes and non-ASCII as the same text', 'say "hé" — ✓ 漢字', 'say "hé" — ✓ 漢字'],
      ['a string holding JSON as-is, not re-encoded', '{"t":"raw","p":{"n":1}}', '{"t":"raw","p":{"n":1}}'],
      [
        'an object as its JSON',
        { t: 'order_filled', p: { id: 7, tags: ['a', 'b'], ok: true, none: null } },
        '{"t":"order_filled","p":{"id":7,"tags":["a","b"],"ok":true,"none":null}}',
      ],
      ['an array as its JSON', [1, 'two', { three: 3 }], '[1,"two",{"three":3}]'],
      ['a number as its JSON', 42, '42'],
      ['false as its JSON', false, 'false'],
      ['null as its JSON', null, 'null'],
    ];

    it.each(cases)('through POST /api/publish: %s', async (_name, data, text) => {
      const { client } = await subscriber(['payload:test']);
      const binaryFlags: boolean[] = [];
      client.socket.on('message', (_data, isBinary) => binaryFlags.push(isBinary));
      expect(await api(server, 'POST', '/api/publish', { topic: 'payload:test', data })).toEqual({
        status: 200,
        body: { delivered: 1 },
      });
      const frame = await client.next();
      expect(frame.text).toBe(text);
      expect(binaryFlags).toEqual([false]);
      await client.expectNothing(100);
    });

    it.each(cases)('through WsePublisher.publish: %s', async (_name, data, text) => {
      const { client } = await subscriber(['payload:test']);
      publisher.publish('payload:test', data);
      expect((await client.next()).text).toBe(text);
      await client.expectNothing(100);
    });
  });

  describe('once-only delivery', () => {
    it('delivers once to a connection matching an exact topic, a glob and "*"', async () => {
      const { client } = await subscriber(['user:1:events', 'user:*:events', '*']);
      expect(publisher.publishLocal('user:1:events', 'once')).toBe(1);
      const frames = await client.take(1);
      expect(frames.map((f) => f.text)).toEqual(['once']);
      await client.expectNothing(300);
    });

    it('delivers once to each of several connections with overlapping subscriptions', async () => {
      const a = await subscriber(['user:1:events', 'user:*:events', '*']);
      const b = await subscriber(['user:*:events', 'user:?:events']);
      const c = await subscriber(['user:1:events']);
      const d = await subscriber(['user:2:events']);
      expect(publisher.publishLocal('user:1:events', 'for 1')).toBe(3);
      for (const { client } of [a, b, c]) expect((await client.take(1)).map((f) => f.text)).toEqual(['for 1']);
      await Promise.all([a, b, c, d].map(({ client }) => client.expectNothing(200)));
    });

    it('reports the same deduplicated count through GET /api/topics/:topic/subscribers', async () => {
      await subscriber(['user:1:events', 'user:*:events', '*']);
      await subscriber(['user:*:events']);
      await subscriber(['other']);
      expect(await api(server, 'GET', `/api/topics/${encodeURIComponent('user:1:events')}/subscribers`)).toEqual({
        status: 200,
        body: { topic: 'user:1:events', count: 2 },
      });
    });
  });

  describe('globs mean what they mean to Redis PSUBSCRIBE', () => {
    // [pattern, topics it matches, topics it does not match]
    const table: Array<[string, string[], string[]]> = [
      ['*', ['a', 'b:c', 'x/y.z', 'user:2:events', ' '], []],
      [
        'user:*:events',
        ['user:123:events', 'user::events', 'user:a:b:events', 'user:x/y.z:events'],
        ['user:1:event', 'user:1:events:x', 'xuser:1:events'],
      ],
      ['a*z', ['az', 'a:b/c.z', 'a***z'], ['a', 'za', 'a:z:']],
      ['order:?', ['order:1', 'order:x', 'order::'], ['order:', 'order:12']],
      ['sku:[a-c]', ['sku:a', 'sku:b', 'sku:c'], ['sku:d', 'sku:', 'sku:ab', 'sku:A']],
      ['sku:[xz]', ['sku:x', 'sku:z'], ['sku:y']],
      ['lit:\\*', ['lit:*'], ['lit:', 'lit:x', 'lit:\\x']],
      ['q\\?', ['q?'], ['qa']],
      ['brace:{a,b}', ['brace:{a,b}'], ['brace:a', 'brace:b']],
      ['!neg', ['!neg'], ['neg', 'pos']],
    ];

    it.each(table)('"%s" matches %j and not %j', async (pattern, matching, notMatching) => {
      const { client } = await subscriber([pattern]);
      for (const topic of notMatching)
        expect({ topic, delivered: publisher.publishLocal(topic, topic) }).toEqual({ topic, delivered: 0 });
      for (const topic of matching)
        expect({ topic, delivered: publisher.publishLocal(topic, topic) }).toEqual({ topic, delivered: 1 });
      const frames = await client.take(matching.length);
      expect(frames.map((f) => f.text)).toEqual(matching);
      await client.expectNothing(100);
    });

    it('"*" receives every topic, in publish order', async () => {
      const everything = await subscriber(['*']);
      const nothing = await subscriber(['unrelated']);
      const topics = ['news', 'user:1:events', 'chat:lobby', 'a/b/c', 'x.y.z', '*', 'user:*:events'];
      for (const topic of topics) expect(publisher.publishLocal(topic, `on ${topic}`)).toBe(1);
      expect((await everything.client.take(topics.length)).map((f) => f.text)).toEqual(topics.map((t) => `on ${t}`));
      await Promise.all([everything.client.expectNothing(100), nothing.client.expectNothing(100)]);
    });
  });

  describe('disconnecting', () => {
    it('removes every subscription of the connection', async () => {
      const { client } = await subscriber(['exact:1', 'exact:2', 'glob:*', 'glob:?', '*']);
      const other = await subscriber(['exact:1']);
      expect(server.registry.topicCount).toBe(5);
      expect(server.registry.patternCount).toBe(3);

      await client.close();
      await eventually(() => server.registry.connectionCount === 1, 2_000, 'the closed connection to be unregistered');
      expect(server.registry.topicCount).toBe(1);
      expect(server.registry.patternCount).toBe(0);
      expect(publisher.publishLocal('exact:2', 'gone')).toBe(0);
      expect(publisher.publishLocal('glob:x', 'gone')).toBe(0);
      expect(publisher.publishLocal('exact:1', 'still here')).toBe(1);
      expect((await other.client.next()).text).toBe('still here');

      await other.client.close();
      await eventually(() => server.registry.connectionCount === 0, 2_000, 'the last connection to be unregistered');
      expect(server.registry.topicCount).toBe(0);
      expect(server.registry.patternCount).toBe(0);
    });
  });

  describe('ordering', () => {
    it('preserves the order of 10,000 messages published in a tight loop to one connection', async () => {
      const COUNT = 10_000;
      const { client } = await subscriber(['seq']);
      let delivered = 0;
      for (let i = 0; i < COUNT; i++) delivered += publisher.publishLocal('seq', i);
      expect(delivered).toBe(COUNT);

      const frames = await client.take(COUNT, 20_000);
      const received = frames.map((f) => f.text);
      const expected = Array.from({ length: COUNT }, (_, i) => String(i));
      // Compare as one array (order, gaps and repeats at once), but report the first difference readably.
      const firstDifference = received.findIndex((text, i) => text !== expected[i]);
      expect({ firstDifference, length: received.length }).toEqual({ firstDifference: -1, length: COUNT });
      expect(received).toEqual(expected);
      await client.expectNothing(200);
    }, 60_000);

    it('delivers exact bytes in order whether a write copies small frames together or passes large ones on', async () => {
      // One turn with 20 small frames (one copied Buffer per connection), then a turn where 20 KB
      // frames push the total over 16 KB (each frame written as is, shared by both connections).
      const small = Array.from({ length: 20 }, (_, i) => `s${i}`);
      const large = ['a', 'b', 'c'].map((letter) => letter.repeat(20_000));
      const clients = [(await subscriber(['bytes'])).client, (await subscriber(['bytes'])).client];
      for (const text of small) publisher.publishLocal('bytes', text);
      await new Promise((resolve) => setImmediate(resolve));
      for (const text of [...small.slice(0, 5), ...large, ...small.slice(5, 10)]) publisher.publishLocal('bytes', text);

      const expected = [...small, ...small.slice(0, 5), ...large, ...small.slice(5, 10)];
      for (const client of clients) {
        const frames = await client.take(expected.length, 5_000);
        expect(frames.map((f) => f.text)).toEqual(expected);
      }
    });
  });

  describe('broadcast', () => {
    it('reaches every connection once, subscribed or not (WsePublisher.broadcast)', async () => {
      const clients = [await subscriber(['*']), await subscriber(['news']), await subscriber()];
      expect(publisher.broadcast({ t: 'announcement', p: { text: 'maintenance' } })).toBe(3);
      for (const { client } of clients) {
        expect((await client.take(1)).map((f) => f.text)).toEqual(['{"t":"announcement","p":{"text":"maintenance"}}']);
      }
      await Promise.all(clients.map(({ client }) => client.expectNothing(200)));
    });

    it('reaches every connection once through POST /api/broadcast', async () => {
      const clients = [await subscriber(['*']), await subscriber()];
      expect(await api(server, 'POST', '/api/broadcast', { data: 'to everyone' })).toEqual({
        status: 200,
        body: { delivered: 2 },
      });
      for (const { client } of clients) expect((await client.take(1)).map((f) => f.text)).toEqual(['to everyone']);
      await Promise.all(clients.map(({ client }) => client.expectNothing(200)));
    });
  });

  describe('sendEvent', () => {
    it('sends to the one connection with that id (WsePublisher.sendEvent)', async () => {
      const target = await subscriber(['*']);
      const bystander = await subscriber(['*']);
      expect(publisher.sendEvent(target.id, { t: 'direct', p: { n: 1 } })).toBe(true);
      expect((await target.client.next()).text).toBe('{"t":"direct","p":{"n":1}}');
      await Promise.all([target.client.expectNothing(200), bystander.client.expectNothing(200)]);
    });

    it('returns false for an unknown connection id and sends nothing', async () => {
      const bystander = await subscriber(['*']);
      expect(publisher.sendEvent('no-such-connection', 'lost')).toBe(false);
      await bystander.client.expectNothing(200);
    });

    it('sends through POST /api/connections/:id/send, and answers 404 for an unknown id', async () => {
      const target = await subscriber();
      const bystander = await subscriber();
      expect(await api(server, 'POST', `/api/connections/${target.id}/send`, { data: 'just you' })).toEqual({
        status: 200,
        body: { sent: true },
      });
      expect((await target.client.next()).text).toBe('just you');
      expect((await api(server, 'POST', '/api/connections/no-such-connection/send', { data: 'lost' })).status).toBe(
        404,
      );
      await Promise.all([target.client.expectNothing(200), bystander.client.expectNothing(200)]);
    });
  });

  describe('connection churn', () => {
    it('leaves the registry empty after 1,000 cycles of connect, subscribe, disconnect (50 at a time)', async () => {
      const CYCLES = 1_000;
      let completed = 0;
      await runBounded(CYCLES, 50, async (i) => {
        const { client } = await TestClient.ready(server.wsUrl);
        try {
          const topics = [`churn:${i}`, `churn:${i % 10}:*`];
          const update = await client.subscribe(topics, 'subscribe');
          expect(update.p).toMatchObject({ action: 'subscribe', success_topics: topics, failed_topics: [] });
        } finally {
          await client.close();
        }
        completed++;
      });
      expect(completed).toBe(CYCLES);
      await eventually(
        () => server.registry.connectionCount === 0,
        10_000,
        'every churned connection to be unregistered',
      );
      expect(server.registry.connectionCount).toBe(0);
      expect(server.registry.topicCount).toBe(0);
      expect(server.registry.patternCount).toBe(0);
    }, 120_000);
  });
});
