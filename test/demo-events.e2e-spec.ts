import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { httpCall, type HttpAnswer } from './support/http.js';
import { startApp, type RunningApp } from './support/app.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { eventually, TestClient, type Envelope } from './support/ws-client.js';

/**
 * The example app's own domain code on the engine: its demo `chat_message` event
 * (examples/server/demo/chat.handlers.ts) and the per-user topic its NotificationsService
 * subscribes each authenticated connection to. The engine's protocol is protocol.e2e-spec.ts.
 */

const API_KEY = 'demo-events-api-key';
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function connectionIdOf(ready: Envelope): string {
  return (ready.p.details as { connection_id: string }).connection_id;
}

function errorEnvelope(code: string, message: string): Envelope {
  return { c: 'WSE', t: 'error', p: { code, message }, v: 1 };
}

/** The contract's fields of a `subscription_update`, exactly. */
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

function api(server: RunningApp, method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpAnswer> {
  return httpCall(`${server.httpUrl}${path}`, method, body, API_KEY);
}

describe('the example app (JWT, server API on)', () => {
  let server: RunningApp;
  const opened: TestClient[] = [];

  async function connect(sub = 'alice'): Promise<{ client: TestClient; ready: Envelope }> {
    const result = await TestClient.ready(`${server.wsUrl}?token=${signToken({ sub })}`);
    opened.push(result.client);
    return result;
  }

  beforeAll(async () => {
    server = await startApp({ WSE_JWT_SECRET: TEST_SECRET, WSE_API_KEY: API_KEY });
  });
  afterEach(async () => {
    for (const client of opened.splice(0)) await client.close();
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
    expect(server.registry.topicCount).toBe(0);
  });
  afterAll(async () => {
    await server.close();
  });

  describe('the demo chat_message event', () => {
    it('reaches every subscriber of chat:lobby, the sender included, exactly as documented', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      const carol = await connect('carol');
      for (const { client } of [alice, bob]) {
        expectSubscriptionUpdate(await client.subscribe(['chat:lobby']), 'subscribe', ['chat:lobby'], []);
      }
      expectSubscriptionUpdate(await carol.client.subscribe(['chat:other']), 'subscribe', ['chat:other'], []);

      const before = Date.now();
      alice.client.send({ t: 'chat_message', p: { room: 'lobby', text: 'hi' } });
      for (const { client } of [alice, bob]) {
        const frame = await client.next();
        expect(JSON.parse(frame.text)).toEqual({
          t: 'chat_message',
          p: { room: 'lobby', text: 'hi', user_id: 'alice', ts: expect.stringMatching(ISO_8601) },
        });
        const ts = Date.parse((JSON.parse(frame.text) as { p: { ts: string } }).p.ts);
        expect(ts).toBeGreaterThanOrEqual(before);
        expect(ts).toBeLessThanOrEqual(Date.now());
      }
      await Promise.all([
        alice.client.expectNothing(200),
        bob.client.expectNothing(200),
        carol.client.expectNothing(200),
      ]);
    });

    const roomError = 'chat_message: p.room must be 1-64 letters, digits, "_", "." or "-"';
    const textError = 'chat_message: p.text must be a string of 1-2000 characters';
    const badPayloads: Array<[string, Record<string, unknown>, string]> = [
      ['no room', { text: 'hi' }, roomError],
      ['an empty room', { room: '', text: 'hi' }, roomError],
      ['a room with a space', { room: 'the lobby', text: 'hi' }, roomError],
      ['a room that is a number', { room: 1, text: 'hi' }, roomError],
      ['no text', { room: 'lobby' }, textError],
      ['an empty text', { room: 'lobby', text: '' }, textError],
      ['a text that is not a string', { room: 'lobby', text: 5 }, textError],
      ['a text of 2001 characters', { room: 'lobby', text: 'x'.repeat(2001) }, textError],
    ];

    it.each(badPayloads)(
      'answers a payload with %s with INVALID_MESSAGE and publishes nothing',
      async (_name, p, message) => {
        const alice = await connect('alice');
        const bob = await connect('bob');
        expectSubscriptionUpdate(await alice.client.subscribe(['chat:lobby']), 'subscribe', ['chat:lobby'], []);
        expectSubscriptionUpdate(await bob.client.subscribe(['chat:lobby']), 'subscribe', ['chat:lobby'], []);

        alice.client.send({ t: 'chat_message', p });
        expect(await alice.client.nextEnvelope()).toEqual(errorEnvelope('INVALID_MESSAGE', message));
        await Promise.all([alice.client.expectNothing(200), bob.client.expectNothing(200)]);
        expect(alice.client.isOpen).toBe(true);
      },
    );
  });

  describe('the demo per-user topic', () => {
    it('subscribes an authenticated connection to user:{sub}:events on connect', async () => {
      const { ready } = await connect('alice');
      const response = await api(server, 'GET', '/api/connections');
      expect(response).toEqual({
        status: 200,
        body: {
          connections: [
            {
              id: connectionIdOf(ready),
              user_id: 'alice',
              topics: ['user:alice:events'],
              connected_at: expect.stringMatching(ISO_8601),
            },
          ],
        },
      });
    });

    it('delivers a publish on user:{sub}:events to that user only', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      const payload = { t: 'notification', p: { text: 'for alice' } };
      expect(await api(server, 'POST', '/api/publish', { topic: 'user:alice:events', data: payload })).toEqual({
        status: 200,
        body: { delivered: 1 },
      });
      expect((await alice.client.next()).text).toBe(JSON.stringify(payload));
      await Promise.all([alice.client.expectNothing(200), bob.client.expectNothing(200)]);
    });
  });
});
