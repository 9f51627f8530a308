import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { definePublishBatch } from '../src/broker/redis/publish-batch.js';
import { startRedisApp, type RedisApp } from './support/redis-app.js';
import { RedisServer } from './support/redis-server.js';
import { eventually } from './support/ws-client.js';

/**
 * Publishes issued in one tick reach Redis together (one PUBLISH alone, else one script running
 * PUBLISH per message, see src/wse/redis/publish-batch.ts). What the rest of the world sees must
 * not change: the same messages on the same channels, in order, once each.
 */
describe('batched publishing into Redis', () => {
  let redis: RedisServer;
  const apps: RedisApp[] = [];
  const connections: Redis[] = [];

  beforeAll(async () => {
    redis = await RedisServer.launch();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    for (const connection of connections.splice(0)) connection.disconnect();
    await redis.command('ACL', 'SETUSER', 'default', '+@all');
    await redis.command('ACL', 'DELUSER', 'limited', 'scriptless', 'minimal');
  });
  afterAll(async () => {
    await redis.stop();
  });

  async function deliveringApp(url = redis.url): Promise<RedisApp> {
    // Probes are PUBLISHes too: one a minute keeps them out of the counts below.
    const app = await startRedisApp({ url, probeIntervalMs: 60_000, probeTimeoutMs: 5_000 });
    apps.push(app);
    await eventually(() => app.admin.redisConnected(), 5_000, 'the app to prove delivery through Redis');
    return app;
  }

  /** A plain Redis client on `pattern`, recording "channel payload" lines. */
  async function listen(pattern: string, url = redis.url): Promise<string[]> {
    const received: string[] = [];
    const connection = new Redis(url);
    connections.push(connection);
    connection.on('pmessage', (_pattern: string, channel: string, message: string) =>
      received.push(`${channel} ${message}`),
    );
    await connection.psubscribe(pattern);
    return received;
  }

  async function commandCalls(counter: 'calls' | 'rejected_calls' = 'calls'): Promise<Record<string, number>> {
    const info = String(await redis.command('INFO', 'commandstats'));
    const calls: Record<string, number> = {};
    for (const match of info.matchAll(new RegExp(`^cmdstat_(\\w+):.*\\b${counter}=(\\d+)`, 'gm'))) {
      calls[match[1]] = Number(match[2]);
    }
    return calls;
  }

  it('sends 1,200 publishes of one tick as 3 commands, and a subscriber gets all 1,200 in order, once each', async () => {
    const app = await deliveringApp();
    const received = await listen(`${app.prefix}*`);
    await redis.command('CONFIG', 'RESETSTAT');

    const expected: string[] = [];
    for (let i = 0; i < 1200; i++) {
      app.publisher.publish(`batch:${i % 7}`, { i });
      expected.push(`${app.prefix}batch:${i % 7} {"i":${i}}`);
    }

    await eventually(() => received.length >= 1200, 5_000, '1,200 messages at the outside subscriber');
    await eventually(() => app.snapshot().redis_messages_published === 1200, 2_000, '1,200 acknowledged');
    expect(received).toEqual(expected);
    const calls = await commandCalls();
    expect((calls.eval ?? 0) + (calls.evalsha ?? 0)).toBe(3); // 512 + 512 + 176
    expect(calls.publish).toBe(1200); // INFO counts the PUBLISHes inside the script
    expect(app.snapshot().redis_publish_errors).toBe(0);
  });

  it('sends a lone publish as a plain PUBLISH', async () => {
    const app = await deliveringApp();
    const received = await listen(`${app.prefix}*`);
    await redis.command('CONFIG', 'RESETSTAT');

    app.publisher.publish('lone', 'just one');

    await eventually(() => received.length === 1, 2_000, 'the message at the outside subscriber');
    expect(received).toEqual([`${app.prefix}lone just one`]);
    const calls = await commandCalls();
    expect(calls.publish).toBe(1);
    expect(calls.eval ?? 0).toBe(0);
    expect(calls.evalsha ?? 0).toBe(0);
  });

  it('closes a command at 1 MiB of payloads: three 600 KB messages go as a batch of two and one PUBLISH', async () => {
    const app = await deliveringApp();
    const received = await listen(`${app.prefix}*`);
    await redis.command('CONFIG', 'RESETSTAT');

    for (const letter of ['a', 'b', 'c']) app.publisher.publish('big', letter.repeat(600_000));

    await eventually(() => received.length === 3, 5_000, 'three large messages at the outside subscriber');
    expect(received.map((line) => line.slice(-1))).toEqual(['a', 'b', 'c']);
    expect(received.every((line) => line.length === `${app.prefix}big `.length + 600_000)).toBe(true);
    const calls = await commandCalls();
    expect((calls.eval ?? 0) + (calls.evalsha ?? 0)).toBe(1);
    expect(calls.publish).toBe(3);
  });

  it('retries a refused batch after 100 ms: every message arrives once, in order, and nothing reaches the DLQ', async () => {
    const app = await deliveringApp();
    const received = await listen(`${app.prefix}*`);
    await redis.command('ACL', 'SETUSER', 'default', '-publish');

    for (let i = 0; i < 5; i++) app.publisher.publish('retried', `m${i}`);
    await new Promise((resolve) => setTimeout(resolve, 40)); // the first attempt is refused meanwhile
    await redis.command('ACL', 'SETUSER', 'default', '+publish');

    await eventually(() => received.length >= 5, 3_000, 'five messages after the retry');
    await new Promise((resolve) => setTimeout(resolve, 300)); // a duplicate would show up here
    expect(received).toEqual([0, 1, 2, 3, 4].map((i) => `${app.prefix}retried m${i}`));
    expect(app.redis.dlqSize).toBe(0);
    expect(app.snapshot().redis_messages_published).toBe(5);
  });

  it('falls back to pipelined PUBLISHes when its Redis user may not run scripts: nothing lost, reordered or repeated', async () => {
    await redis.command('ACL', 'SETUSER', 'scriptless', 'on', 'nopass', '~*', '&*', '+@all', '-@scripting');
    const app = await deliveringApp(`redis://scriptless@127.0.0.1:${redis.port}`);
    const received = await listen(`${app.prefix}*`);
    await redis.command('CONFIG', 'RESETSTAT');

    const expected: string[] = [];
    for (let i = 0; i < 1200; i++) {
      app.publisher.publish('fallback', `m${i}`);
      expected.push(`${app.prefix}fallback m${i}`);
    }

    await eventually(() => received.length >= 1200, 5_000, '1,200 messages at the outside subscriber');
    await eventually(() => app.snapshot().redis_messages_published === 1200, 2_000, '1,200 acknowledged');
    expect(received).toEqual(expected);
    expect(app.redis.dlqSize).toBe(0);
    expect((await commandCalls()).publish).toBe(1200);
    expect((await commandCalls('rejected_calls')).evalsha).toBeGreaterThan(0);

    // Later ticks go straight to the pipeline: no script is tried again.
    await redis.command('CONFIG', 'RESETSTAT');
    for (let i = 0; i < 10; i++) app.publisher.publish('fallback', `later${i}`);
    await eventually(() => received.length === 1210, 2_000, 'ten more messages');
    expect(received.slice(1200)).toEqual([...Array(10).keys()].map((i) => `${app.prefix}fallback later${i}`));
    const rejected = await commandCalls('rejected_calls');
    expect((rejected.eval ?? 0) + (rejected.evalsha ?? 0)).toBe(0);
  });

  it('works with a Redis user holding only the permissions the README lists', async () => {
    await redis.command(
      'ACL',
      'SETUSER',
      'minimal',
      'on',
      'nopass',
      'resetchannels',
      '&wse:*',
      '&__wse_probe__:*',
      '-@all',
      '+psubscribe',
      '+subscribe',
      '+publish',
      '+ping',
      '+eval',
      '+evalsha',
    );
    const app = await startRedisApp({ url: `redis://minimal@127.0.0.1:${redis.port}`, prefix: 'wse:' });
    apps.push(app);
    await eventually(() => app.admin.redisConnected(), 5_000, 'the app to prove delivery through Redis');
    const received = await listen('wse:*');
    for (let i = 0; i < 3; i++) app.publisher.publish('minimal', `m${i}`);
    await eventually(() => received.length === 3, 2_000, 'three messages');
    expect(received).toEqual(['wse:minimal m0', 'wse:minimal m1', 'wse:minimal m2']);
    expect(app.redis.dlqSize).toBe(0);
  });

  it('runs every PUBLISH of a batch on its own: one refused message neither stops nor repeats the others', async () => {
    // A user that may publish on ok:* only (Redis checks channel permissions per PUBLISH).
    await redis.command('ACL', 'SETUSER', 'limited', 'on', 'nopass', 'resetchannels', '&ok:*', '+@all');
    const received = await listen('*');
    const limited = new Redis(`redis://limited@127.0.0.1:${redis.port}`);
    connections.push(limited);
    definePublishBatch(limited);

    // Two receivers expected, one listening: the allowed messages come back as short (-index, 1).
    const reply = await limited.wsePublishBatch(2, 'ok:1', 'a', 'no:1', 'b', 'ok:2', 'c', 'no:2', 'd');

    expect(reply).toEqual([
      -1,
      1,
      2,
      expect.stringMatching(/NOPERM|can't publish/),
      -3,
      1,
      4,
      expect.stringMatching(/NOPERM|can't publish/),
    ]);
    // With one expected, only the refusals are listed.
    expect(await limited.wsePublishBatch(1, 'ok:3', 'e', 'no:3', 'f')).toEqual([
      2,
      expect.stringMatching(/NOPERM|can't publish/),
    ]);
    await eventually(() => received.length >= 3, 2_000, 'the three allowed messages');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received).toEqual(['ok:1 a', 'ok:2 c', 'ok:3 e']);
  });
});
