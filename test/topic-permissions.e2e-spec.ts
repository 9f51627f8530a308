import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { EXAMPLE_SUBSCRIBE_ALLOW } from '../examples/server/env.config.js';
import { NotificationsService } from '../examples/server/notifications/notifications.service.js';
import type { WseConnectionInfo } from '../src/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * Issue 16, topic permissions on a real server: the operator's rules decide what a client may
 * subscribe to, a refused topic is in failed_topics with its reason and never delivers, and a
 * token with `sub: "*"` cannot widen its own rule into everybody's topics.
 */

const NOT_ALLOWED = 'not allowed by the subscription rules';
const TOO_WIDE = 'pattern reaches topics the subscription rules do not allow';
const REACHES_DENIED = 'pattern reaches topics the subscription rules deny';

describe('subscriptions rules with authorizeSubscription (library app)', () => {
  let server: EngineApp;
  const open: TestClient[] = [];
  const connect = async (claims: Record<string, unknown>): Promise<TestClient> => {
    const { client } = await TestClient.ready(`${server.wsUrl}?token=${signToken(claims)}`);
    open.push(client);
    return client;
  };

  beforeAll(async () => {
    server = await startEngineApp({
      auth: { jwtSecret: TEST_SECRET },
      subscriptions: {
        allow: ['user:{sub}:*', 'chat:{lobby,help,ops}', 'prices:*'],
        deny: ['prices:internal:*'],
        claim: 'channels',
      },
      // Code rules still apply, after the operator's: nobody but ops staff in chat:ops.
      authorizeSubscription: (connection: WseConnectionInfo, topic: string) =>
        topic !== 'chat:ops' || connection.claims?.staff === true,
    });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((client) => client.close()));
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to close');
  });
  afterAll(async () => {
    await server.close();
  });

  it('subscribes what the rules allow and lists every refusal with its reason', async () => {
    const alice = await connect({ sub: 'alice' });

    const update = await alice.subscribe([
      'user:alice:events',
      'user:alice:*',
      'user:bob:events',
      'user:*:events',
      'chat:lobby',
      'chat:*',
      'chat:ops',
      'prices:btc',
      'prices:*',
      'prices:b*',
    ]);

    expect(update.p).toEqual({
      action: 'subscribe',
      success: false,
      success_topics: ['user:alice:events', 'user:alice:*', 'chat:lobby', 'prices:btc', 'prices:b*'],
      failed_topics: ['user:bob:events', 'user:*:events', 'chat:*', 'chat:ops', 'prices:*'],
      errors: [
        { topic: 'user:bob:events', reason: NOT_ALLOWED },
        { topic: 'user:*:events', reason: TOO_WIDE },
        { topic: 'chat:*', reason: TOO_WIDE },
        { topic: 'chat:ops', reason: 'not authorized' },
        { topic: 'prices:*', reason: REACHES_DENIED },
      ],
    });
  });

  it('gives a token with sub "*" its own literal topic, never everybody\'s', async () => {
    const star = await connect({ sub: '*' });
    const bob = await connect({ sub: 'bob' });
    expect((await bob.subscribe(['user:bob:events'])).p).toMatchObject({ success_topics: ['user:bob:events'] });

    const update = await star.subscribe(['user:*:events', 'user:*', 'user:\\*:events']);

    expect(update.p).toMatchObject({
      success_topics: ['user:\\*:events'],
      failed_topics: ['user:*:events', 'user:*'],
    });
    expect(server.publisher.publishLocal('user:bob:events', 'for bob only')).toBe(1);
    expect((await bob.next()).text).toBe('for bob only');
    // Its one allowed subscription is the literal topic "user:*:events".
    expect(server.publisher.publishLocal('user:*:events', 'for the user named *')).toBe(1);
    expect((await star.next()).text).toBe('for the user named *');
    await Promise.all([star.expectNothing(), bob.expectNothing()]);
  });

  it("adds the token's own channels claim to the allowed rules", async () => {
    const vip = await connect({ sub: 'v', channels: ['vip:{lounge,bar}'] });

    expect((await vip.subscribe(['vip:lounge', 'vip:*'])).p).toMatchObject({
      success_topics: ['vip:lounge'],
      failed_topics: ['vip:*'],
    });
  });
});

describe("the example server's rules (user:{sub}:* and chat:*)", () => {
  let app: RunningApp;
  const open: TestClient[] = [];

  beforeAll(async () => {
    app = await startApp({ WSE_JWT_SECRET: TEST_SECRET, WSE_SUBSCRIBE_ALLOW: EXAMPLE_SUBSCRIBE_ALLOW });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await app.close();
  });

  it('lets the demo page join chat rooms and read its own user topic, and nothing wider', async () => {
    const { client } = await TestClient.ready(`${app.wsUrl}?token=${signToken({ sub: '*' })}`);
    open.push(client);

    const update = await client.subscribe(['chat:lobby', 'chat:*', 'user:*:events', 'user:alice:events', 'news']);

    expect(update.p).toMatchObject({
      success_topics: ['chat:lobby', 'chat:*'],
      failed_topics: ['user:*:events', 'user:alice:events', 'news'],
    });
  });

  it('subscribes a token with sub "*" to its own user topic only, not to every user\'s', async () => {
    const { client: star } = await TestClient.ready(`${app.wsUrl}?token=${signToken({ sub: '*' })}`);
    const { client: alice } = await TestClient.ready(`${app.wsUrl}?token=${signToken({ sub: 'alice' })}`);
    open.push(star, alice);
    const notifications = app.app.get(NotificationsService);

    notifications.notify('alice', 'order_filled', { id: 1 });
    expect(await alice.nextJson()).toEqual({ t: 'order_filled', p: { id: 1 } });
    await star.expectNothing();

    notifications.notify('*', 'order_filled', { id: 2 });
    expect(await star.nextJson()).toEqual({ t: 'order_filled', p: { id: 2 } });
    await alice.expectNothing();
  });
});
