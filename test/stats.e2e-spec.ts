import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { startApp, type RunningApp } from './support/app.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { RedisServer } from './support/redis-server.js';
import { waitUntil } from './support/server-process.js';
import { TestClient } from './support/ws-client.js';

const API_KEY = 'stats-test-api-key-0123456789';
const STAT_KEYS = ['connections', 'local_deliveries', 'multi_instance', 'redis_connected', 'redis_dlq_size'];

interface StatsAnswer {
  status: number;
  cacheControl: string | null;
  text: string;
  body: Record<string, unknown>;
}

/** `GET /stats` without any credentials, 5 s at most. */
async function getStats(app: RunningApp): Promise<StatsAnswer> {
  const response = await fetch(`${app.httpUrl}/stats`, { signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  return {
    status: response.status,
    cacheControl: response.headers.get('cache-control'),
    text,
    body: JSON.parse(text) as Record<string, unknown>,
  };
}

async function statsUntil(app: RunningApp, what: string, check: (body: Record<string, unknown>) => boolean) {
  let last: Record<string, unknown> = {};
  await waitUntil(
    async () => check((last = (await getStats(app)).body)),
    10_000,
    () => `GET /stats: ${what} (last: ${JSON.stringify(last)})`,
  );
}

describe('GET /stats, the demo page figures', () => {
  describe('single instance, with a JWT secret and an API key configured', () => {
    let app: RunningApp;
    const clients: TestClient[] = [];

    beforeAll(async () => {
      app = await startApp({ WSE_JWT_SECRET: TEST_SECRET, WSE_API_KEY: API_KEY });
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((client) => client.close()));
    });
    afterAll(async () => {
      await app.close();
    });

    it('answers the five figures without an API key, uncached, and reveals nothing else', async () => {
      const answer = await getStats(app);
      expect(answer.status).toBe(200);
      expect(answer.cacheControl).toBe('no-store');
      expect(answer.body).toEqual({
        connections: 0,
        local_deliveries: 0,
        redis_connected: false,
        redis_dlq_size: 0,
        multi_instance: false,
      });
      expect(Object.keys(answer.body).sort()).toEqual(STAT_KEYS);
      expect(answer.text).not.toContain(API_KEY);
      expect(answer.text).not.toContain(TEST_SECRET);
    });

    it('counts connections and deliveries as they happen, without naming anyone', async () => {
      const { client, ready } = await TestClient.ready(`${app.wsUrl}?token=${signToken({ sub: 'alice' })}`);
      clients.push(client);
      await client.subscribe(['chat:stats']);
      expect((await getStats(app)).body).toMatchObject({ connections: 1, local_deliveries: 0 });

      client.send({ t: 'chat_message', p: { room: 'stats', text: 'counted' } });
      expect(JSON.parse((await client.next()).text)).toMatchObject({ t: 'chat_message', p: { text: 'counted' } });
      const answer = await getStats(app);
      expect(answer.body).toMatchObject({ connections: 1, local_deliveries: 1 });
      const details = ready.p.details as { connection_id: string };
      for (const secret of ['alice', details.connection_id, 'chat:stats']) expect(answer.text).not.toContain(secret);

      await client.close();
      await statsUntil(app, 'connections back to 0', (body) => body.connections === 0);
    });
  });

  describe('multi-instance (REDIS_URL set)', () => {
    let redis: RedisServer;
    let app: RunningApp;

    beforeAll(async () => {
      redis = await RedisServer.launch();
      app = await startApp({ REDIS_URL: redis.url });
    });
    afterAll(async () => {
      await app?.close();
      await redis?.stop();
    });

    it('reports multi_instance and follows Redis down and back, never showing the URL', async () => {
      await statsUntil(app, 'redis_connected true', (body) => body.redis_connected === true);
      const answer = await getStats(app);
      expect(answer.body).toMatchObject({ multi_instance: true, redis_connected: true, redis_dlq_size: 0 });
      expect(answer.text).not.toContain(String(redis.port));

      await redis.stop();
      await statsUntil(app, 'redis_connected false', (body) => body.redis_connected === false);
      expect((await getStats(app)).body).toMatchObject({ multi_instance: true });

      await redis.start();
      await statsUntil(app, 'redis_connected true again', (body) => body.redis_connected === true);
    }, 30_000);
  });
});
