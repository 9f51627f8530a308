import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startApp, type RunningApp } from './support/app.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { TestClient } from './support/ws-client.js';

describe('example server, end to end', () => {
  let server: RunningApp;

  beforeAll(async () => {
    server = await startApp({ WSE_JWT_SECRET: TEST_SECRET, WSE_API_KEY: 'test-key' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('delivers an API publish to a subscribed client', async () => {
    const { client, ready } = await TestClient.ready(`${server.wsUrl}?token=${signToken({ sub: 'alice' })}`);
    expect(ready.p.details).toMatchObject({ user_id: 'alice', version: 1 });
    const update = await client.subscribe(['news:*']);
    expect(update.p).toMatchObject({ success_topics: ['news:*'], failed_topics: [] });

    const response = await fetch(`${server.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-key', 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'news:today', data: 'hello' }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ delivered: 1 });
    expect((await client.next()).text).toBe('hello');
    await client.close();
  });
});
