import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { UserTopicOnConnect } from './support/user-topic.hooks.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * The server API of CONTRACT section 7 on an engine app whose `@OnWseConnect` hook subscribes
 * each authenticated connection to user:{sub}:events: real HTTP with fetch, real ws clients
 * receiving what the API publishes. The dead letter queue routes are not implemented
 * yet and are not tested here.
 */

const API_KEY = 'test-key';
const ONE_MIB = 1_048_576;

interface ApiAnswer {
  status: number;
  body: unknown;
  contentType: string | null;
}

interface RequestOptions {
  /** Serialized with JSON.stringify unless `raw` is given. */
  body?: unknown;
  /** Sent as-is. */
  raw?: string;
  contentType?: string;
  /** The whole Authorization header; `null` sends none. Default: the right Bearer key. */
  authorization?: string | null;
}

async function call(server: EngineApp, method: string, path: string, options: RequestOptions = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  const authorization = options.authorization === undefined ? `Bearer ${API_KEY}` : options.authorization;
  if (authorization !== null) headers.authorization = authorization;
  let body: string | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const response = await fetch(`${server.httpUrl}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed, contentType: response.headers.get('content-type') };
}

/** Every route of the section 7 table that exists, with a valid body. */
const ROUTES: ReadonlyArray<{ method: 'GET' | 'POST'; path: string; body?: unknown }> = [
  { method: 'POST', path: '/api/publish', body: { topic: 'news', data: 'x' } },
  { method: 'POST', path: '/api/broadcast', body: { data: 'x' } },
  { method: 'POST', path: '/api/connections/some-id/send', body: { data: 'x' } },
  { method: 'POST', path: '/api/connections/some-id/subscribe', body: { topics: ['news'] } },
  { method: 'POST', path: '/api/connections/some-id/unsubscribe', body: { topics: ['news'] } },
  { method: 'GET', path: '/api/topics/news/subscribers' },
  { method: 'GET', path: '/api/connections' },
  { method: 'GET', path: '/api/snapshot' },
];

const UNAUTHORIZED = { error: 'Missing or wrong API key: send Authorization: Bearer <WSE_API_KEY>' };

describe('server API (apiKey set)', () => {
  let server: EngineApp;
  const clients: TestClient[] = [];

  /** A ready client authenticated as `sub`; closed after the test. */
  async function connect(sub: string): Promise<{ client: TestClient; id: string }> {
    const { client, ready } = await TestClient.ready(`${server.wsUrl}?token=${signToken({ sub })}`);
    clients.push(client);
    return { client, id: (ready.p.details as { connection_id: string }).connection_id };
  }

  beforeAll(async () => {
    server = await startEngineApp(
      { auth: { jwtSecret: TEST_SECRET }, apiKey: API_KEY },
      { providers: [UserTopicOnConnect] },
    );
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
  });
  afterAll(async () => {
    await server.close();
  });

  describe('POST /api/publish', () => {
    it('delivers to exact and pattern subscribers once each and answers 200 with the count', async () => {
      const a = await connect('alice');
      const b = await connect('bob');
      const c = await connect('carol');
      await a.client.subscribe(['orders:1', 'orders:*']);
      await b.client.subscribe(['orders:*']);
      await c.client.subscribe(['orders:2']);

      const answer = await call(server, 'POST', '/api/publish', { body: { topic: 'orders:1', data: { n: 1 } } });

      expect(answer).toEqual({ status: 200, body: { delivered: 2 }, contentType: 'application/json; charset=utf-8' });
      expect((await a.client.next()).text).toBe('{"n":1}');
      expect((await b.client.next()).text).toBe('{"n":1}');
      await Promise.all([a.client.expectNothing(), b.client.expectNothing(), c.client.expectNothing()]);
    });

    it('sends a string payload exactly as published', async () => {
      const a = await connect('alice');
      await a.client.subscribe(['news']);

      const answer = await call(server, 'POST', '/api/publish', { body: { topic: 'news', data: 'plain "text"' } });

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ delivered: 1 });
      expect((await a.client.next()).text).toBe('plain "text"');
    });

    it('answers 200 with the local delivery count for local: true', async () => {
      const a = await connect('alice');
      await a.client.subscribe(['news']);

      const answer = await call(server, 'POST', '/api/publish', { body: { topic: 'news', data: [1, 2], local: true } });

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ delivered: 1 });
      expect((await a.client.next()).text).toBe('[1,2]');
    });

    it('answers 200 with the local count for local: false without Redis', async () => {
      const a = await connect('alice');
      await a.client.subscribe(['news']);

      const answer = await call(server, 'POST', '/api/publish', { body: { topic: 'news', data: null, local: false } });

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ delivered: 1 });
      expect((await a.client.next()).text).toBe('null');
    });

    it('reaches the user topic the app subscribes each authenticated connection to', async () => {
      const a = await connect('alice');

      const answer = await call(server, 'POST', '/api/publish', {
        body: { topic: 'user:alice:events', data: { t: 'hi' } },
      });

      expect(answer.body).toEqual({ delivered: 1 });
      expect((await a.client.next()).text).toBe('{"t":"hi"}');
    });

    it('answers delivered 0 for a topic nobody subscribes to', async () => {
      const a = await connect('alice');

      const answer = await call(server, 'POST', '/api/publish', { body: { topic: 'nobody:here', data: 'x' } });

      expect(answer).toMatchObject({ status: 200, body: { delivered: 0 } });
      await a.client.expectNothing();
    });

    it('accepts a body just under 1 MiB', async () => {
      const data = 'x'.repeat(ONE_MIB - 100);
      const answer = await call(server, 'POST', '/api/publish', { body: { topic: 'nobody:here', data } });

      expect(answer).toMatchObject({ status: 200, body: { delivered: 0 } });
    });
  });

  describe('POST /api/broadcast', () => {
    it('sends to every connection, subscribed or not, and answers the count', async () => {
      const a = await connect('alice');
      const b = await connect('bob');
      await a.client.subscribe(['news']);

      const answer = await call(server, 'POST', '/api/broadcast', {
        body: { data: { t: 'maintenance', p: { in: 5 } } },
      });

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ delivered: 2 });
      const expected = '{"t":"maintenance","p":{"in":5}}';
      expect((await a.client.next()).text).toBe(expected);
      expect((await b.client.next()).text).toBe(expected);
      await Promise.all([a.client.expectNothing(), b.client.expectNothing()]);
    });

    it('answers delivered 0 when nobody is connected', async () => {
      const answer = await call(server, 'POST', '/api/broadcast', { body: { data: 'x' } });

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ delivered: 0 });
    });
  });

  describe('POST /api/connections/:id/send', () => {
    it('sends to that connection only and answers sent: true', async () => {
      const a = await connect('alice');
      const b = await connect('bob');

      const answer = await call(server, 'POST', `/api/connections/${a.id}/send`, {
        body: { data: { t: 'note', p: { x: 1 } } },
      });

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ sent: true });
      expect((await a.client.next()).text).toBe('{"t":"note","p":{"x":1}}');
      await Promise.all([a.client.expectNothing(), b.client.expectNothing()]);
    });

    it('sends a string as-is', async () => {
      const a = await connect('alice');

      const answer = await call(server, 'POST', `/api/connections/${a.id}/send`, { body: { data: 'just text' } });

      expect(answer).toMatchObject({ status: 200, body: { sent: true } });
      expect((await a.client.next()).text).toBe('just text');
    });
  });

  describe('POST /api/connections/:id/subscribe', () => {
    it('subscribes the connection and answers all of its topics', async () => {
      const a = await connect('alice');

      const answer = await call(server, 'POST', `/api/connections/${a.id}/subscribe`, {
        body: { topics: ['news', 'alerts:*'] },
      });

      expect(answer.status).toBe(200);
      // CONTRACT: {"topics": [...all of its topics]}; the code adds failed_topics.
      expect(answer.body).toEqual({ topics: ['user:alice:events', 'news', 'alerts:*'], failed_topics: [] });

      const published = await call(server, 'POST', '/api/publish', { body: { topic: 'alerts:fire', data: 'fire' } });
      expect(published.body).toEqual({ delivered: 1 });
      expect((await a.client.next()).text).toBe('fire');
    });

    it('does not list a topic twice when subscribed twice', async () => {
      const a = await connect('alice');
      await call(server, 'POST', `/api/connections/${a.id}/subscribe`, { body: { topics: ['news'] } });

      const answer = await call(server, 'POST', `/api/connections/${a.id}/subscribe`, { body: { topics: ['news'] } });

      expect(answer.status).toBe(200);
      expect((answer.body as { topics: string[] }).topics).toEqual(['user:alice:events', 'news']);
    });
  });

  describe('POST /api/connections/:id/unsubscribe', () => {
    it('removes the given topics and answers the remaining ones', async () => {
      const a = await connect('alice');
      await a.client.subscribe(['news', 'alerts:*', 'sport']);

      const answer = await call(server, 'POST', `/api/connections/${a.id}/unsubscribe`, {
        body: { topics: ['news', 'alerts:*'] },
      });

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ topics: ['user:alice:events', 'sport'] });
      const published = await call(server, 'POST', '/api/publish', { body: { topic: 'news', data: 'x' } });
      expect(published.body).toEqual({ delivered: 0 });
      await a.client.expectNothing();
    });

    it('removes every topic when the body has no topics', async () => {
      const a = await connect('alice');
      await a.client.subscribe(['news', 'alerts:*']);

      const answer = await call(server, 'POST', `/api/connections/${a.id}/unsubscribe`, { body: {} });

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ topics: [] });
      const published = await call(server, 'POST', '/api/publish', { body: { topic: 'user:alice:events', data: 'x' } });
      expect(published.body).toEqual({ delivered: 0 });
      await a.client.expectNothing();
    });

    it('removes every topic when there is no body at all', async () => {
      const a = await connect('alice');
      await a.client.subscribe(['news']);

      const answer = await call(server, 'POST', `/api/connections/${a.id}/unsubscribe`);

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ topics: [] });
    });
  });

  describe('GET /api/topics/:topic/subscribers', () => {
    it('counts exact subscribers plus matching patterns, deduplicated by connection', async () => {
      const a = await connect('alice');
      const b = await connect('bob');
      const c = await connect('carol');
      await a.client.subscribe(['user:1:events', 'user:*:events']);
      await b.client.subscribe(['user:*']);
      await c.client.subscribe(['user:2:events']);

      const answer = await call(server, 'GET', '/api/topics/user%3A1%3Aevents/subscribers');

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ topic: 'user:1:events', count: 2 });
    });

    it('counts the user topic, its own exact subscription and every pattern once per connection', async () => {
      const a = await connect('alice');
      const b = await connect('bob');
      await a.client.subscribe(['user:*:events', '*']);
      await b.client.subscribe(['user:*']);

      const answer = await call(server, 'GET', '/api/topics/user%3Aalice%3Aevents/subscribers');

      expect(answer.body).toEqual({ topic: 'user:alice:events', count: 2 });
    });

    it('answers count 0 for a topic nobody subscribes to', async () => {
      const answer = await call(server, 'GET', '/api/topics/nobody%3Ahere/subscribers');

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ topic: 'nobody:here', count: 0 });
    });
  });

  describe('GET /api/connections', () => {
    it('lists every connection with id, user_id, topics and connected_at', async () => {
      const before = Date.now();
      const a = await connect('alice');
      const b = await connect('bob');
      const after = Date.now();
      await a.client.subscribe(['news', 'alerts:*']);

      const answer = await call(server, 'GET', '/api/connections');

      expect(answer.status).toBe(200);
      const { connections } = answer.body as { connections: Array<Record<string, unknown>> };
      const byId = new Map(connections.map((c) => [c.id, c]));
      expect(connections).toHaveLength(2);
      expect(byId.get(a.id)).toEqual({
        id: a.id,
        user_id: 'alice',
        topics: ['user:alice:events', 'news', 'alerts:*'],
        connected_at: expect.any(String),
      });
      expect(byId.get(b.id)).toEqual({
        id: b.id,
        user_id: 'bob',
        topics: ['user:bob:events'],
        connected_at: expect.any(String),
      });
      for (const connection of connections) {
        const at = connection.connected_at as string;
        expect(new Date(at).toISOString()).toBe(at);
        expect(Date.parse(at)).toBeGreaterThanOrEqual(before - 1);
        expect(Date.parse(at)).toBeLessThanOrEqual(after + 1);
      }
    });

    it('answers an empty list when nobody is connected', async () => {
      const answer = await call(server, 'GET', '/api/connections');

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ connections: [] });
    });
  });

  describe('GET /api/snapshot', () => {
    it('answers 200 with the connection count in the snapshot', async () => {
      await connect('alice');

      const answer = await call(server, 'GET', '/api/snapshot');

      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ connections: 1, redis_connected: false });
    });
  });

  describe('unknown connection ids', () => {
    it.each([
      ['send', { data: 'x' }],
      ['subscribe', { topics: ['news'] }],
      ['unsubscribe', { topics: ['news'] }],
      ['unsubscribe', {}],
    ])('answers 404 on %s with body %j', async (action, body) => {
      const answer = await call(server, 'POST', `/api/connections/no-such-id/${action}`, { body });

      expect(answer.status).toBe(404);
      expect(answer.body).toEqual({ error: 'No connection "no-such-id" on this instance' });
    });
  });

  describe('authorization', () => {
    it.each(ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))(
      'answers 401 on %s without a key, with a wrong Bearer key and with Basic',
      async (_name, route) => {
        const attempts = [
          null,
          'Bearer wrong-key',
          `Bearer ${API_KEY}x`,
          `Basic ${Buffer.from(`user:${API_KEY}`).toString('base64')}`,
          `Basic ${API_KEY}`,
          API_KEY,
        ];
        for (const authorization of attempts) {
          const answer = await call(server, route.method, route.path, { body: route.body, authorization });
          expect({ authorization, status: answer.status, body: answer.body }).toEqual({
            authorization,
            status: 401,
            body: UNAUTHORIZED,
          });
        }
      },
    );

    it('does not publish when the key is wrong', async () => {
      const a = await connect('alice');
      await a.client.subscribe(['news']);

      const answer = await call(server, 'POST', '/api/publish', {
        body: { topic: 'news', data: 'x' },
        authorization: 'Bearer nope',
      });

      expect(answer.status).toBe(401);
      await a.client.expectNothing();
    });
  });

  describe('bad bodies', () => {
    const cases: ReadonlyArray<[string, string, unknown, { error: string; field: string }]> = [
      ['publish: topic missing', '/api/publish', { data: 'x' }, { error: 'Field "topic" is required', field: 'topic' }],
      [
        'publish: topic a number',
        '/api/publish',
        { topic: 42, data: 'x' },
        { error: 'Field "topic" must be a string', field: 'topic' },
      ],
      [
        'publish: topic empty',
        '/api/publish',
        { topic: '', data: 'x' },
        { error: 'Field "topic": topic is empty', field: 'topic' },
      ],
      [
        'publish: data missing',
        '/api/publish',
        { topic: 'news' },
        { error: 'Field "data" is required', field: 'data' },
      ],
      [
        'publish: local not a boolean',
        '/api/publish',
        { topic: 'news', data: 'x', local: 'yes' },
        { error: 'Field "local" must be a boolean', field: 'local' },
      ],
      ['broadcast: data missing', '/api/broadcast', {}, { error: 'Field "data" is required', field: 'data' }],
    ];

    it.each(cases)('answers 400 naming the field for %s', async (_name, path, body, expected) => {
      const answer = await call(server, 'POST', path, { body });

      expect(answer.status).toBe(400);
      expect(answer.body).toEqual(expected);
    });

    const connectionCases: ReadonlyArray<[string, string, unknown, { error: string; field: string }]> = [
      ['send: data missing', 'send', {}, { error: 'Field "data" is required', field: 'data' }],
      ['subscribe: topics missing', 'subscribe', {}, { error: 'Field "topics" is required', field: 'topics' }],
      [
        'subscribe: topics not an array',
        'subscribe',
        { topics: 'news' },
        { error: 'Field "topics" must be an array of strings', field: 'topics' },
      ],
      [
        'subscribe: topics with a non-string',
        'subscribe',
        { topics: ['news', 7] },
        { error: 'Field "topics" must be an array of strings', field: 'topics' },
      ],
      [
        'unsubscribe: topics not an array',
        'unsubscribe',
        { topics: 'news' },
        { error: 'Field "topics" must be an array of strings', field: 'topics' },
      ],
      [
        'unsubscribe: topics with a non-string',
        'unsubscribe',
        { topics: [null] },
        { error: 'Field "topics" must be an array of strings', field: 'topics' },
      ],
    ];

    it.each(connectionCases)('answers 400 naming the field for %s', async (_name, action, body, expected) => {
      const a = await connect('alice');

      const answer = await call(server, 'POST', `/api/connections/${a.id}/${action}`, { body });

      expect(answer.status).toBe(400);
      expect(answer.body).toEqual(expected);
      await a.client.expectNothing(50);
    });

    it('leaves the subscriptions alone when an unsubscribe body is invalid', async () => {
      const a = await connect('alice');
      await a.client.subscribe(['news']);

      await call(server, 'POST', `/api/connections/${a.id}/unsubscribe`, { body: { topics: 'news' } });

      const listed = await call(server, 'GET', '/api/connections');
      expect(listed.body).toEqual({
        connections: [expect.objectContaining({ id: a.id, topics: ['user:alice:events', 'news'] })],
      });
    });

    it('answers 400 for a body that is not valid JSON', async () => {
      const answer = await call(server, 'POST', '/api/publish', { raw: '{"topic": "news", data: x' });

      expect(answer.status).toBe(400);
    });

    it('answers 400 for a body that is not JSON at all (text/plain)', async () => {
      const answer = await call(server, 'POST', '/api/publish', {
        raw: 'topic=news&data=x',
        contentType: 'text/plain',
      });

      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({ error: 'Body must be a JSON object' });
    });

    it('answers 400 for a JSON array body', async () => {
      const answer = await call(server, 'POST', '/api/publish', { body: [{ topic: 'news', data: 'x' }] });

      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({ error: 'Body must be a JSON object' });
    });

    it('answers 400 for a JSON string body', async () => {
      const answer = await call(server, 'POST', '/api/broadcast', { raw: '"hello"' });

      expect(answer.status).toBe(400);
    });

    it('answers 413 for a body over 1 MiB and delivers nothing', async () => {
      const a = await connect('alice');
      await a.client.subscribe(['news']);

      const answer = await call(server, 'POST', '/api/publish', {
        body: { topic: 'news', data: 'x'.repeat(ONE_MIB + 1) },
      });

      expect(answer.status).toBe(413);
      await a.client.expectNothing();
    });
  });
});

describe('server API (apiKey unset)', () => {
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp({ auth: { jwtSecret: TEST_SECRET } }, { providers: [UserTopicOnConnect] });
  });
  afterAll(async () => {
    await server.close();
  });

  it.each(ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))(
    'answers 404 on %s, with or without a Bearer header',
    async (_name, route) => {
      for (const authorization of [null, `Bearer ${API_KEY}`, 'Bearer anything']) {
        const answer = await call(server, route.method, route.path, { body: route.body, authorization });
        expect({ authorization, status: answer.status }).toEqual({ authorization, status: 404 });
      }
    },
  );

  it('does not publish through a 404 route', async () => {
    const { client } = await TestClient.ready(`${server.wsUrl}?token=${signToken({ sub: 'alice' })}`);
    try {
      const answer = await call(server, 'POST', '/api/publish', { body: { topic: 'user:alice:events', data: 'x' } });

      expect(answer.status).toBe(404);
      await client.expectNothing();
    } finally {
      await client.close();
    }
  });
});
