import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { ClientOptions } from 'ws';
import { authFailures, closeReasons } from '../src/wse.messages.js';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { UserTopicOnConnect } from './support/user-topic.hooks.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * CONTRACT section 3: where the token is read from, what is checked, what a refused handshake
 * sees (one `AUTH_FAILED` error frame, then close 4401, nothing else), the connection limit, and
 * the `server_ready` frame of an accepted one.
 */

const API_KEY = 'handshake-api-key';
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The stream methods net.Socket implements for Writable: each call is one write to the kernel. */
interface WritableImpl {
  _write(chunk: unknown, encoding: BufferEncoding, callback: (error?: Error | null) => void): void;
  _writev(chunks: { chunk: unknown }[], callback: (error?: Error | null) => void): void;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** An unsigned token, built by hand: header `alg: none`, a payload, an empty signature. */
function unsignedToken(claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ iat: now, exp: now + 60, ...claims })}.`;
}

function withQuery(server: EngineApp, token: string): string {
  return `${server.wsUrl}?token=${encodeURIComponent(token)}`;
}

function cookie(value: string, name = 'access_token'): ClientOptions {
  return { headers: { cookie: `theme=dark; ${name}=${value}; lang=en` } };
}

function bearer(token: string): ClientOptions {
  return { headers: { authorization: `Bearer ${token}` } };
}

/** The connections the server API lists (the app's hook subscribes each one on connect). */
async function listConnections(server: EngineApp): Promise<unknown> {
  const response = await fetch(`${server.httpUrl}/api/connections`, {
    headers: { authorization: `Bearer ${API_KEY}` },
    signal: AbortSignal.timeout(5_000),
  });
  expect(response.status).toBe(200);
  return response.json();
}

/**
 * Connects, and asserts the whole life of a refused handshake: exactly one `AUTH_FAILED` frame
 * with `message`, then close 4401, and at no point a registered connection or a subscription.
 */
async function expectRefused(server: EngineApp, url: string, options: ClientOptions, message: string): Promise<void> {
  const client = await TestClient.connect(url, options);
  try {
    const first = await client.next();
    expect(JSON.parse(first.text)).toEqual({ c: 'WSE', t: 'error', p: { code: 'AUTH_FAILED', message }, v: 1 });
    expect(server.registry.connectionCount).toBe(0);
    expect(server.registry.topicCount).toBe(0);

    expect(await client.closed()).toEqual({ code: 4401, reason: closeReasons.authFailed() });
    expect(client.frames).toEqual([]);
    expect(server.registry.connectionCount).toBe(0);
    expect(server.registry.topicCount).toBe(0);
  } finally {
    await client.close();
  }
}

/** Connects, asserts the first frame is `server_ready`, and returns the client and its user id. */
async function expectAccepted(
  url: string,
  options: ClientOptions = {},
): Promise<{ client: TestClient; userId: unknown }> {
  const client = await TestClient.connect(url, options);
  const first = await client.nextEnvelope();
  expect(first.t).toBe('server_ready');
  return { client, userId: (first.p.details as Record<string, unknown>).user_id };
}

async function expectRegistryEmpty(server: EngineApp): Promise<void> {
  await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
  expect(server.registry.topicCount).toBe(0);
}

describe('handshake with a JWT secret (token sources, checks, refusals)', () => {
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp(
      { auth: { jwtSecret: TEST_SECRET }, apiKey: API_KEY },
      { providers: [UserTopicOnConnect] },
    );
  });
  afterEach(async () => {
    await expectRegistryEmpty(server);
  });
  afterAll(async () => {
    await server.close();
  });

  describe('refuses with AUTH_FAILED and close 4401', () => {
    it('when no token is sent at all', async () => {
      await expectRefused(server, server.wsUrl, {}, authFailures.missing());
    });

    it('when the token is not a JWT', async () => {
      await expectRefused(server, withQuery(server, 'not-a-jwt'), {}, authFailures.malformed());
    });

    it('when the token is signed with another secret', async () => {
      const token = signToken({ sub: 'mallory' }, {}, 'some-other-secret-0123456789abcdef');
      await expectRefused(server, withQuery(server, token), {}, authFailures.badSignature());
    });

    it('when the token says alg "none" and carries no signature', async () => {
      await expectRefused(
        server,
        withQuery(server, unsignedToken({ sub: 'mallory' })),
        {},
        authFailures.badAlgorithm(['HS256']),
      );
    });

    it('when the token is HS512, even signed with the right secret', async () => {
      const token = signToken({ sub: 'mallory' }, { algorithm: 'HS512' });
      await expectRefused(server, withQuery(server, token), {}, authFailures.badAlgorithm(['HS256']));
    });

    it('when the token has expired', async () => {
      const token = signToken({ sub: 'mallory' }, { expiresIn: -30 });
      await expectRefused(server, withQuery(server, token), {}, authFailures.expired());
    });

    it('when the token is not valid yet (nbf in the future)', async () => {
      const token = signToken({ sub: 'mallory' }, { notBefore: 120 });
      await expectRefused(server, withQuery(server, token), {}, authFailures.notYetValid());
    });

    it('when the cookie holds garbage, even with a valid token in the query (cookie wins)', async () => {
      const url = withQuery(server, signToken({ sub: 'from-query' }));
      await expectRefused(server, url, cookie('garbage'), authFailures.malformed());
    });

    it('when the Authorization header holds garbage, even with a valid token in the query (header wins)', async () => {
      const url = withQuery(server, signToken({ sub: 'from-query' }));
      await expectRefused(server, url, bearer('garbage'), authFailures.malformed());
    });

    it('when the cookie holds garbage, even with a valid Authorization header (cookie wins)', async () => {
      const options = {
        headers: { cookie: 'access_token=garbage', authorization: `Bearer ${signToken({ sub: 'from-header' })}` },
      };
      await expectRefused(server, server.wsUrl, options, authFailures.malformed());
    });

    it('and never registers or subscribes the refused connection', async () => {
      // The app's hook subscribes every accepted connection to user:{sub}:events; a refused
      // one must leave no trace, neither in the registry nor in the server API's listing.
      const token = signToken({ sub: 'mallory' }, { expiresIn: -30 });
      await expectRefused(server, withQuery(server, token), {}, authFailures.expired());
      expect(server.registry.patternCount).toBe(0);
      expect(await listConnections(server)).toEqual({ connections: [] });
    });
  });

  describe('accepts a valid token', () => {
    it('from the access_token cookie', async () => {
      const { client, userId } = await expectAccepted(server.wsUrl, cookie(signToken({ sub: 'cookie-user' })));
      expect(userId).toBe('cookie-user');
      await client.close();
    });

    it('from an Authorization: Bearer header', async () => {
      const { client, userId } = await expectAccepted(server.wsUrl, bearer(signToken({ sub: 'header-user' })));
      expect(userId).toBe('header-user');
      await client.close();
    });

    it('from the token query parameter', async () => {
      const { client, userId } = await expectAccepted(withQuery(server, signToken({ sub: 'query-user' })));
      expect(userId).toBe('query-user');
      await client.close();
    });

    it('from the cookie when the query holds garbage (cookie wins)', async () => {
      const { client, userId } = await expectAccepted(
        withQuery(server, 'garbage'),
        cookie(signToken({ sub: 'cookie-user' })),
      );
      expect(userId).toBe('cookie-user');
      await client.close();
    });

    it('from the header when the query holds garbage (header wins)', async () => {
      const { client, userId } = await expectAccepted(
        withQuery(server, 'garbage'),
        bearer(signToken({ sub: 'header-user' })),
      );
      expect(userId).toBe('header-user');
      await client.close();
    });

    it('from the cookie when all three sources hold valid tokens', async () => {
      const options = {
        headers: {
          cookie: `access_token=${signToken({ sub: 'cookie-user' })}`,
          authorization: `Bearer ${signToken({ sub: 'header-user' })}`,
        },
      };
      const { client, userId } = await expectAccepted(withQuery(server, signToken({ sub: 'query-user' })), options);
      expect(userId).toBe('cookie-user');
      await client.close();
    });

    it('from the header when header and query hold valid tokens', async () => {
      const url = withQuery(server, signToken({ sub: 'query-user' }));
      const { client, userId } = await expectAccepted(url, bearer(signToken({ sub: 'header-user' })));
      expect(userId).toBe('header-user');
      await client.close();
    });
  });

  describe('server_ready', () => {
    it('is the first frame, with version 1, the connection id, the server time and user_id = sub', async () => {
      const before = Date.now();
      const client = await TestClient.connect(withQuery(server, signToken({ sub: 'alice' })));
      try {
        const first = await client.next();
        const after = Date.now();
        expect(JSON.parse(first.text)).toEqual({
          c: 'WSE',
          t: 'server_ready',
          p: {
            message: 'Connection established',
            details: {
              version: 1,
              features: expect.any(Object),
              connection_id: expect.any(String),
              server_time: expect.stringMatching(ISO_8601),
              user_id: 'alice',
            },
          },
          v: 1,
        });
        const details = (JSON.parse(first.text) as { p: { details: { connection_id: string; server_time: string } } }).p
          .details;
        expect(details.connection_id.length).toBeGreaterThan(0);
        expect(server.registry.get(details.connection_id)?.userId).toBe('alice');
        const serverTime = Date.parse(details.server_time);
        expect(serverTime).toBeGreaterThanOrEqual(before);
        expect(serverTime).toBeLessThanOrEqual(after);
        await client.expectNothing(200);
      } finally {
        await client.close();
      }
    });

    it('leaves in the same socket write as the 101 response', async () => {
      // Records, for each write the server's TCP socket makes, how many chunks it carries.
      const writes: number[] = [];
      const recordWrites = (_request: IncomingMessage, socket: Socket): void => {
        const stream = socket as unknown as WritableImpl;
        const write = stream._write.bind(stream);
        const writev = stream._writev.bind(stream);
        stream._write = (chunk, encoding, callback) => {
          writes.push(1);
          write(chunk, encoding, callback);
        };
        stream._writev = (chunks, callback) => {
          writes.push(chunks.length);
          writev(chunks, callback);
        };
      };
      const httpServer = server.app.getHttpServer() as HttpServer;
      httpServer.prependListener('upgrade', recordWrites);
      try {
        const { client } = await TestClient.ready(withQuery(server, signToken({ sub: 'alice' })));
        await client.close();
        expect(writes[0]).toBe(2); // the 101 response and server_ready together
      } finally {
        httpServer.off('upgrade', recordWrites);
      }
    });

    it('gives every connection its own id', async () => {
      const token = signToken({ sub: 'alice' });
      const first = await TestClient.ready(withQuery(server, token));
      const second = await TestClient.ready(withQuery(server, token));
      try {
        const firstId = (first.ready.p.details as Record<string, unknown>).connection_id;
        const secondId = (second.ready.p.details as Record<string, unknown>).connection_id;
        expect(firstId).not.toBe(secondId);
        expect(server.registry.connectionCount).toBe(2);
      } finally {
        await first.client.close();
        await second.client.close();
      }
    });
  });
});

describe('handshake with an issuer and an audience configured', () => {
  const ISSUER = 'wse-tests';
  const AUDIENCE = 'wse-clients';
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp({ auth: { jwtSecret: TEST_SECRET, issuer: ISSUER, audience: AUDIENCE } });
  });
  afterEach(async () => {
    await expectRegistryEmpty(server);
  });
  afterAll(async () => {
    await server.close();
  });

  it('accepts a token with the right issuer and audience', async () => {
    const token = signToken({ sub: 'alice' }, { issuer: ISSUER, audience: AUDIENCE });
    const { client, userId } = await expectAccepted(withQuery(server, token));
    expect(userId).toBe('alice');
    await client.close();
  });

  it('refuses a token from another issuer', async () => {
    const token = signToken({ sub: 'alice' }, { issuer: 'someone-else', audience: AUDIENCE });
    await expectRefused(server, withQuery(server, token), {}, authFailures.wrongIssuer());
  });

  it('refuses a token for another audience', async () => {
    const token = signToken({ sub: 'alice' }, { issuer: ISSUER, audience: 'another-service' });
    await expectRefused(server, withQuery(server, token), {}, authFailures.wrongAudience());
  });
});

describe('handshake with a custom auth.cookieName', () => {
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp({ auth: { jwtSecret: TEST_SECRET, cookieName: 'wse_session' } });
  });
  afterEach(async () => {
    await expectRegistryEmpty(server);
  });
  afterAll(async () => {
    await server.close();
  });

  it('reads the token from the configured cookie', async () => {
    const { client, userId } = await expectAccepted(server.wsUrl, cookie(signToken({ sub: 'bob' }), 'wse_session'));
    expect(userId).toBe('bob');
    await client.close();
  });

  it('ignores the default access_token cookie', async () => {
    await expectRefused(server, server.wsUrl, cookie(signToken({ sub: 'bob' })), authFailures.missing());
  });
});

describe('handshake in anonymous mode (auth.anonymous)', () => {
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp({ auth: { anonymous: true } });
  });
  afterEach(async () => {
    await expectRegistryEmpty(server);
  });
  afterAll(async () => {
    await server.close();
  });

  it('accepts a connection without a token, with user_id null', async () => {
    const client = await TestClient.connect(server.wsUrl);
    try {
      expect(await client.nextEnvelope()).toEqual({
        c: 'WSE',
        t: 'server_ready',
        p: {
          message: 'Connection established',
          details: {
            version: 1,
            features: expect.any(Object),
            connection_id: expect.any(String),
            server_time: expect.stringMatching(ISO_8601),
            user_id: null,
          },
        },
        v: 1,
      });
    } finally {
      await client.close();
    }
  });
});

describe('handshake over maxConnections', () => {
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp({ maxConnections: 2 });
  });
  afterEach(async () => {
    await expectRegistryEmpty(server);
  });
  afterAll(async () => {
    await server.close();
  });

  it('refuses the third connection with 1013 "server full", and admits a new one once a slot frees', async () => {
    const first = await TestClient.ready(server.wsUrl);
    const second = await TestClient.ready(server.wsUrl);
    const opened: TestClient[] = [first.client, second.client];
    try {
      expect(server.registry.connectionCount).toBe(2);

      const third = await TestClient.connect(server.wsUrl);
      opened.push(third);
      expect(await third.closed()).toEqual({ code: 1013, reason: 'server full' });
      expect(third.frames).toEqual([]);
      expect(server.registry.connectionCount).toBe(2);

      await first.client.close();
      await eventually(() => server.registry.connectionCount === 1, 2_000, 'the closed connection to free its slot');

      const fourth = await TestClient.ready(server.wsUrl);
      opened.push(fourth.client);
      expect(fourth.ready.t).toBe('server_ready');
      expect(server.registry.connectionCount).toBe(2);
    } finally {
      for (const client of opened) await client.close();
    }
  });
});
