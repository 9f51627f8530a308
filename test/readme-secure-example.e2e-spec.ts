import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ValidationPipe, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import jwt from 'jsonwebtoken';
import { WseAdmin, WseWsAdapter } from '../src/index.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { TestClient } from './support/ws-client.js';

/** The README's sections on the pipeline, the connect guard, topic rules and tokens (examples/secure-app.ts). */
describe("the README's secure example app", () => {
  let app: INestApplication;
  let wsUrl: string;
  let timings: Array<{ event: string; ms: number }>;

  beforeAll(async () => {
    process.env.JWT_SECRET = TEST_SECRET;
    const example = await import('../examples/secure-app.js');
    app = await NestFactory.create(example.SecureAppModule, { logger: false, abortOnError: false });
    app.useWebSocketAdapter(new WseWsAdapter(app));
    app.useGlobalPipes(new ValidationPipe());
    app.useGlobalFilters(new example.RoomArchivedFilter());
    const timing = new example.TimingInterceptor();
    timings = timing.timings;
    app.useGlobalInterceptors(timing);
    await app.listen(0, '127.0.0.1');
    wsUrl = `ws://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}/wse`;
  });
  afterAll(async () => {
    await app.close();
    delete process.env.JWT_SECRET;
  });

  const ready = async (claims: Record<string, unknown>) =>
    (await TestClient.ready(`${wsUrl}?token=${signToken(claims)}`)).client;
  const error = (code: string, message: string, cid: string, extra: Record<string, unknown> = {}) => ({
    c: 'WSE',
    t: 'error',
    p: { code, message, ...extra },
    v: 1,
    cid,
  });

  it('publishes a valid chat message, timed by the interceptor', async () => {
    const alice = await ready({ sub: 'alice' });
    await alice.subscribe(['chat:lobby']);

    alice.send({ t: 'chat_message', p: { room: 'lobby', text: 'hi' }, id: '1' });

    expect(await alice.nextJson()).toEqual({
      t: 'chat_message',
      p: { room: 'lobby', text: 'hi', user_id: 'alice' },
    });
    expect(timings.map((t) => t.event)).toContain('chat_message');
    await alice.close();
  });

  it("answers INVALID_PAYLOAD, FORBIDDEN and the filter's own code, the connection staying open", async () => {
    const bob = await ready({ sub: 'bob' });
    bob.send({ t: 'chat_message', p: { room: 'Lobby!', text: 'hi' }, id: '2' });
    expect(await bob.nextJson()).toEqual(
      error('INVALID_PAYLOAD', 'Payload of event "chat_message" is invalid', '2', {
        errors: ['room must match /^[a-z0-9-]{1,32}$/ regular expression'],
      }),
    );
    bob.send({ t: 'chat_message', p: { room: 'archive', text: 'hi' }, id: '3' });
    expect(await bob.nextJson()).toEqual(error('ROOM_ARCHIVED', 'this room is read-only', '3'));
    expect(bob.isOpen).toBe(true);
    await bob.close();

    const muted = await ready({ sub: 'carol', muted: true });
    muted.send({ t: 'chat_message', p: { room: 'lobby', text: 'hi' }, id: '4' });
    expect(await muted.nextJson()).toEqual(error('FORBIDDEN', 'Forbidden resource', '4'));
    await muted.close();
  });

  it('refuses a suspended account with 4403 and enriches the others', async () => {
    const mallory = await TestClient.connect(`${wsUrl}?token=${signToken({ sub: 'mallory' })}`);
    expect(await mallory.closed()).toEqual({ code: 4403, reason: 'forbidden' });
    expect(mallory.frames).toEqual([]);

    const { client: alice, ready: greeting } = await TestClient.ready(`${wsUrl}?token=${signToken({ sub: 'alice' })}`);
    const id = (greeting.p.details as { connection_id: string }).connection_id;
    expect(app.get(WseAdmin).getConnection(id)?.claims).toMatchObject({ sub: 'alice', plan: 'pro' });
    await alice.close();
  });

  it('applies the topic rules and the token settings', async () => {
    const alice = await ready({ sub: 'alice' });
    expect((await alice.subscribe(['user:alice:*', 'user:*', 'prices:btc', 'prices:*', 'chat:staff'])).p).toMatchObject(
      {
        success_topics: ['user:alice:*', 'prices:btc'],
        failed_topics: ['user:*', 'prices:*', 'chat:staff'],
      },
    );
    await alice.close();

    const noExp = await TestClient.connect(`${wsUrl}?token=${jwt.sign({ sub: 'dave' }, TEST_SECRET)}`);
    expect(await noExp.nextJson()).toMatchObject({ p: { code: 'AUTH_FAILED', message: 'Token has no expiry (exp)' } });
    expect((await noExp.closed()).code).toBe(4401);
  });
});
