import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { EngineApp } from './support/engine-app.js';
import { startEngineApp } from './support/engine-app.js';
import { RedisServer } from './support/redis-server.js';
import { waitUntil } from './support/server-process.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * `connectRedis()` at run time (issue 10): two calls at once made four connections, delivered
 * every message twice and left two connections open after shutdown. Calls are serialised: the
 * same URL again changes nothing, another URL swaps cleanly, nothing is left behind.
 */

/** Connections a Redis server holds, other than the one asking. */
async function clientsOf(redis: RedisServer): Promise<number> {
  const list = String(await redis.command('CLIENT', 'LIST'));
  return list.split('\n').filter((line) => line.trim() !== '' && !line.includes('cmd=client|list')).length;
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}

describe('connectRedis() at run time', () => {
  let first: RedisServer;
  let second: RedisServer;

  beforeAll(async () => {
    [first, second] = await Promise.all([RedisServer.launch(), RedisServer.launch()]);
  });
  afterAll(async () => {
    await Promise.all([first.stop(), second.stop()]);
  });

  async function subscribed(app: EngineApp, topic: string): Promise<TestClient> {
    const { client } = await TestClient.ready(app.wsUrl);
    await client.subscribe([topic]);
    return client;
  }

  it('opens two connections for two calls at once with the same URL, and delivers each message once', async () => {
    const app = await startEngineApp({ redis: { probeIntervalMs: 200, probeTimeoutMs: 500 } });
    try {
      await Promise.all([app.admin.connectRedis(first.url), app.admin.connectRedis(first.url)]);
      await eventually(() => app.admin.redisConnected(), 5_000, 'delivery proven');
      expect(await clientsOf(first)).toBe(2);
      await app.admin.connectRedis(first.url); // the same URL again: nothing changes
      expect(await clientsOf(first)).toBe(2);

      const client = await subscribed(app, 'once');
      app.publisher.publish('once', 'one');
      expect((await client.next()).text).toBe('one');
      await client.expectNothing(300);
      await client.close();
    } finally {
      await app.close();
    }
    await waitUntil(async () => (await clientsOf(first)) === 0, 2_000, 'no connection left on Redis');
  });

  it('moves to another URL: the old connections are closed, the new ones deliver, and shutdown leaves nothing', async () => {
    const timersBefore = timers();
    const app = await startEngineApp({ redis: { probeIntervalMs: 200, probeTimeoutMs: 500 } });
    let client: TestClient | undefined;
    try {
      await app.admin.connectRedis(first.url);
      await eventually(() => app.admin.redisConnected(), 5_000, 'delivery proven on the first Redis');
      // Two moves at once: they run one after the other and end on the second server.
      await Promise.all([app.admin.connectRedis(second.url), app.admin.connectRedis(second.url)]);
      await waitUntil(async () => (await clientsOf(first)) === 0, 2_000, 'the first Redis to be left');
      await eventually(() => app.admin.redisConnected(), 5_000, 'delivery proven on the second Redis');
      expect(await clientsOf(second)).toBe(2);

      client = await subscribed(app, 'moved');
      app.publisher.publish('moved', 'here');
      expect((await client.next()).text).toBe('here');
      await client.expectNothing(300);
    } finally {
      await client?.close();
      await app.close();
    }
    await waitUntil(async () => (await clientsOf(second)) === 0, 2_000, 'no connection left on the second Redis');
    let now = timers();
    await eventually(() => (now = timers()) <= timersBefore, 2_000, 'the timers to be gone').catch((error: Error) => {
      throw new Error(`${error.message}: ${now} timers, ${timersBefore} before the app`);
    });
  });
});
