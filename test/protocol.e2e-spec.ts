import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { WsePublisher } from '../src/index.js';
import { errorMessages, invalidMessages, topicRejections } from '../src/wse.messages.js';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { UserTopicOnConnect } from './support/user-topic.hooks.js';
import { eventually, TestClient, type Envelope } from './support/ws-client.js';

/**
 * CONTRACT sections 4 and 5: the client frames the server answers (hello, ping, subscription,
 * application events), malformed and oversized input, the heartbeat and the idle timeout. (The
 * example app's demo event and per-user topic: demo-events.e2e-spec.ts.)
 */

const API_KEY = 'protocol-api-key';
const MAX_MESSAGE_BYTES = 4096;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function connectionIdOf(ready: Envelope): string {
  return (ready.p.details as { connection_id: string }).connection_id;
}

function errorEnvelope(code: string, message: string): Envelope {
  return { c: 'WSE', t: 'error', p: { code, message }, v: 1 };
}

async function connectAs(server: EngineApp, sub: string): Promise<{ client: TestClient; ready: Envelope }> {
  return TestClient.ready(`${server.wsUrl}?token=${signToken({ sub })}`);
}

/** Sends a ping and asserts the exact PONG, proving the connection is open and answering. */
async function expectPingAnswered(
  client: TestClient,
  type = 'ping',
  clientTimestamp: unknown = 1_700_000_000_000,
): Promise<void> {
  const before = Date.now();
  client.send({ t: type, p: { client_timestamp: clientTimestamp } });
  const pong = await client.nextEnvelope();
  const after = Date.now();
  expect(pong).toEqual({
    c: 'WSE',
    t: 'PONG',
    p: { client_timestamp: clientTimestamp, timestamp: null, server_timestamp: expect.any(Number) },
    v: 1,
  });
  const serverTimestamp = pong.p.server_timestamp as number;
  expect(serverTimestamp).toBeGreaterThanOrEqual(before);
  expect(serverTimestamp).toBeLessThanOrEqual(after);
}

/**
 * The contract's fields of a `subscription_update`, exactly (arrays compared element by element
 * and in order). Extra fields in `p` are the project's to add, so they are not rejected here.
 */
function expectSubscriptionUpdate(
  update: Envelope,
  action: 'subscribe' | 'unsubscribe',
  successTopics: string[],
  failedTopics: string[],
): void {
  expect({ c: update.c, t: update.t, v: update.v }).toEqual({ c: 'WSE', t: 'subscription_update', v: 1 });
  expect({
    action: update.p.action,
    success_topics: update.p.success_topics,
    failed_topics: update.p.failed_topics,
  }).toEqual({ action, success_topics: successTopics, failed_topics: failedTopics });
}

describe('client frames (maxMessageBytes 4096, JWT, server API on)', () => {
  let server: EngineApp;
  let publisher: WsePublisher;
  const opened: TestClient[] = [];

  async function connect(sub = 'alice'): Promise<{ client: TestClient; ready: Envelope }> {
    const result = await connectAs(server, sub);
    opened.push(result.client);
    return result;
  }

  beforeAll(async () => {
    server = await startEngineApp(
      { auth: { jwtSecret: TEST_SECRET }, apiKey: API_KEY, maxMessageBytes: MAX_MESSAGE_BYTES },
      { providers: [UserTopicOnConnect] },
    );
    publisher = server.app.get(WsePublisher);
  });
  afterEach(async () => {
    for (const client of opened.splice(0)) await client.close();
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
    expect(server.registry.topicCount).toBe(0);
  });
  afterAll(async () => {
    await server.close();
  });

  describe('client_hello', () => {
    it('is answered with server_hello carrying versions, features, limits, ping interval, id and time', async () => {
      const { client, ready } = await connect();
      const before = Date.now();
      client.send({ t: 'client_hello', p: { client_version: 'integration-tests', protocol_version: 1 } });
      const hello = await client.nextEnvelope();
      const after = Date.now();
      expect(hello).toEqual({
        c: 'WSE',
        t: 'server_hello',
        p: {
          server_version: expect.stringMatching(/^\S+$/),
          protocol_version: 1,
          features: expect.any(Object),
          limits: expect.objectContaining({ max_message_size: MAX_MESSAGE_BYTES }),
          ping_interval: 25_000,
          connection_id: connectionIdOf(ready),
          server_time: expect.stringMatching(ISO_8601),
        },
        v: 1,
      });
      const serverTime = Date.parse(hello.p.server_time as string);
      expect(serverTime).toBeGreaterThanOrEqual(before);
      expect(serverTime).toBeLessThanOrEqual(after);
      await client.expectNothing(100);
    });
  });

  describe('ping', () => {
    it.each(['ping', 'PING', 'Ping'])('answers "%s" with PONG echoing client_timestamp', async (type) => {
      const { client } = await connect();
      await expectPingAnswered(client, type, 1_700_000_000_123);
      await client.expectNothing(100);
    });

    it('echoes a client_timestamp of any JSON type unchanged', async () => {
      const { client } = await connect();
      await expectPingAnswered(client, 'ping', '2024-01-01T00:00:00.000Z');
    });

    it.each(['PONG', 'pong'])('answers nothing to "%s"', async (type) => {
      const { client } = await connect();
      client.send({ t: type, p: { server_time: new Date().toISOString() } });
      await client.expectNothing(300);
      await expectPingAnswered(client);
    });

    it('treats a binary frame holding JSON like a text frame', async () => {
      const { client } = await connect();
      client.socket.send(Buffer.from(JSON.stringify({ t: 'ping', p: { client_timestamp: 7 } })), { binary: true });
      const pong = await client.nextEnvelope();
      expect(pong).toEqual({
        c: 'WSE',
        t: 'PONG',
        p: { client_timestamp: 7, timestamp: null, server_timestamp: expect.any(Number) },
        v: 1,
      });
    });
  });

  describe('malformed frames get INVALID_MESSAGE and the connection stays open', () => {
    const cases: Array<[string, string | Buffer, string]> = [
      ['text that is not JSON', 'this is not json', invalidMessages.notJson()],
      ['truncated JSON', '{"t":"ping"', invalidMessages.notJson()],
      ['a JSON array', '[{"t":"ping"}]', invalidMessages.notObject()],
      ['a JSON number', '42', invalidMessages.notObject()],
      ['a JSON string', '"ping"', invalidMessages.notObject()],
      ['JSON null', 'null', invalidMessages.notObject()],
      ['an object without "t"', '{"p":{"client_timestamp":1}}', invalidMessages.missingType()],
      ['an object whose "t" is a number', '{"t":5}', invalidMessages.missingType()],
      ['an object whose "t" is an object', '{"t":{"type":"ping"}}', invalidMessages.missingType()],
      [
        'a binary frame that is not UTF-8',
        Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0xff, 0xfe, 0x7d]),
        invalidMessages.notUtf8(),
      ],
    ];

    it.each(cases)('%s', async (_name, frame, message) => {
      const { client } = await connect();
      client.socket.send(frame, { binary: Buffer.isBuffer(frame) });
      expect(await client.nextEnvelope()).toEqual(errorEnvelope('INVALID_MESSAGE', message));
      expect(client.isOpen).toBe(true);
      await expectPingAnswered(client);
      await client.expectNothing(100);
    });

    it('a "p" that is not an object', async () => {
      const { client } = await connect();
      client.send('{"t":"ping","p":5}');
      expect(await client.nextEnvelope()).toEqual(errorEnvelope('INVALID_MESSAGE', invalidMessages.payloadNotObject()));
      await expectPingAnswered(client);
    });
  });

  describe('application events', () => {
    it('answers an event type with no handler with UNKNOWN_EVENT, and stays open', async () => {
      const { client } = await connect();
      client.send({ t: 'no_such_event', p: { any: 'thing' } });
      expect(await client.nextEnvelope()).toEqual(
        errorEnvelope('UNKNOWN_EVENT', errorMessages.unknownEvent('no_such_event')),
      );
      await expectPingAnswered(client);
    });
  });

  describe('frame size limit', () => {
    /** A ping frame of exactly `bytes` bytes. */
    function pingOfSize(bytes: number): string {
      const empty = JSON.stringify({ t: 'ping', p: { client_timestamp: 1, pad: '' } });
      return JSON.stringify({ t: 'ping', p: { client_timestamp: 1, pad: 'x'.repeat(bytes - empty.length) } });
    }

    it('accepts a frame of exactly maxMessageBytes', async () => {
      const { client } = await connect();
      const frame = pingOfSize(MAX_MESSAGE_BYTES);
      expect(Buffer.byteLength(frame)).toBe(MAX_MESSAGE_BYTES);
      client.send(frame);
      expect((await client.nextEnvelope()).t).toBe('PONG');
      expect(client.isOpen).toBe(true);
    });

    it('closes with 1009 on a frame one byte over maxMessageBytes', async () => {
      const { client } = await connect();
      const frame = pingOfSize(MAX_MESSAGE_BYTES + 1);
      expect(Buffer.byteLength(frame)).toBe(MAX_MESSAGE_BYTES + 1);
      client.send(frame);
      expect((await client.closed()).code).toBe(1009);
      expect(client.frames).toEqual([]);
      await eventually(() => server.registry.connectionCount === 0, 2_000, 'the closed connection to be unregistered');
    });
  });

  describe('subscription', () => {
    it('subscribes exact topics and globs, all listed in success_topics in request order', async () => {
      const { client } = await connect();
      const topics = ['news:today', 'news:*', 'orders:?', 'sku:[a-c]'];
      expectSubscriptionUpdate(await client.subscribe(topics), 'subscribe', topics, []);

      expect(publisher.publishLocal('news:today', 'exact and glob')).toBe(1);
      expect(publisher.publishLocal('news:tomorrow', 'glob only')).toBe(1);
      expect(publisher.publishLocal('orders:7', 'one char')).toBe(1);
      expect(publisher.publishLocal('orders:77', 'two chars')).toBe(0);
      expect(publisher.publishLocal('sku:b', 'in set')).toBe(1);
      expect(publisher.publishLocal('sku:d', 'not in set')).toBe(0);
      const frames = await client.take(4);
      expect(frames.map((f) => f.text)).toEqual(['exact and glob', 'glob only', 'one char', 'in set']);
      await client.expectNothing(100);
    });

    it('unsubscribes exactly what is asked and keeps the rest', async () => {
      const { client } = await connect();
      expectSubscriptionUpdate(await client.subscribe(['room:1', 'room:*']), 'subscribe', ['room:1', 'room:*'], []);

      expectSubscriptionUpdate(await client.subscribe(['room:1'], 'unsubscribe'), 'unsubscribe', ['room:1'], []);
      expect(publisher.publishLocal('room:1', 'through the glob')).toBe(1);
      expect((await client.next()).text).toBe('through the glob');

      expectSubscriptionUpdate(await client.subscribe(['room:*'], 'unsubscribe'), 'unsubscribe', ['room:*'], []);
      expect(publisher.publishLocal('room:1', 'nobody')).toBe(0);
      expect(publisher.publishLocal('room:2', 'nobody')).toBe(0);
      await client.expectNothing(200);
    });

    it('puts invalid topics in failed_topics and never delivers on them', async () => {
      const { client } = await connect();
      const valid256 = 't'.repeat(256);
      const invalid = ['', 'x'.repeat(257), 'é'.repeat(129), 'bad\u0001topic', 'bad\u007ftopic'];
      const update = await client.subscribe(['ok:topic', ...invalid, valid256]);
      expectSubscriptionUpdate(update, 'subscribe', ['ok:topic', valid256], invalid);
      // `errors` is the project's addition to the contract's frame: why each topic failed.
      expect(update.p.errors).toEqual([
        { topic: '', reason: topicRejections.empty() },
        { topic: 'x'.repeat(257), reason: topicRejections.tooLong(256) },
        { topic: 'é'.repeat(129), reason: topicRejections.tooLong(256) },
        { topic: 'bad\u0001topic', reason: topicRejections.controlCharacter() },
        { topic: 'bad\u007ftopic', reason: topicRejections.controlCharacter() },
      ]);

      // user:alice:events (subscribed on connect), ok:topic and the 256-byte topic; nothing else.
      expect(server.registry.topicCount).toBe(3);
      expect(server.registry.patternCount).toBe(0);
      expect(publisher.publishLocal('bad topic', 'no control char')).toBe(0);
      expect(publisher.publishLocal(valid256, 'longest valid')).toBe(1);
      expect((await client.next()).text).toBe('longest valid');
      await client.expectNothing(200);
    });

    it('subscribes an unclosed set as Redis reads it: room:[abc is room: and one of a, b, c', async () => {
      const { client } = await connect();
      expectSubscriptionUpdate(await client.subscribe(['room:[abc']), 'subscribe', ['room:[abc'], []);
      expect(publisher.publishLocal('room:[abc', 'literal bracket')).toBe(0);
      expect(publisher.publishLocal('room:b', 'one of the set')).toBe(1);
      expect((await client.next()).text).toBe('one of the set');
      await client.expectNothing(200);
    });

    it('answers a subscription without a valid action or topics with INVALID_MESSAGE', async () => {
      const { client } = await connect();
      client.send({ t: 'subscription', p: { action: 'join', topics: ['a'] } });
      expect(await client.nextEnvelope()).toEqual(
        errorEnvelope('INVALID_MESSAGE', invalidMessages.badSubscriptionAction()),
      );
      client.send({ t: 'subscription', p: { action: 'subscribe', topics: 'a' } });
      expect(await client.nextEnvelope()).toEqual(
        errorEnvelope('INVALID_MESSAGE', invalidMessages.badSubscriptionTopics()),
      );
      expect(server.registry.topicCount).toBe(1);
      await expectPingAnswered(client);
    });
  });
});

describe('server heartbeat (pingIntervalMs 100)', () => {
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp({ pingIntervalMs: 100 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('sends {"c":"WSE","t":"ping","p":{"server_time"},"v":1} every interval', async () => {
    const { client } = await TestClient.ready(server.wsUrl);
    try {
      const frames = await client.take(3, 2_000);
      const pings = frames.map((frame) => JSON.parse(frame.text) as Envelope);
      for (const ping of pings) {
        expect(ping).toEqual({ c: 'WSE', t: 'ping', p: { server_time: expect.stringMatching(ISO_8601) }, v: 1 });
      }
      const times = pings.map((ping) => Date.parse(ping.p.server_time as string));
      for (let i = 1; i < times.length; i++) {
        expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(100);
        expect(times[i] - times[i - 1]).toBeLessThan(1_000);
      }
    } finally {
      await client.close();
    }
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'the connection to be unregistered');
  });
});

describe('idle timeout (idleTimeoutMs 300)', () => {
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp({ idleTimeoutMs: 300 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('closes a silent client with 1000 "idle timeout", and keeps clients that ping or pong every 100 ms', async () => {
    const start = Date.now();
    const silent = await TestClient.ready(server.wsUrl);
    const pinger = await TestClient.ready(server.wsUrl);
    const ponger = await TestClient.ready(server.wsUrl);
    const clients = [silent.client, pinger.client, ponger.client];
    try {
      const silentClosed = silent.client.closed(2_000).then((close) => ({ ...close, afterMs: Date.now() - start }));

      // Eight rounds of 100 ms: well past twice the timeout. The pause is the pacing, not the
      // assertion: expectNothing also proves neither client receives anything unasked.
      for (let round = 0; round < 8; round++) {
        await expectPingAnswered(pinger.client, 'ping', round);
        ponger.client.send({ t: 'pong', p: {} });
        await Promise.all([pinger.client.expectNothing(100), ponger.client.expectNothing(100)]);
      }
      expect(Date.now() - start).toBeGreaterThan(600);

      const closed = await silentClosed;
      expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1000, reason: 'idle timeout' });
      expect(closed.afterMs).toBeGreaterThanOrEqual(300);
      expect(silent.client.frames).toEqual([]);
      expect(pinger.client.isOpen).toBe(true);
      expect(ponger.client.isOpen).toBe(true);
      expect(server.registry.connectionCount).toBe(2);
    } finally {
      for (const client of clients) await client.close();
    }
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
  });
});
