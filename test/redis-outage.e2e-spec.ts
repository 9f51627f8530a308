import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { WseModuleOptions, WseRedisOptions } from '../src/index.js';
import { FAST_REDIS, startRedisApp, type HttpAnswer, type RedisApp } from './support/redis-app.js';
import { RedisServer } from './support/redis-server.js';
import { waitUntil } from './support/server-process.js';
import { eventually, TestClient, withTimeout } from './support/ws-client.js';

/**
 * Redis outages, for real (CONTRACT sections 5, 7, 8 and 10): the redis-server process is
 * killed and restarted on the same port, frozen with DEBUG SLEEP, or refuses PUBLISH through an
 * ACL. The apps run in-process with a fast probe (every 200 ms, lost after 500 ms) and a short
 * reconnection backoff (100 ms growing to 500 ms), so every bound below is small and derived
 * from those settings.
 */

const API_KEY = 'outage-api-key';
const { probeIntervalMs, probeTimeoutMs } = FAST_REDIS as Required<
  Pick<WseRedisOptions, 'probeIntervalMs' | 'probeTimeoutMs'>
>;
/** Longest reconnection delay with FAST_REDIS: maxDelayMs 500 plus 20 % jitter. */
const MAX_BACKOFF_MS = 600;
/** Slack for the event loop, HTTP round trips and process start-up on a loaded machine. */
const MARGIN_MS = 1_000;
/** A connection loss is seen when the socket closes (at once) or, at the latest, by the probe. */
const DETECT_DOWN_MS = probeIntervalMs + probeTimeoutMs + MARGIN_MS;
/** After a restart: one backoff delay, the re-subscription and one probe round trip. */
const DETECT_UP_MS = MAX_BACKOFF_MS + probeIntervalMs + probeTimeoutMs + MARGIN_MS;

type WseEntry = Record<string, unknown>;

function wseOf(answer: HttpAnswer): WseEntry {
  return (answer.body.details as Record<string, WseEntry>).wse;
}

describe('Redis outages seen by an in-process app (probe 200 ms / 500 ms, backoff 100..500 ms)', () => {
  let redis: RedisServer;
  let redisDown = false;
  const apps: RedisApp[] = [];
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await RedisServer.launch();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await Promise.all(apps.splice(0).map((app) => withTimeout(app.close(), 10_000, 'app.close()')));
    if (redisDown) await restartRedis();
    await redis.command('ACL', 'SETUSER', 'default', '+@all');
  });
  afterAll(async () => {
    await redis.stop();
  });

  async function killRedis(): Promise<void> {
    redisDown = true;
    await redis.stop();
  }

  async function restartRedis(): Promise<void> {
    await redis.start();
    redisDown = false;
  }

  /** Starts an app on the suite's Redis and waits until a probe has proven delivery. */
  async function deliveringApp(
    redisOptions: WseRedisOptions = {},
    options: Omit<WseModuleOptions, 'redis'> = {},
  ): Promise<RedisApp> {
    const app = await startRedisApp({ url: redis.url, ...redisOptions }, { apiKey: API_KEY, ...options });
    apps.push(app);
    await eventually(() => app.admin.redisConnected(), 5_000, 'the app to prove delivery through Redis');
    return app;
  }

  async function client(app: RedisApp, topics: string[] = []): Promise<TestClient> {
    const { client } = await TestClient.ready(app.wsUrl);
    clients.push(client);
    if (topics.length > 0) {
      const update = await client.subscribe(topics);
      expect(update.p).toMatchObject({ action: 'subscribe', success_topics: topics, failed_topics: [] });
    }
    return client;
  }

  async function healthBecomes(app: RedisApp, status: number, timeoutMs: number): Promise<HttpAnswer> {
    let answer: HttpAnswer | undefined;
    await waitUntil(
      async () => (answer = await app.getHealth()).status === status,
      timeoutMs,
      () => `GET /health to answer ${status} (last: ${answer?.status})`,
    );
    return answer!;
  }

  /** Kills Redis and waits until the app reports it down (503). */
  async function outage(app: RedisApp): Promise<HttpAnswer> {
    await killRedis();
    return healthBecomes(app, 503, DETECT_DOWN_MS);
  }

  describe('when Redis is down', () => {
    it('answers GET /health with 503, wse down and redis_connected false, within a bounded time', async () => {
      const app = await deliveringApp();
      expect((await app.getHealth()).status).toBe(200);

      const answer = await outage(app);

      expect(answer.body).toEqual({
        status: 'error',
        info: {},
        error: { wse: expect.objectContaining({ status: 'down', redis_connected: false }) },
        details: { wse: expect.objectContaining({ status: 'down', redis_connected: false }) },
      });
      expect(app.snapshot().redis_connected).toBe(false);
      expect(app.admin.redisConnected()).toBe(false);
    });

    it('holds publishes in the DLQ with the channel, the exact payload and the error, and counts them', async () => {
      const app = await deliveringApp();
      await outage(app);
      const errorsBefore = app.snapshot().redis_publish_errors;

      app.publisher.publish('orders:1', 'exact "text" — ✓ 漢字');
      app.publisher.publish('user:7:events', { t: 'order_filled', p: { id: 7, tags: ['a'] } });
      await eventually(() => app.redis.dlqSize === 2, 2_000, 'both publishes to reach the DLQ');

      expect(app.snapshot().redis_publish_errors).toBe(errorsBefore + 2);
      expect(app.snapshot().redis_dlq_size).toBe(2);
      const drained = await app.api('GET', '/api/dlq');
      expect(drained).toEqual({
        status: 200,
        body: {
          entries: [
            {
              channel: `${app.prefix}orders:1`,
              payload: 'exact "text" — ✓ 漢字',
              error: 'Redis is not connected',
              reason: 'not_connected',
              failed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
              replays: 0,
            },
            {
              channel: `${app.prefix}user:7:events`,
              payload: '{"t":"order_filled","p":{"id":7,"tags":["a"]}}',
              error: 'Redis is not connected',
              reason: 'not_connected',
              failed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
              replays: 0,
            },
          ],
        },
      });
    });

    it('drains the DLQ on reading: a second GET /api/dlq is empty and redis_dlq_size is 0', async () => {
      const app = await deliveringApp();
      await outage(app);
      app.publisher.publish('orders:2', 'held');
      await eventually(() => app.redis.dlqSize === 1, 2_000, 'the publish to reach the DLQ');

      expect((await app.api('GET', '/api/dlq')).body.entries).toHaveLength(1);
      expect(await app.api('GET', '/api/dlq')).toEqual({ status: 200, body: { entries: [] } });
      expect(app.snapshot().redis_dlq_size).toBe(0);
      expect(app.admin.getDlqEntries()).toEqual([]);
    });

    it('answers POST /api/publish with 202 queued and holds the message in the DLQ', async () => {
      const app = await deliveringApp();
      await outage(app);

      const answer = await app.api('POST', '/api/publish', { topic: 'orders:3', data: { n: 3 } });

      expect(answer).toEqual({ status: 202, body: { queued: true } });
      await eventually(() => app.redis.dlqSize === 1, 2_000, 'the publish to reach the DLQ');
      expect(app.admin.getDlqEntries()).toEqual([
        {
          channel: `${app.prefix}orders:3`,
          payload: '{"n":3}',
          error: 'Redis is not connected',
          reason: 'not_connected',
          failedAt: expect.any(Number),
          replays: 0,
        },
      ]);
    });

    it('keeps delivering publishLocal to local subscribers, and nothing goes to the DLQ', async () => {
      const app = await deliveringApp();
      const subscriber = await client(app, ['orders:4']);
      await outage(app);

      expect(app.publisher.publishLocal('orders:4', 'still local')).toBe(1);

      expect((await subscriber.next()).text).toBe('still local');
      expect(app.redis.dlqSize).toBe(0);
    });

    it('keeps answering 503 while Redis stays away, counting reconnection attempts', async () => {
      const app = await deliveringApp();
      await outage(app);

      // Three attempts at 100, 150 and 225 ms (± 20 %): well within a second and a half.
      await eventually(
        () => app.snapshot().redis_reconnect_count >= 3,
        1_500 + MARGIN_MS,
        'three reconnection attempts',
      );

      expect((await app.getHealth()).status).toBe(503);
      expect(app.snapshot().redis_connected).toBe(false);
    });
  });

  describe('when Redis comes back on the same port', () => {
    it('reconnects within the backoff, answers 200 again and counts the reconnection', async () => {
      const app = await deliveringApp();
      await outage(app);
      await eventually(() => app.snapshot().redis_reconnect_count >= 1, DETECT_DOWN_MS, 'a first reconnection attempt');

      await restartRedis();
      const answer = await healthBecomes(app, 200, DETECT_UP_MS);

      expect(answer.body).toEqual({
        status: 'ok',
        info: { wse: expect.objectContaining({ status: 'up', redis_connected: true }) },
        error: {},
        details: { wse: expect.objectContaining({ status: 'up', redis_connected: true }) },
      });
      expect(wseOf(answer).redis_reconnect_count as number).toBeGreaterThanOrEqual(1);
    });

    it('restores the subscriptions: a publish reaches an existing subscriber again, once', async () => {
      const app = await deliveringApp();
      const subscriber = await client(app, ['orders:5']);
      await outage(app);
      await restartRedis();
      await healthBecomes(app, 200, DETECT_UP_MS);
      expect((await subscriber.nextOfType('resync')).t).toBe('resync');

      app.publisher.publish('orders:5', 'after the outage');

      expect((await subscriber.next()).text).toBe('after the outage');
      await subscriber.expectNothing(300);
      expect(app.redis.dlqSize).toBe(0);
    });

    it('sends resync with the topics and down_ms to a connection with subscriptions, and nothing to one without', async () => {
      const app = await deliveringApp();
      const subscribed = await client(app, ['orders:6', 'user:*:events']);
      const idle = await client(app);
      const downAt = Date.now();
      await outage(app);
      await restartRedis();
      await healthBecomes(app, 200, DETECT_UP_MS);
      const upAt = Date.now();

      const frame = await subscribed.next();
      const resync = JSON.parse(frame.text) as { p: { down_ms: number } };

      expect(resync).toEqual({
        c: 'WSE',
        t: 'resync',
        p: { reason: 'redis_reconnected', topics: ['orders:6', 'user:*:events'], down_ms: expect.any(Number) },
        v: 1,
      });
      expect(Number.isInteger(resync.p.down_ms)).toBe(true);
      expect(resync.p.down_ms).toBeGreaterThan(0);
      // The gap runs from the last probe that arrived before the outage: up to one interval early.
      expect(resync.p.down_ms).toBeLessThanOrEqual(upAt - downAt + probeIntervalMs);
      await subscribed.expectNothing(300);
      await idle.expectNothing(0);
    });

    it('replays the DLQ once Redis is back: {replayed: n, failed: 0}, and the subscriber gets the payloads', async () => {
      const app = await deliveringApp();
      const subscriber = await client(app, ['orders:7']);
      await outage(app);
      for (const n of [1, 2, 3]) app.publisher.publish('orders:7', `held-${n}`);
      await eventually(() => app.redis.dlqSize === 3, 2_000, 'three publishes to reach the DLQ');
      await restartRedis();
      await healthBecomes(app, 200, DETECT_UP_MS);
      expect((await subscriber.nextOfType('resync')).t).toBe('resync');

      const answer = await app.api('POST', '/api/dlq/replay');

      expect(answer).toEqual({
        status: 200,
        body: { replayed: 3, failed: 0, skipped: 0, late_ms: expect.any(Number) },
      });
      const payloads = (await subscriber.take(3)).map((frame) => frame.text);
      expect([...payloads].sort()).toEqual(['held-1', 'held-2', 'held-3']);
      await subscriber.expectNothing(300);
      expect(app.snapshot().redis_dlq_size).toBe(0);
    });

    it('replays through replayDlq() the same way', async () => {
      const app = await deliveringApp();
      const subscriber = await client(app, ['orders:8']);
      await outage(app);
      app.publisher.publish('orders:8', { n: 8 });
      await eventually(() => app.redis.dlqSize === 1, 2_000, 'the publish to reach the DLQ');
      await restartRedis();
      await healthBecomes(app, 200, DETECT_UP_MS);
      expect((await subscriber.nextOfType('resync')).t).toBe('resync');

      expect(await app.admin.replayDlq()).toEqual({ replayed: 1, failed: 0, skipped: 0, late_ms: expect.any(Number) });

      expect((await subscriber.next()).text).toBe('{"n":8}');
      expect(app.redis.dlqSize).toBe(0);
    });
  });

  describe('when the DLQ is replayed while Redis is still down', () => {
    it('answers {replayed: 0, failed: n} and keeps every entry', async () => {
      const app = await deliveringApp();
      await outage(app);
      for (const n of [1, 2, 3]) app.publisher.publish('orders:9', `kept-${n}`);
      await eventually(() => app.redis.dlqSize === 3, 2_000, 'three publishes to reach the DLQ');
      const errorsBefore = app.snapshot().redis_publish_errors;

      const answer = await app.api('POST', '/api/dlq/replay');

      expect(answer).toEqual({ status: 200, body: { replayed: 0, failed: 3, skipped: 0, late_ms: 0 } });
      expect(app.snapshot().redis_dlq_size).toBe(3);
      expect(app.snapshot().redis_publish_errors).toBe(errorsBefore);
      // Back in the DLQ with their reason, one replay more, and still their first failure's time.
      expect(app.admin.getDlqEntries()).toEqual(
        [1, 2, 3].map((n) => ({
          channel: `${app.prefix}orders:9`,
          payload: `kept-${n}`,
          error: 'Redis is not connected',
          reason: 'not_connected',
          failedAt: expect.any(Number),
          replays: 1,
        })),
      );
    });
  });

  describe('when Redis freezes for 1.5 s (DEBUG SLEEP)', () => {
    it('notices through the probe within probe interval + timeout, and answers 200 again after the freeze', async () => {
      const app = await deliveringApp();
      const subscriber = await client(app, ['orders:10']);

      // The sockets stay open: only the lost probe can tell.
      redis.freeze(1_500);
      const frozenAt = Date.now();
      await healthBecomes(app, 503, probeIntervalMs + probeTimeoutMs + 500);
      const downAfter = Date.now() - frozenAt;
      await healthBecomes(app, 200, 1_500 + DETECT_UP_MS);

      expect(downAfter).toBeLessThan(1_500);
      // Delivery was interrupted, so subscribed connections hear about it.
      expect(await subscriber.nextOfType('resync', 2_000)).toMatchObject({
        t: 'resync',
        p: { reason: 'redis_reconnected' },
      });
      app.publisher.publish('orders:10', 'after the freeze');
      expect((await subscriber.next()).text).toBe('after the freeze');
    });
  });

  describe('with dlqCapacity 5', () => {
    it('keeps the last 5 of 7 publishes made while Redis is down, evicting the oldest', async () => {
      const app = await deliveringApp({ dlqCapacity: 5 });
      await outage(app);
      const errorsBefore = app.snapshot().redis_publish_errors;

      for (let n = 1; n <= 7; n++) app.publisher.publish('orders:11', `m${n}`);
      await eventually(() => app.snapshot().redis_publish_errors === errorsBefore + 7, 2_000, 'seven DLQ pushes');

      expect(app.snapshot().redis_dlq_size).toBe(5);
      expect(app.admin.getDlqEntries().map((entry) => entry.payload)).toEqual(['m3', 'm4', 'm5', 'm6', 'm7']);
    });
  });

  describe('with breaker { failureThreshold: 3, resetTimeoutMs: 500 } and PUBLISH refused', () => {
    // PUBLISH must fail while both connections stay up. `ACL SETUSER default -publish` does
    // exactly that: Redis answers every PUBLISH with NOPERM on the open connection (permissions
    // are checked per command, so existing connections are affected at once). CLIENT PAUSE
    // WRITE would only delay PUBLISH, not fail it, and maxmemory does not apply to PUBLISH.
    // The probe is a PUBLISH too: refused, it would mark delivery down and send every publish
    // to the DLQ as not_delivering before it reached Redis. So the probe runs once at start only
    // (every 60 s), and the publishes really reach Redis and fail there. One attempt per publish;
    // pub_breaker counts commands, and a batch is one command.
    const breakerOptions: WseRedisOptions = {
      publishAttempts: 1,
      probeIntervalMs: 60_000,
      probeTimeoutMs: 5_000,
      breaker: { failureThreshold: 3, resetTimeoutMs: 500 },
    };

    async function refusePublish(): Promise<void> {
      await redis.command('ACL', 'SETUSER', 'default', '-publish');
    }
    async function acceptPublish(): Promise<void> {
      await redis.command('ACL', 'SETUSER', 'default', '+publish');
    }

    /** One publish per command: each waits for the previous one's outcome. */
    async function publishEach(app: RedisApp, topic: string, payloads: string[]): Promise<void> {
      for (const payload of payloads) {
        const outcomes = app.snapshot().redis_messages_published + app.snapshot().redis_publish_errors;
        app.publisher.publish(topic, payload);
        await eventually(
          () => app.snapshot().redis_messages_published + app.snapshot().redis_publish_errors > outcomes,
          2_000,
          `the outcome of ${payload}`,
        );
      }
    }

    it('opens pub_breaker after 3 failed commands (a batch of two is one), then sends publishes straight to the DLQ naming pub_breaker', async () => {
      const app = await deliveringApp(breakerOptions);
      await refusePublish();

      app.publisher.publish('orders:12', 'f1');
      app.publisher.publish('orders:12', 'f2');
      await eventually(() => app.redis.dlqSize === 2, 2_000, 'two refused publishes in the DLQ');
      expect(app.snapshot().pub_breaker).toBe('CLOSED');
      await publishEach(app, 'orders:12', ['f3']);
      expect(app.snapshot().pub_breaker).toBe('CLOSED');
      await publishEach(app, 'orders:12', ['f4']);
      expect(app.snapshot().pub_breaker).toBe('OPEN');

      app.publisher.publish('orders:12', 'f5');

      expect(app.redis.dlqSize).toBe(5);
      const entries = app.admin.getDlqEntries();
      expect(entries.map((entry) => entry.payload)).toEqual(['f1', 'f2', 'f3', 'f4', 'f5']);
      // f1 and f2 went in one batch (the script names the refusal its own way), f3 and f4 alone.
      for (const entry of entries.slice(0, 4)) {
        expect(entry.error).toMatch(/^NOPERM |can't run this command/);
        expect(entry.reason).toBe('publish_failed');
      }
      expect(entries[4]).toMatchObject({
        channel: `${app.prefix}orders:12`,
        payload: 'f5',
        reason: 'breaker_open',
        error: expect.stringContaining('pub_breaker'),
      });
      // An open breaker is down for /health, with the breaker states in the body.
      const health = await app.getHealth();
      expect(health.status).toBe(503);
      expect(wseOf(health)).toMatchObject({ status: 'down', pub_breaker: 'OPEN', conn_breaker: 'CLOSED' });
    });

    it('is HALF_OPEN after the reset timeout and CLOSED after 3 successful commands once PUBLISH is accepted', async () => {
      const app = await deliveringApp(breakerOptions);
      await refusePublish();
      await publishEach(app, 'orders:13', ['f1', 'f2', 'f3']);
      expect(app.snapshot().pub_breaker).toBe('OPEN');
      const openedAt = Date.now();

      await eventually(() => app.snapshot().pub_breaker === 'HALF_OPEN', 500 + MARGIN_MS, 'pub_breaker to half-open');
      expect(Date.now() - openedAt).toBeGreaterThanOrEqual(400);
      await acceptPublish();
      const publishedBefore = app.snapshot().redis_messages_published;
      await publishEach(app, 'orders:13', ['ok1', 'ok2', 'ok3']);

      await eventually(() => app.snapshot().pub_breaker === 'CLOSED', 2_000, 'pub_breaker to close');
      expect(app.snapshot().redis_messages_published).toBe(publishedBefore + 3);
      expect(app.admin.getDlqEntries().map((entry) => entry.payload)).toEqual(['f1', 'f2', 'f3']);
    });

    it('opens again after one failure while half-open', async () => {
      const app = await deliveringApp(breakerOptions);
      await refusePublish();
      await publishEach(app, 'orders:14', ['f1', 'f2', 'f3']);
      expect(app.snapshot().pub_breaker).toBe('OPEN');
      await eventually(() => app.snapshot().pub_breaker === 'HALF_OPEN', 500 + MARGIN_MS, 'pub_breaker to half-open');

      app.publisher.publish('orders:14', 'f4');
      await eventually(() => app.redis.dlqSize === 4, 2_000, 'the refused half-open probe in the DLQ');

      expect(app.snapshot().pub_breaker).toBe('OPEN');
    });
  });

  describe('with breaker { failureThreshold: 3, resetTimeoutMs: 1500 } and a long outage', () => {
    // Every failed or lost connection counts against conn_breaker; while it is open, the next
    // reconnection waits until it half-opens (CONTRACT section 10).
    const connBreakerOptions: WseRedisOptions = { breaker: { failureThreshold: 3, resetTimeoutMs: 1_500 } };

    it('opens conn_breaker, then reconnects once it half-opens after Redis is back', async () => {
      const app = await deliveringApp(connBreakerOptions);
      await outage(app);
      await eventually(() => app.snapshot().conn_breaker === 'OPEN', DETECT_DOWN_MS, 'conn_breaker to open');
      await restartRedis();

      await healthBecomes(app, 200, 1_500 + DETECT_UP_MS);

      expect(app.snapshot().redis_connected).toBe(true);
    });

    it('closes conn_breaker again once both connections are back and delivering', async () => {
      const app = await deliveringApp(connBreakerOptions);
      await outage(app);
      await eventually(() => app.snapshot().conn_breaker === 'OPEN', DETECT_DOWN_MS, 'conn_breaker to open');
      await restartRedis();
      await healthBecomes(app, 200, 1_500 + DETECT_UP_MS);

      // Three successes close a half-open breaker (CONTRACT section 10). Give it several probe
      // rounds: nothing fails any more, so nothing should keep it from closing.
      let state = app.snapshot().conn_breaker;
      await eventually(
        () => (state = app.snapshot().conn_breaker) === 'CLOSED',
        5 * probeIntervalMs + MARGIN_MS,
        'conn_breaker to close',
      ).catch((error: Error) => {
        throw new Error(`${error.message}: still ${state}`);
      });
    });
  });

  describe('graceful shutdown', () => {
    /** Sockets, servers and timers alive in this process, by kind. */
    function handleCounts(): Record<string, number> {
      const counts: Record<string, number> = {};
      for (const kind of process.getActiveResourcesInfo()) {
        if (kind === 'TCPSocketWrap' || kind === 'TCPServerWrap' || kind === 'Timeout')
          counts[kind] = (counts[kind] ?? 0) + 1;
      }
      return counts;
    }

    /** Connections Redis holds, other than the one asking. */
    async function otherClients(): Promise<string[]> {
      const list = (await redis.command('CLIENT', 'LIST')) as string;
      return list.split('\n').filter((line) => line.trim() !== '' && !line.includes('cmd=client|list'));
    }

    it('app.close() with Redis up resolves within 5 s and Redis sees none of its connections afterwards', async () => {
      await eventually(() => apps.length === 0, 1_000, 'no other app on this Redis');
      expect(await otherClients()).toEqual([]);
      const handlesBefore = handleCounts();
      const app = await deliveringApp();
      const subscriber = await client(app, ['orders:15']);
      expect(await otherClients()).toHaveLength(2);

      apps.splice(apps.indexOf(app), 1); // closed here; afterEach closes it only if we fail before
      await withTimeout(app.close(), 5_000, 'app.close()');

      expect(await subscriber.closed()).toEqual({ code: 1012, reason: 'service restart' });
      let left: string[] = [];
      await waitUntil(
        async () => (left = await otherClients()).length === 0,
        2_000,
        () => `no client left, got ${left.join('; ')}`,
      );
      // No socket, server or timer of the app is left in this process either.
      let handles = handleCounts();
      await eventually(
        () => Object.entries((handles = handleCounts())).every(([kind, n]) => n <= (handlesBefore[kind] ?? 0)),
        2_000,
        'the handles to return to what they were before the app',
      ).catch((error: Error) => {
        throw new Error(`${error.message}: before ${JSON.stringify(handlesBefore)}, now ${JSON.stringify(handles)}`);
      });
    });
  });
});
