import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import jwt from 'jsonwebtoken';
import type { WseModuleOptions } from '../src/index.js';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * Issue 16, secure token defaults: `exp` required, the token's age, algorithms with a public key
 * or a JWKS served from 127.0.0.1, and a connection closed when its token expires.
 */

const nowSec = (): number => Math.floor(Date.now() / 1000);

/** The handshake was refused: one AUTH_FAILED frame with `reason`, then close 4401. */
async function expectRefused(url: string, reason: string): Promise<void> {
  const client = await TestClient.connect(url);
  expect(await client.nextJson()).toEqual({
    c: 'WSE',
    t: 'error',
    p: { code: 'AUTH_FAILED', message: reason },
    v: 1,
  });
  expect(await client.closed()).toEqual({ code: 4401, reason: 'authentication failed' });
  expect(client.frames).toEqual([]);
}

async function expectAccepted(url: string, userId: string): Promise<TestClient> {
  const { client, ready } = await TestClient.ready(url);
  expect((ready.p.details as { user_id: string }).user_id).toBe(userId);
  return client;
}

function withServer(options: WseModuleOptions) {
  const state: { server: EngineApp; open: TestClient[]; url(token: string): string } = {
    server: undefined as unknown as EngineApp,
    open: [],
    url: (token) => `${state.server.wsUrl}?token=${token}`,
  };
  beforeAll(async () => {
    state.server = await startEngineApp(options);
  });
  afterEach(async () => {
    await Promise.all(state.open.splice(0).map((client) => client.close()));
    await eventually(() => state.server.registry.connectionCount === 0, 2_000, 'every connection to close');
  });
  afterAll(async () => {
    await state.server.close();
  });
  return state;
}

describe('a secret, with the defaults', () => {
  const s = withServer({ auth: { jwtSecret: TEST_SECRET } });

  it('refuses a token without exp', async () => {
    await expectRefused(s.url(jwt.sign({ sub: 'forever' }, TEST_SECRET)), 'Token has no expiry (exp)');
  });

  it('closes a connection with 4401 "token expired" when its token expires, not before', async () => {
    const exp = nowSec() + 2;
    const client = await expectAccepted(s.url(jwt.sign({ sub: 'brief', exp }, TEST_SECRET)), 'brief');
    s.open.push(client);

    // Served normally until then.
    client.send({ t: 'ping' });
    expect(await client.nextJson()).toMatchObject({ t: 'PONG' });

    expect(await client.nextJson(4_000)).toEqual({
      c: 'WSE',
      t: 'error',
      p: { code: 'AUTH_FAILED', message: 'Token has expired' },
      v: 1,
    });
    const closed = await client.closed(1_000);
    const closedAtMs = Date.now();
    expect(closed).toEqual({ code: 4401, reason: 'token expired' });
    // At exp (whole seconds), give or take the timer's and the loop's slack.
    expect(closedAtMs).toBeGreaterThanOrEqual(exp * 1000 - 20);
    expect(closedAtMs).toBeLessThan(exp * 1000 + 1_500);
    await eventually(() => s.server.registry.connectionCount === 0, 2_000, 'the expired connection to be dropped');
  });

  it('keeps no expiry timer for a closed connection', async () => {
    const client = await expectAccepted(s.url(signToken({ sub: 'short' })), 'short');
    await client.close();
    await eventually(() => s.server.registry.connectionCount === 0, 2_000, 'the close');
    const { WseTokenExpiry } = await import('../src/transport/auth/token-expiry.js');
    expect(s.server.app.get(WseTokenExpiry).watched).toBe(0);
  });
});

describe('requireExp: false, maxTokenAgeSec: 3, clockToleranceSec: 1', () => {
  const s = withServer({
    auth: { jwtSecret: TEST_SECRET, requireExp: false, maxTokenAgeSec: 3, clockToleranceSec: 1 },
  });

  it('accepts a token without exp when it has an iat', async () => {
    s.open.push(await expectAccepted(s.url(jwt.sign({ sub: 'no-exp' }, TEST_SECRET)), 'no-exp'));
  });

  it('refuses a token without iat: its age cannot be checked', async () => {
    await expectRefused(
      s.url(jwt.sign({ sub: 'ageless' }, TEST_SECRET, { noTimestamp: true })),
      'Token has no issue time (iat), which the server needs to check its age',
    );
  });

  it('refuses a token older than maxTokenAgeSec plus the tolerance', async () => {
    const old = jwt.sign({ sub: 'old', iat: nowSec() - 10 }, TEST_SECRET, { expiresIn: 600 });
    await expectRefused(s.url(old), 'Token is older than the server accepts (iat)');
  });

  it('accepts an expired token within the tolerance', async () => {
    const token = jwt.sign({ sub: 'late', exp: nowSec() - 0 }, TEST_SECRET);
    s.open.push(await expectAccepted(s.url(token), 'late'));
  });

  it('closes the connection when the token reaches maxTokenAgeSec (plus tolerance), whatever its exp', async () => {
    const iat = nowSec() - 2;
    const client = await expectAccepted(
      s.url(jwt.sign({ sub: 'aging', iat }, TEST_SECRET, { expiresIn: 600 })),
      'aging',
    );
    s.open.push(client);
    expect(((await client.nextJson(4_000)) as { p: { message: string } }).p.message).toBe('Token has expired');
    expect(await client.closed(1_000)).toEqual({ code: 4401, reason: 'token expired' });
    expect(Date.now()).toBeGreaterThanOrEqual((iat + 3 + 1) * 1000 - 20);
  });
});

describe('a public key (RS256)', () => {
  const signer = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = signer.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const s = withServer({ auth: { publicKey: pem } });
  const rs256 = (key: KeyObject, claims: Record<string, unknown> = { sub: 'rsa-user' }) =>
    jwt.sign(claims, key, { algorithm: 'RS256', expiresIn: 60 });

  it('accepts a token signed with the matching private key', async () => {
    s.open.push(await expectAccepted(s.url(rs256(signer.privateKey)), 'rsa-user'));
  });

  it('refuses a token signed with another key', async () => {
    await expectRefused(s.url(rs256(other.privateKey)), 'Token signature is invalid');
  });

  it('refuses an HS256 token using the public key as its secret (algorithm confusion)', async () => {
    const forged = jwt.sign({ sub: 'mallory' }, pem, { algorithm: 'HS256', expiresIn: 60 });
    await expectRefused(s.url(forged), 'Token algorithm is not accepted (RS256 only)');
  });

  it('refuses an RS512 token from the right key: only RS256 is configured', async () => {
    const token = jwt.sign({ sub: 'x' }, signer.privateKey, { algorithm: 'RS512', expiresIn: 60 });
    await expectRefused(s.url(token), 'Token algorithm is not accepted (RS256 only)');
  });
});

describe('a public key (ES256)', () => {
  const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = signer.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const s = withServer({ auth: { publicKey: pem, algorithms: ['ES256'] } });

  it('accepts an ES256 token', async () => {
    const token = jwt.sign({ sub: 'ec-user' }, signer.privateKey, { algorithm: 'ES256', expiresIn: 60 });
    s.open.push(await expectAccepted(s.url(token), 'ec-user'));
  });
});

describe('a JWKS served from 127.0.0.1', () => {
  const signer = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let jwks: Server;
  let fetches = 0;
  let jwksUrl = '';
  let state: EngineApp;
  const open: TestClient[] = [];
  const url = (token: string) => `${state.wsUrl}?token=${token}`;
  const signed = (key: KeyObject, kid: string, claims: Record<string, unknown> = { sub: 'jwks-user' }) =>
    jwt.sign(claims, key, { algorithm: 'RS256', expiresIn: 60, keyid: kid });

  beforeAll(async () => {
    const jwk = { ...signer.publicKey.export({ format: 'jwk' }), kid: 'key-1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_request, response) => {
      fetches++;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/.well-known/jwks.json`;
    state = await startEngineApp({ auth: { jwksUrl, jwksCooldownMs: 60_000 } });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await state.close();
    await new Promise((resolve) => jwks.close(resolve));
  });

  it('accepts tokens signed with a key of the set, fetching the set once', async () => {
    open.push(await expectAccepted(url(signed(signer.privateKey, 'key-1')), 'jwks-user'));
    open.push(await expectAccepted(url(signed(signer.privateKey, 'key-1', { sub: 'second' })), 'second'));
    expect(fetches).toBe(1);
  });

  it('refuses a token signed with a key outside the set', async () => {
    await expectRefused(url(signed(stranger.privateKey, 'key-1')), 'Token signature is invalid');
  });

  it('refuses a token whose kid is unknown, without fetching again within the cooldown', async () => {
    const before = fetches;
    await expectRefused(url(signed(stranger.privateKey, 'key-9')), 'Token key (kid) is not in the key set');
    expect(fetches).toBe(before);
  });

  it('refuses a token without exp there too', async () => {
    const token = jwt.sign({ sub: 'forever' }, signer.privateKey, { algorithm: 'RS256', keyid: 'key-1' });
    await expectRefused(url(token), 'Token has no expiry (exp)');
  });

  it('refuses every token while the key set cannot be fetched', async () => {
    const unreachable = await startEngineApp({ auth: { jwksUrl: 'http://127.0.0.1:9/jwks.json' } });
    try {
      await expectRefused(
        `${unreachable.wsUrl}?token=${signed(signer.privateKey, 'key-1')}`,
        'Token keys could not be fetched: retry later',
      );
    } finally {
      await unreachable.close();
    }
  });
});
