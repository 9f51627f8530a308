import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Socket } from 'node:net';
import type { RawData } from 'ws';
import { errorMessages, invalidMessages, topicRejections } from '../src/wse.messages.js';
import { CapturingLogger, startEngineApp, type EngineApp } from './support/engine-app.js';
import { forceGc } from './support/memory.js';
import { parseExposition } from './support/prometheus.js';
import { upgradeStatus } from './support/upgrade.js';
import { eventually, TestClient, type Envelope } from './support/ws-client.js';

/**
 * Issue "Operations", the limits that keep a public endpoint's memory bounded whatever clients
 * do: slow consumers (maxBufferedBytes, slowConsumerTimeoutMs), the inbound rate limit (a token
 * bucket per connection), topic caps, and allowed origins. Each suite runs the engine in an app
 * of its own, built with WseModule.forRoot and small limits.
 */

// testTimeout in jest.config.js's project is not applied per project: the integration bound, here.
jest.setTimeout(30_000);

const MiB = 1_048_576;
const envelope = (t: string, p: Record<string, unknown>) => ({ c: 'WSE', t, p, v: 1 });

function connectionIdOf(ready: Envelope): string {
  return (ready.p.details as { connection_id: string }).connection_id;
}

/** The TCP socket under a ws client: pausing it makes the client stop reading. */
function tcpOf(client: TestClient): Socket {
  return (client.socket as unknown as { _socket: Socket })._socket;
}

/** Bytes written to a connection's socket that its client has not taken yet (0 once it is gone). */
function unreadBytes(app: EngineApp, connectionId: string): number {
  const connection = app.registry.get(connectionId) as { bufferedBytes: number } | undefined;
  return connection?.bufferedBytes ?? 0;
}

async function dropped(app: EngineApp, cause: string): Promise<number> {
  return parseExposition(await app.metrics.metrics()).value('wse_messages_dropped_total', { cause });
}

// ---- slow consumers -------------------------------------------------------------------------

/** A topic message of exactly 1 KiB carrying its sequence number. */
function sequenced(n: number): string {
  const head = `{"n":${n},"pad":"`;
  return `${head}${'x'.repeat(1024 - head.length - 2)}"}`;
}

/**
 * A consumer that reads as fast as it can and checks order as it goes, keeping no frames (a
 * flood of 20 MiB kept in memory would be the test's own memory, not the server's).
 */
class SequenceReader {
  received = 0;
  problem: string | undefined;

  constructor(readonly client: TestClient) {
    // Replace TestClient's queue with a counter from here on.
    client.socket.removeAllListeners('message');
    client.socket.on('message', (data: RawData) => this.onMessage(data.toString()));
  }

  private onMessage(text: string): void {
    const match = /^\{"n":(\d+),/.exec(text);
    if (match === null) {
      this.problem ??= `unexpected frame ${text.slice(0, 120)}`;
      return;
    }
    const n = Number(match[1]);
    if (n !== this.received) this.problem ??= `expected message ${this.received}, got ${n}`;
    if (text.length !== 1024) this.problem ??= `message ${n} is ${text.length} bytes`;
    this.received++;
  }
}

describe('a slow consumer (maxBufferedBytes 1 MiB, slowConsumerTimeoutMs 300)', () => {
  const TOTAL = 20_000;
  const BATCH = 100;
  /** Messages a fast consumer may lag behind: 400 KiB, well under maxBufferedBytes. */
  const WINDOW = 400;
  let server: EngineApp;
  const logger = new CapturingLogger();
  const opened: TestClient[] = [];

  async function subscribed(): Promise<{ client: TestClient; id: string }> {
    const { client, ready } = await TestClient.ready(server.wsUrl);
    opened.push(client);
    expect((await client.subscribe(['feed'])).p.success_topics).toEqual(['feed']);
    return { client, id: connectionIdOf(ready) };
  }

  beforeAll(async () => {
    server = await startEngineApp({ maxBufferedBytes: MiB, slowConsumerTimeoutMs: 300 }, { logger });
  });
  afterEach(async () => {
    for (const client of opened.splice(0)) {
      tcpOf(client)?.resume();
      await client.close();
    }
    await eventually(() => server.registry.connectionCount === 0, 5_000, 'every connection to be unregistered');
  });
  afterAll(async () => {
    await server.close();
  });

  it('is cut off and closed while the others get every message in order, and memory stays bounded', async () => {
    const fast = [new SequenceReader((await subscribed()).client), new SequenceReader((await subscribed()).client)];
    const slow = await subscribed();
    tcpOf(slow.client).pause();
    const droppedBefore = server.snapshot().outbound_dropped;

    forceGc();
    const baselineRss = process.memoryUsage().rss;
    let peakRss = baselineRss;
    let peakSlowBuffered = 0;
    const started = Date.now();
    for (let sent = 0; sent < TOTAL;) {
      for (let i = 0; i < BATCH; i++, sent++) server.publisher.publishLocal('feed', sequenced(sent));
      await new Promise((resolve) => setImmediate(resolve));
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      peakSlowBuffered = Math.max(peakSlowBuffered, unreadBytes(server, slow.id));
      // The fast consumers keep up: never more than WINDOW + BATCH messages behind.
      await eventually(
        () => fast.every((reader) => reader.received >= sent - WINDOW),
        20_000,
        `the fast consumers to keep up at message ${sent} (received ${fast.map((r) => r.received).join(', ')})`,
      );
    }
    await eventually(
      () => fast.every((reader) => reader.received === TOTAL || reader.problem !== undefined),
      20_000,
      'the fast consumers to receive every message',
    );
    const floodMs = Date.now() - started;

    expect(fast.map((reader) => reader.problem)).toEqual([undefined, undefined]);
    expect(fast.map((reader) => reader.received)).toEqual([TOTAL, TOTAL]);
    // The slow one: over the limit, messages dropped and counted, then closed and forgotten.
    await eventually(() => server.registry.connectionCount === 2, 10_000, 'the slow consumer to be unregistered');
    const droppedSlow = server.snapshot().outbound_dropped - droppedBefore;
    expect(droppedSlow).toBeGreaterThan(0);
    expect(await dropped(server, 'slow_consumer')).toBe(server.snapshot().outbound_dropped);
    // Its unread bytes never grew past the limit by more than one batch.
    expect(peakSlowBuffered).toBeLessThanOrEqual(MiB + BATCH * 1024 + 64 * 1024);
    // The whole flood (20 MiB to each of three consumers) moved through a bounded amount of memory.
    expect({ rssGrowthUnder64MiB: peakRss - baselineRss < 64 * MiB, peakRss, baselineRss, floodMs }).toEqual({
      rssGrowthUnder64MiB: true,
      peakRss,
      baselineRss,
      floodMs,
    });

    // Once it reads again it sees the end: 1013 `slow consumer`, or the socket destroyed after
    // the 1 s grace (1006) when the close frame was still behind the unread bytes.
    tcpOf(slow.client).resume();
    const closed = await slow.client.closed(10_000);
    expect([
      { code: 1013, reason: 'slow consumer' },
      { code: 1006, reason: '' },
    ]).toContainEqual(closed);
    // One slow consumer, closed once: counted once and logged once, and its close counted under
    // 1013 whether the close handshake finished or the socket was destroyed after the grace.
    const exposition = parseExposition(await server.metrics.metrics());
    expect({
      closedTotal: exposition.value('wse_slow_consumers_closed_total'),
      closedWith1013: exposition.value('wse_connections_closed_total', { code: '1013' }),
      warnings: logger.count('warn', 'closed as a slow consumer'),
    }).toEqual({ closedTotal: 1, closedWith1013: 1, warnings: 1 });
  }, 120_000);

  it('drops messages to a client that stopped reading, without closing it before the timeout', async () => {
    // A server of its own with a long timeout: the client is over the limit but not for long enough.
    const patient = await startEngineApp({ maxBufferedBytes: MiB, slowConsumerTimeoutMs: 60_000 });
    const { client, ready } = await TestClient.ready(patient.wsUrl);
    try {
      expect((await client.subscribe(['feed'])).p.success_topics).toEqual(['feed']);
      const id = connectionIdOf(ready);
      tcpOf(client).pause();

      // Publish until messages are being dropped (bounded: 64 MiB at most).
      let sent = 0;
      while (patient.snapshot().outbound_dropped === 0 && sent < 65_536) {
        for (let i = 0; i < BATCH; i++, sent++) patient.publisher.publishLocal('feed', sequenced(sent));
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(patient.snapshot().outbound_dropped).toBeGreaterThan(0);
      expect(patient.registry.get(id)).toBeDefined();

      // It reads again: the backlog drains, and new messages reach it again.
      tcpOf(client).resume();
      await eventually(() => unreadBytes(patient, id) === 0, 20_000, 'the backlog to drain');
      expect(patient.publisher.publishLocal('feed', 'after')).toBe(1);
      await eventually(
        () => client.frames.at(-1)?.text === 'after',
        20_000,
        'the message published after it caught up',
      );
      // What it got: an unbroken prefix of the sequence, a gap (the drops), then `after`.
      const numbers = client.frames.slice(0, -1).map((frame) => (frame.json as { n: number }).n);
      expect(numbers.length).toBeGreaterThan(0);
      expect(numbers.length).toBeLessThan(sent);
      expect(numbers.every((n, i) => n === i)).toBe(true);
      expect(client.isOpen).toBe(true);
    } finally {
      tcpOf(client).resume();
      await client.close();
      await patient.close();
    }
  }, 120_000);
});

// ---- rate limit -----------------------------------------------------------------------------

describe('the inbound rate limit (capacity 50, 10 per second, close after 100 refusals in a row)', () => {
  let server: EngineApp;
  const logger = new CapturingLogger();
  const opened: TestClient[] = [];

  async function connect(): Promise<TestClient> {
    const { client } = await TestClient.ready(server.wsUrl);
    opened.push(client);
    return client;
  }

  /** Sends `count` pings at once, numbered from `from`. */
  function burst(client: TestClient, count: number, from = 0): void {
    for (let i = 0; i < count; i++) client.send({ t: 'ping', p: { client_timestamp: from + i } });
  }

  const pong = (n: unknown) => ({
    c: 'WSE',
    t: 'PONG',
    p: { client_timestamp: n, timestamp: null, server_timestamp: expect.any(Number) },
    v: 1,
  });
  const warning = (remaining: number) =>
    envelope('rate_limit_warning', { remaining, capacity: 50, refill_per_second: 10 });

  beforeAll(async () => {
    server = await startEngineApp(
      { rateLimit: { capacity: 50, refillPerSecond: 10, closeAfterRejected: 100 } },
      { logger },
    );
  });
  afterEach(async () => {
    for (const client of opened.splice(0)) await client.close();
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
  });
  afterAll(async () => {
    await server.close();
  });

  it('answers a burst within capacity, warning once when fewer than 20 % (10) tokens remain', async () => {
    const client = await connect();
    burst(client, 49);

    const frames = (await client.take(50, 5_000)).map((frame) => frame.json);
    // The 41st ping leaves 9 tokens: the warning goes out just before its PONG.
    expect(frames).toEqual([
      ...Array.from({ length: 40 }, (_, n) => pong(n)),
      warning(9),
      ...Array.from({ length: 9 }, (_, i) => pong(40 + i)),
    ]);
    await client.expectNothing(300);
  });

  it('refuses an empty bucket with one RATE_LIMITED and a retry_after, and keeps the connection open', async () => {
    const client = await connect();
    burst(client, 70);

    const frames = (await client.take(52, 5_000)).map((frame) => frame.json as Envelope);
    expect(frames.slice(0, 51)).toEqual([
      ...Array.from({ length: 40 }, (_, n) => pong(n)),
      warning(9),
      ...Array.from({ length: 10 }, (_, i) => pong(40 + i)),
    ]);
    const refusal = frames[51];
    expect(refusal).toEqual(
      envelope('error', {
        code: 'RATE_LIMITED',
        message: errorMessages.rateLimited(),
        retry_after: expect.any(Number),
      }),
    );
    const retryAfter = refusal.p.retry_after as number;
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(0.1); // one token at 10 per second
    // The other 19 refusals of the streak are silent: no error per frame.
    await client.expectNothing(50);
    expect(client.isOpen).toBe(true);

    // Doing as told: after retry_after seconds a ping is answered.
    await new Promise((resolve) => setTimeout(resolve, Math.ceil(retryAfter * 1000) + 20));
    client.send({ t: 'ping', p: { client_timestamp: 'after' } });
    expect(await client.nextEnvelope()).toEqual(pong('after'));
  });

  it('sends a new RATE_LIMITED for a new streak of refusals', async () => {
    const client = await connect();
    burst(client, 60);
    const first = await client.take(52, 5_000);
    expect((first.at(-1)!.json as Envelope).p.code).toBe('RATE_LIMITED');

    // As retry_after says, a token is back after a tenth of a second; then a new burst.
    await new Promise((resolve) => setTimeout(resolve, 150));
    burst(client, 10, 100);
    const second: Envelope[] = [];
    while (second.length < 11 && second.at(-1)?.t !== 'error') second.push(await client.nextEnvelope(5_000));
    // The tokens refilled meanwhile are spent in order, then one refusal is answered.
    const answered = second.length - 1;
    expect(answered).toBeGreaterThanOrEqual(1);
    expect(second).toEqual([
      ...Array.from({ length: answered }, (_, i) => pong(100 + i)),
      envelope('error', {
        code: 'RATE_LIMITED',
        message: errorMessages.rateLimited(),
        retry_after: expect.any(Number),
      }),
    ]);
    await client.expectNothing(100);
  });

  it('closes with 1008 `rate limit exceeded` after 100 refusals in a row', async () => {
    const client = await connect();
    const refusedBefore = await dropped(server, 'rate_limited');
    burst(client, 400);

    expect(await client.closed(5_000)).toEqual({ code: 1008, reason: 'rate limit exceeded' });
    const frames = client.frames.map((frame) => (frame.json as Envelope).t);
    expect(frames).toEqual([...Array(40).fill('PONG'), 'rate_limit_warning', ...Array(10).fill('PONG'), 'error']);
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'the connection to be unregistered');
    expect(await dropped(server, 'rate_limited')).toBeGreaterThanOrEqual(refusedBefore + 100);
  });

  it('logs the 1008 close once, however many frames the client keeps sending while it closes', async () => {
    const client = await connect();
    const before = logger.count('warn', 'closed for exceeding the rate limit');
    burst(client, 400);

    expect(await client.closed(5_000)).toEqual({ code: 1008, reason: 'rate limit exceeded' });
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'the connection to be unregistered');
    // A flood must not become a log flood (docs/SECURITY.md, "Secrets in logs").
    expect(logger.count('warn', 'closed for exceeding the rate limit') - before).toBe(1);
  });

  it('charges every inbound frame, malformed ones included', async () => {
    const client = await connect();
    for (let i = 0; i < 50; i++) client.send('not json');
    client.send({ t: 'ping', p: { client_timestamp: 1 } });

    const frames = (await client.take(52, 5_000)).map((frame) => frame.json as Envelope);
    expect(frames.filter((frame) => frame.t === 'error' && frame.p.code === 'INVALID_MESSAGE')).toHaveLength(50);
    expect(frames.filter((frame) => frame.t === 'rate_limit_warning')).toHaveLength(1);
    expect(frames.at(-1)).toEqual(
      envelope('error', {
        code: 'RATE_LIMITED',
        message: errorMessages.rateLimited(),
        retry_after: expect.any(Number),
      }),
    );
  });
});

describe('with rateLimit: false', () => {
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp({ rateLimit: false });
  });
  afterAll(async () => {
    await server.close();
  });

  it('answers every frame of a burst far beyond any bucket, with no warning and no refusal', async () => {
    const { client } = await TestClient.ready(server.wsUrl);
    try {
      for (let i = 0; i < 3000; i++) client.send({ t: 'ping', p: { client_timestamp: i } });
      const frames = (await client.take(3000, 20_000)).map((frame) => frame.json as Envelope);
      expect(frames.every((frame, i) => frame.t === 'PONG' && frame.p.client_timestamp === i)).toBe(true);
      await client.expectNothing(200);
      expect(await dropped(server, 'rate_limited')).toBe(0);
    } finally {
      await client.close();
    }
  }, 60_000);
});

// ---- topic caps -----------------------------------------------------------------------------

function expectUpdate(
  update: Envelope,
  success: string[],
  failed: Array<{ topic: string; reason: string }>,
  action = 'subscribe',
): void {
  expect(update).toEqual(
    envelope('subscription_update', {
      action,
      success: failed.length === 0,
      success_topics: success,
      failed_topics: failed.map((f) => f.topic),
      errors: failed,
    }),
  );
}

describe('topic caps with the defaults (1000 per connection, 100 per message, 256 bytes)', () => {
  let server: EngineApp;
  let client: TestClient;

  beforeAll(async () => {
    server = await startEngineApp();
  });
  afterEach(async () => {
    await client?.close();
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
    expect(server.registry.topicCount).toBe(0);
  });
  afterAll(async () => {
    await server.close();
  });

  it('accepts 1000 topics on a connection, then lists more in failed_topics', async () => {
    ({ client } = await TestClient.ready(server.wsUrl));
    for (let message = 0; message < 10; message++) {
      const topics = Array.from({ length: 100 }, (_, i) => `t-${message * 100 + i}`);
      expectUpdate(await client.subscribe(topics), topics, []);
    }
    expect(server.registry.topicCount).toBe(1000);

    // A topic already held is still a success; a new one is over the limit.
    const reason = topicRejections.topicLimit(1000);
    expect(reason).toBe('topic limit reached (1000 per connection)');
    expectUpdate(
      await client.subscribe(['t-extra', 't-0', 'p-*']),
      ['t-0'],
      [
        { topic: 't-extra', reason },
        { topic: 'p-*', reason },
      ],
    );
    expect(server.registry.topicCount).toBe(1000);

    // Unsubscribing makes room again.
    expectUpdate(await client.subscribe(['t-999'], 'unsubscribe'), ['t-999'], [], 'unsubscribe');
    expectUpdate(await client.subscribe(['t-extra']), ['t-extra'], []);
  });

  it('refuses a subscription message listing more than 100 topics with INVALID_MESSAGE, subscribing none', async () => {
    ({ client } = await TestClient.ready(server.wsUrl));
    expect(invalidMessages.tooManyTopics(100)).toBe('subscription: at most 100 topics per message');

    client.send({
      t: 'subscription',
      p: { action: 'subscribe', topics: Array.from({ length: 101 }, (_, i) => `x${i}`) },
    });
    expect(await client.nextEnvelope()).toEqual(
      envelope('error', { code: 'INVALID_MESSAGE', message: 'subscription: at most 100 topics per message' }),
    );
    client.send({ t: 'subscription', p: { action: 'unsubscribe', topics: Array.from({ length: 101 }, () => 'x') } });
    expect(await client.nextEnvelope()).toEqual(
      envelope('error', { code: 'INVALID_MESSAGE', message: 'subscription: at most 100 topics per message' }),
    );
    expect(server.registry.topicCount).toBe(0);
    expect(client.isOpen).toBe(true);
  });

  it('accepts a topic of 256 bytes and refuses one of 257, counting UTF-8 bytes', async () => {
    ({ client } = await TestClient.ready(server.wsUrl));
    const tooLong = topicRejections.tooLong(256);
    expect(tooLong).toBe('topic is longer than 256 bytes');

    const ascii256 = 'a'.repeat(256);
    const ascii257 = 'a'.repeat(257);
    const utf8256 = 'é'.repeat(128); // 2 bytes each
    const utf8258 = 'é'.repeat(129);
    const euro258 = '€'.repeat(86); // 3 bytes each, 86 characters
    expectUpdate(
      await client.subscribe([ascii256, ascii257, utf8256, utf8258, euro258]),
      [ascii256, utf8256],
      [
        { topic: ascii257, reason: tooLong },
        { topic: utf8258, reason: tooLong },
        { topic: euro258, reason: tooLong },
      ],
    );
  });
});

describe('topic caps set low (3 per connection, 5 per message), subscriptions through the API too', () => {
  const API_KEY = 'limits-api-key';
  let server: EngineApp;
  let client: TestClient;

  beforeAll(async () => {
    server = await startEngineApp({ maxTopicsPerConnection: 3, maxTopicsPerSubscription: 5, apiKey: API_KEY });
  });
  afterEach(async () => {
    await client?.close();
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
  });
  afterAll(async () => {
    await server.close();
  });

  it('subscribes up to the cap in request order and lists the rest as failed', async () => {
    let ready: Envelope;
    ({ client, ready } = await TestClient.ready(server.wsUrl));
    const reason = 'topic limit reached (3 per connection)';

    expectUpdate(
      await client.subscribe(['a', 'b', 'c', 'd', 'e']),
      ['a', 'b', 'c'],
      [
        { topic: 'd', reason },
        { topic: 'e', reason },
      ],
    );
    client.send({ t: 'subscription', p: { action: 'subscribe', topics: ['1', '2', '3', '4', '5', '6'] } });
    expect(await client.nextEnvelope()).toEqual(
      envelope('error', { code: 'INVALID_MESSAGE', message: 'subscription: at most 5 topics per message' }),
    );

    // The server API obeys the same cap.
    const response = await fetch(`${server.httpUrl}/api/connections/${connectionIdOf(ready)}/subscribe`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topics: ['a', 'z'] }),
      signal: AbortSignal.timeout(5_000),
    });
    expect({ status: response.status, body: await response.json() }).toEqual({
      status: 200,
      body: { topics: ['a', 'b', 'c'], failed_topics: ['z'] },
    });
  });
});

// ---- allowed origins ------------------------------------------------------------------------

describe('allowed origins (allowedOrigins option)', () => {
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp({ allowedOrigins: ['https://app.example.com', 'http://localhost:3000'] });
  });
  afterEach(async () => {
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
  });
  afterAll(async () => {
    await server.close();
  });

  it.each([
    'https://evil.example.com',
    'https://app.example.com.evil.com',
    'http://app.example.com',
    'https://app.example.com:8443',
    'http://localhost:3001',
    'null',
  ])('refuses an upgrade from %s with HTTP 403 before any connection exists', async (origin) => {
    expect(await upgradeStatus(server.wsUrl, origin)).toBe(403);
    expect(server.registry.connectionCount).toBe(0);
  });

  it.each(['https://app.example.com', 'http://localhost:3000'])('accepts %s, a listed origin', async (origin) => {
    const { client } = await TestClient.ready(server.wsUrl, { origin });
    expect(client.isOpen).toBe(true);
    await client.close();
  });

  it('accepts a client that sends no Origin header (not a browser)', async () => {
    const { client, ready } = await TestClient.ready(server.wsUrl);
    expect(ready.t).toBe('server_ready');
    await client.close();
  });
});
