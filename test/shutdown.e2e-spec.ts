import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Redis } from 'ioredis';
import { CapturedServer } from './support/captured-server.js';
import { signToken } from './support/jwt.js';
import { RedisServer } from './support/redis-server.js';
import { ServerProcess, waitUntil } from './support/server-process.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * Issue "Operations", the example server as an OS process: a graceful stop on SIGTERM (every
 * client closed with 1012 `service restart`, Redis publishes flushed, Redis connections quit, exit 0
 * within WSE_SHUTDOWN_TIMEOUT_MS), and its logs (JSON lines with WSE_LOG_FORMAT=json, and never
 * a token, the JWT secret or the API key, even at verbose level).
 */

// testTimeout in jest.config.js's project is not applied per project: the integration bound, here.
jest.setTimeout(60_000);

const API_KEY = 'shutdown-api-key-6f1c2a';
const SHUTDOWN_TIMEOUT_MS = 5_000;
/** How late the exit may be past the bound on a loaded machine (the process exits 1 at the bound itself). */
const EXIT_MARGIN_MS = 3_000;

/** Lines of `CLIENT LIST`, except the connection asking and the test's own named ones. */
async function serverConnections(redis: RedisServer): Promise<string[]> {
  const list = String(await redis.command('CLIENT', 'LIST'));
  return list
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => !/ cmd=client\|list /.test(line) && !/ name=test-/.test(line));
}

describe('SIGTERM with 50 clients and publishes in flight (REDIS_URL, WSE_API_KEY)', () => {
  let redis: RedisServer;
  let server: ServerProcess | undefined;
  const clients: TestClient[] = [];
  const helpers: Redis[] = [];

  beforeAll(async () => {
    redis = await RedisServer.launch();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
    for (const helper of helpers.splice(0)) helper.disconnect();
    await server?.stop(1_000);
    server = undefined;
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('closes every client with 1012, flushes publishes to Redis, quits Redis and exits 0 in time', async () => {
    server = await ServerProcess.spawn({
      REDIS_URL: redis.url,
      WSE_API_KEY: API_KEY,
      WSE_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    });
    const running = server;
    expect(await serverConnections(redis)).toHaveLength(2); // its subscriber and its publisher

    // 50 live clients on one topic.
    for (let batch = 0; batch < 5; batch++) {
      const ready = await Promise.all(Array.from({ length: 10 }, () => TestClient.ready(running.wsUrl)));
      clients.push(...ready.map((r) => r.client));
    }
    const updates = await Promise.all(clients.map((client) => client.subscribe(['news'])));
    expect(updates.every((update) => (update.p.success_topics as string[])[0] === 'news')).toBe(true);

    // Watch what reaches Redis.
    const monitor = new Redis(redis.url, { connectionName: 'test-monitor' });
    helpers.push(monitor);
    const onRedis = { api: 0, redis: 0 };
    monitor.on('pmessage', (_pattern: string, _channel: string, message: string) => {
      const { src } = JSON.parse(message) as { src: 'api' | 'redis' };
      onRedis[src]++;
    });
    await monitor.psubscribe('wse:news');

    // Publishes in flight: four API loops, and a backend publishing straight to Redis.
    const publisher = new Redis(redis.url, { connectionName: 'test-publisher', maxRetriesPerRequest: 0 });
    helpers.push(publisher);
    let stopLoops = false;
    const accepted = { api: 0, redis: 0 };
    const apiLoop = async (): Promise<void> => {
      for (let n = 0; !stopLoops && n < 100_000; n++) {
        try {
          const response = await fetch(`${running.httpUrl}/api/publish`, {
            method: 'POST',
            headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ topic: 'news', data: { src: 'api', n } }),
            signal: AbortSignal.timeout(2_000),
          });
          await response.arrayBuffer();
          if (response.status !== 202) return;
          accepted.api++;
        } catch {
          return; // the server has stopped listening
        }
      }
    };
    const redisLoop = async (): Promise<void> => {
      for (let n = 0; !stopLoops && n < 1_000_000; n++) {
        await publisher.publish('wse:news', JSON.stringify({ src: 'redis', n }));
        accepted.redis++;
        if (n % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    };
    const loops = [apiLoop(), apiLoop(), apiLoop(), apiLoop(), redisLoop()];
    await eventually(
      () => clients.every((client) => client.frames.length >= 20),
      20_000,
      'every client to be receiving the published messages',
    );

    const acceptedBeforeSignal = accepted.api;
    const signalled = Date.now();
    const exitCode = await running.stop(SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS + 5_000);
    const stopMs = Date.now() - signalled;
    stopLoops = true;
    await Promise.all(loops);

    expect({ exitCode, inTime: stopMs < SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS, stopMs }).toEqual({
      exitCode: 0,
      inTime: true,
      stopMs,
    });
    const closes = await Promise.all(clients.map((client) => client.closed(5_000)));
    expect(closes).toEqual(Array(50).fill({ code: 1012, reason: 'service restart' }));
    // Each client got the backend's messages in publish order before the close.
    for (const client of clients) {
      const fromRedis = client.frames
        .map((frame) => frame.json as { src?: string; n?: number })
        .filter((message) => message.src === 'redis')
        .map((message) => message.n!);
      expect(fromRedis.every((n, i) => i === 0 || n > fromRedis[i - 1])).toBe(true);
    }
    // Nothing of the process is left connected to Redis.
    await waitUntil(async () => (await serverConnections(redis)).length === 0, 2_000, 'its Redis connections to close');
    // Every publish the API accepted (202) reached Redis: those accepted before the signal were
    // flushed, and none accepted while stopping was left to die in the DLQ with the process.
    // (Waits for the monitor to catch up; the exact comparisons report the numbers if not.)
    await eventually(() => onRedis.api >= accepted.api, 2_000).catch(() => undefined);
    expect(onRedis.api).toBeGreaterThanOrEqual(acceptedBeforeSignal);
    expect({ acceptedByApi: accepted.api, acceptedBeforeSignal, seenOnRedis: onRedis.api }).toEqual({
      acceptedByApi: accepted.api,
      acceptedBeforeSignal,
      seenOnRedis: accepted.api,
    });
    expect(accepted.api).toBeGreaterThan(0);
  });
});

describe('logs (WSE_LOG_FORMAT=json, WSE_LOG_LEVEL=verbose, a JWT secret and an API key)', () => {
  const JWT_SECRET = 'log-test-jwt-secret-9b7d5c3e1f';
  let redis: RedisServer;
  let server: CapturedServer | undefined;

  beforeAll(async () => {
    redis = await RedisServer.launch();
  });
  afterEach(async () => {
    await server?.kill();
    server = undefined;
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('writes only JSON lines, and never a token, the JWT secret or the API key', async () => {
    server = await CapturedServer.spawn({
      REDIS_URL: redis.url,
      WSE_API_KEY: API_KEY,
      WSE_JWT_SECRET: JWT_SECRET,
      WSE_LOG_FORMAT: 'json',
      WSE_LOG_LEVEL: 'verbose',
      WSE_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    });
    const running = server;
    const token = signToken({ sub: 'log-user' }, {}, JWT_SECRET);
    const forged = signToken({ sub: 'intruder' }, {}, 'not-the-secret');

    // A connection with a token in the query, one with it in a header, refused ones (bad
    // signature, garbage), API calls with the right key and a wrong one that resembles it.
    const { client: viaQuery } = await TestClient.ready(`${running.wsUrl}?token=${token}`);
    const { client: viaHeader } = await TestClient.ready(running.wsUrl, {
      headers: { authorization: `Bearer ${token}` },
    });
    await viaQuery.subscribe(['user:log-user:events']);
    viaQuery.send({ t: 'chat_message', p: { room: 'lobby', text: `my token is ${token.slice(0, 10)}` } });
    for (const bad of [forged, 'garbage.token.value']) {
      const refused = await TestClient.connect(`${running.wsUrl}?token=${bad}`);
      expect((await refused.closed()).code).toBe(4401);
    }
    for (const key of [API_KEY, `${API_KEY}-wrong`]) {
      const response = await fetch(`${running.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ topic: 'user:log-user:events', data: { n: 1 } }),
        signal: AbortSignal.timeout(5_000),
      });
      await response.arrayBuffer();
    }
    await viaQuery.close();
    await viaHeader.close();

    // The connection lines at verbose level are there: the check covers a verbose log.
    await eventually(() => /connection [0-9a-f-]+ closed/.test(running.stdout), 5_000, 'the verbose line of a close');
    running.signal('SIGTERM');
    const exit = await running.exited;
    expect(exit).toEqual({ code: 0, signal: null });

    const stdoutLines = running.stdout.split('\n').filter((line) => line !== '');
    const stderrLines = running.stderr.split('\n').filter((line) => line !== '');
    expect(stdoutLines.length).toBeGreaterThan(5);
    const notJson = [...stdoutLines, ...stderrLines].filter((line) => {
      try {
        const value = JSON.parse(line) as unknown;
        return typeof value !== 'object' || value === null;
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
    const levels = new Set(stdoutLines.map((line) => (JSON.parse(line) as { level?: string }).level));
    expect(levels.has('verbose')).toBe(true);

    const everything = running.stdout + running.stderr;
    const secrets = {
      token: token,
      tokenSignature: token.split('.')[2],
      forgedToken: forged,
      jwtSecret: JWT_SECRET,
      apiKey: API_KEY,
    };
    const leaked = Object.entries(secrets)
      .filter(([, secret]) => everything.includes(secret))
      .map(([name]) => name);
    expect(leaked).toEqual([]);
  });
});
