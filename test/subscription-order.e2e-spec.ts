import { afterEach, describe, expect, it } from '@jest/globals';
import type { WseConnectionInfo } from '../src/index.js';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { TestClient } from './support/ws-client.js';

/**
 * Control frames of one connection are answered in order, and authorizer calls are bounded per
 * connection (issue 10): a subscribe waited for the authorizer while the unsubscribe after it ran
 * at once, so "subscribe X; unsubscribe X" could end subscribed, with the answers out of order;
 * every topic of a frame was authorized at once (Promise.all over up to 100), frames unbounded.
 */

describe('control frames of one connection, with a slow authorizer', () => {
  let app: EngineApp | undefined;
  let client: TestClient | undefined;
  let running = 0;
  let mostAtOnce = 0;
  let calls = 0;

  afterEach(async () => {
    await client?.close();
    await app?.close();
    client = undefined;
    app = undefined;
    running = 0;
    mostAtOnce = 0;
    calls = 0;
  });

  async function start(delayMs: number): Promise<TestClient> {
    app = await startEngineApp({
      authorizeSubscription: async (_connection: WseConnectionInfo, topic: string) => {
        calls++;
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        running--;
        return !topic.startsWith('denied:');
      },
    });
    ({ client } = await TestClient.ready(app.wsUrl));
    return client;
  }

  it('answers "subscribe X; unsubscribe X; ping" in that order and ends unsubscribed', async () => {
    const c = await start(100);
    c.send({ t: 'subscription', p: { action: 'subscribe', topics: ['x'] } });
    c.send({ t: 'subscription', p: { action: 'unsubscribe', topics: ['x'] } });
    c.send({ t: 'ping', p: { client_timestamp: 'after' } });

    const [subscribe, unsubscribe, pong] = (await c.take(3, 3_000)).map(
      (frame) => frame.json as { t: string; p: Record<string, unknown> },
    );
    expect([subscribe.t, subscribe.p.action, subscribe.p.success_topics]).toEqual([
      'subscription_update',
      'subscribe',
      ['x'],
    ]);
    expect([unsubscribe.t, unsubscribe.p.action]).toEqual(['subscription_update', 'unsubscribe']);
    expect([pong.t, pong.p.client_timestamp]).toEqual(['PONG', 'after']);
    expect(app!.publisher.publishLocal('x', 'nobody')).toBe(0);
    await c.expectNothing(200);
  });

  it('asks the authorizer about at most 8 topics at a time per connection, over several frames', async () => {
    const c = await start(20);
    const topics = (frame: number): string[] => Array.from({ length: 100 }, (_, i) => `t:${frame}:${i}`);
    for (let frame = 0; frame < 3; frame++)
      c.send({ t: 'subscription', p: { action: 'subscribe', topics: topics(frame) } });

    const answers = await c.take(3, 10_000);
    expect(answers.map((frame) => (frame.json as { p: { success_topics: string[] } }).p.success_topics.length)).toEqual(
      [100, 100, 100],
    );
    expect(calls).toBe(300);
    expect(mostAtOnce).toBeLessThanOrEqual(8);
    expect(mostAtOnce).toBeGreaterThan(1);
  });

  it('answers OVERLOADED for control frames past 64 waiting behind an unanswered subscription', async () => {
    const c = await start(500);
    c.send({ t: 'subscription', p: { action: 'subscribe', topics: ['slow'] } });
    for (let i = 0; i < 70; i++) c.send({ t: 'ping', p: { client_timestamp: i } });

    const frames = (await c.take(71, 5_000)).map((frame) => frame.json as { t: string; p: Record<string, unknown> });
    const overloaded = frames.filter((frame) => frame.t === 'error');
    expect(overloaded).toHaveLength(6);
    for (const frame of overloaded) expect(frame.p.code).toBe('OVERLOADED');
    // The 64 that waited are answered in order, after the subscription.
    const rest = frames.filter((frame) => frame.t !== 'error');
    expect(rest[0].t).toBe('subscription_update');
    expect(rest.slice(1).map((frame) => frame.p.client_timestamp)).toEqual(Array.from({ length: 64 }, (_, i) => i));
  });
});
