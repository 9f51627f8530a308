import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { EXAMPLE_SUBSCRIBE_ALLOW } from '../examples/server/env.config.js';
import { startApp, type RunningApp } from './support/app.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { RedisServer } from './support/redis-server.js';
import { TestClient, eventually } from './support/ws-client.js';
import { WseAdmin, type WseHealthSnapshot } from '../src/index.js';

/**
 * The demo chat (`src/app/demo/chat.handlers.ts`) on two example apps sharing one Redis: chat
 * crosses instances through Redis, and while Redis is down it stays local to each instance
 * instead of falling silent (and stays out of the dead letter queue).
 */
describe('demo chat on two instances', () => {
  let redis: RedisServer;
  let a: RunningApp;
  let b: RunningApp;
  const clients: TestClient[] = [];

  async function member(app: RunningApp, sub: string, room: string): Promise<TestClient> {
    const { client } = await TestClient.ready(`${app.wsUrl}?token=${signToken({ sub })}`);
    clients.push(client);
    const update = await client.subscribe([`chat:${room}`]);
    expect(update.p).toMatchObject({ success_topics: [`chat:${room}`], failed_topics: [] });
    return client;
  }

  function say(client: TestClient, room: string, text: string): void {
    client.send({ t: 'chat_message', p: { room, text } });
  }

  /** The next frame is the chat message `text` from `sender`, and nothing follows within 300 ms. */
  async function expectOnly(client: TestClient, sender: string, text: string): Promise<void> {
    const frame = await client.nextOfType('chat_message', 5_000);
    expect(frame.p).toMatchObject({ user_id: sender, text });
    await client.expectNothing(300);
  }

  const redisUp = (app: RunningApp) => eventually(() => snapshotOf(app).redis_connected, 15_000, 'Redis delivering');
  const redisDown = (app: RunningApp) => eventually(() => !snapshotOf(app).redis_connected, 5_000, 'Redis seen down');

  beforeAll(async () => {
    redis = await RedisServer.launch();
    // The example's own subscription rules: the demo's topics (chat:*) must pass them.
    const env = { WSE_JWT_SECRET: TEST_SECRET, REDIS_URL: redis.url, WSE_SUBSCRIBE_ALLOW: EXAMPLE_SUBSCRIBE_ALLOW };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
    await Promise.all([redisUp(a), redisUp(b)]);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  it('delivers a message sent on A once on A and once on B, through Redis', async () => {
    const alice = await member(a, 'alice', 'both');
    const bob = await member(b, 'bob', 'both');
    say(alice, 'both', 'hello via redis');
    await expectOnly(alice, 'alice', 'hello via redis');
    await expectOnly(bob, 'alice', 'hello via redis');
  });

  describe('when Redis is down', () => {
    it('keeps chat local to each instance, out of the DLQ, and crosses again once Redis is back', async () => {
      const alice = await member(a, 'alice', 'outage');
      const bob = await member(b, 'bob', 'outage');
      const carol = await member(a, 'carol', 'outage');

      await redis.stop();
      await Promise.all([redisDown(a), redisDown(b)]);
      say(alice, 'outage', 'local only');
      await expectOnly(alice, 'alice', 'local only');
      await expectOnly(carol, 'alice', 'local only');
      await bob.expectNothing(300);
      expect(snapshotOf(a).redis_dlq_size).toBe(0);

      await redis.start();
      await Promise.all([redisUp(a), redisUp(b)]);
      for (const client of [alice, bob, carol]) {
        expect((await client.nextOfType('resync', 5_000)).p).toMatchObject({ reason: 'redis_reconnected' });
      }
      say(bob, 'outage', 'across again');
      await expectOnly(alice, 'bob', 'across again');
      await expectOnly(bob, 'bob', 'across again');
      await expectOnly(carol, 'bob', 'across again');
    }, 40_000);
  });
});

function snapshotOf(app: RunningApp): WseHealthSnapshot {
  return app.app.get(WseAdmin).healthSnapshot();
}
