import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { startApp, type RunningApp } from './support/app.js';
import { parseExposition } from './support/prometheus.js';
import { upgradeStatus } from './support/upgrade.js';
import { eventually } from './support/ws-client.js';

/**
 * Variables of the example app that the engine's own suites cannot see, because they exist only
 * in examples/server/env.config.ts: they reach the module options and WseHttpModule as
 * documented. What the options themselves do is tested on an engine app (limits.e2e-spec.ts,
 * metrics.e2e-spec.ts).
 */

const API_KEY = 'wiring-api-key';

async function scrape(server: RunningApp, authorization?: string): Promise<Response> {
  return fetch(`${server.httpUrl}/metrics`, {
    headers: authorization === undefined ? {} : { authorization },
    signal: AbortSignal.timeout(5_000),
  });
}

describe('allowed origins (WSE_ALLOWED_ORIGINS in the example app)', () => {
  let server: RunningApp;

  beforeAll(async () => {
    server = await startApp({ WSE_ALLOWED_ORIGINS: 'https://a.example.com, https://b.example.com' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('accepts each listed origin and no Origin, and refuses another with 403', async () => {
    expect(await upgradeStatus(server.wsUrl, 'https://a.example.com')).toBe(101);
    expect(await upgradeStatus(server.wsUrl, 'https://b.example.com')).toBe(101);
    expect(await upgradeStatus(server.wsUrl)).toBe(101);
    expect(await upgradeStatus(server.wsUrl, 'https://c.example.com')).toBe(403);
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
  });
});

describe('GET /metrics in the example app', () => {
  let server: RunningApp | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('is open without WSE_METRICS_REQUIRE_KEY, even with WSE_API_KEY set', async () => {
    server = await startApp({ WSE_API_KEY: API_KEY });
    const response = await scrape(server);

    expect(response.status).toBe(200);
    expect(parseExposition(await response.text()).value('wse_connections')).toBe(0);
  });

  it('needs the API key with WSE_METRICS_REQUIRE_KEY=true', async () => {
    server = await startApp({ WSE_API_KEY: API_KEY, WSE_METRICS_REQUIRE_KEY: 'true' });

    const refused = await scrape(server);
    expect({ status: refused.status, body: await refused.json() }).toEqual({
      status: 401,
      body: { error: 'Missing or wrong API key: send Authorization: Bearer <WSE_API_KEY>' },
    });
    const answered = await scrape(server, `Bearer ${API_KEY}`);
    expect(answered.status).toBe(200);
    expect(parseExposition(await answered.text()).value('wse_connections')).toBe(0);
  });
});
