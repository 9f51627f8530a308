import type { Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { eventually, TestClient, withTimeout } from './support/ws-client.js';

/** `GET /health` (CONTRACT sections 7 and 8), `GET /api/snapshot` and shutdown. */

const API_KEY = 'health-key';

/** Every key of CONTRACT section 8 with the type it must have. */
const SNAPSHOT_KEYS = {
  connections: 'number',
  inbound_queue_depth: 'number',
  inbound_dropped: 'number',
  redis_connected: 'boolean',
  redis_messages_received: 'number',
  redis_messages_published: 'number',
  redis_messages_delivered: 'number',
  redis_messages_dropped: 'number',
  redis_publish_errors: 'number',
  redis_reconnect_count: 'number',
  redis_dlq_size: 'number',
  uptime_secs: 'number',
} as const;

const REDIS_COUNTERS = [
  'redis_messages_received',
  'redis_messages_published',
  'redis_messages_delivered',
  'redis_messages_dropped',
  'redis_publish_errors',
  'redis_reconnect_count',
  'redis_dlq_size',
] as const;

/** Fails naming the key when a contract key is missing or of the wrong type. */
function expectSnapshotShape(snapshot: Record<string, unknown>): void {
  const types = Object.fromEntries(Object.keys(SNAPSHOT_KEYS).map((key) => [key, typeof snapshot[key]]));
  expect(types).toEqual(SNAPSHOT_KEYS);
}

/** The snapshot values the contract fixes for a single instance without Redis. */
function expectSingleInstanceValues(snapshot: Record<string, unknown>, connections: number): void {
  expect(snapshot.connections).toBe(connections);
  expect(snapshot.redis_connected).toBe(false);
  for (const key of REDIS_COUNTERS) expect({ [key]: snapshot[key] }).toEqual({ [key]: 0 });
  expect(snapshot.inbound_queue_depth).toBe(0);
  expect(snapshot.inbound_dropped).toBe(0);
  expect(Number.isFinite(snapshot.uptime_secs)).toBe(true);
  expect(snapshot.uptime_secs as number).toBeGreaterThanOrEqual(0);
}

function without(record: Record<string, unknown>, key: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([k]) => k !== key));
}

async function getJson(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('health endpoint of an engine app without Redis', () => {
  let server: EngineApp;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startEngineApp({ apiKey: API_KEY });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
  });
  afterAll(async () => {
    await server.close();
  });

  async function openClients(count: number): Promise<void> {
    for (let i = 0; i < count; i++) clients.push((await TestClient.ready(server.wsUrl)).client);
  }

  it('answers 200 in the Terminus format with wse up', async () => {
    const { status, body } = await getJson(`${server.httpUrl}/health`);

    expect(status).toBe(200);
    expect(body).toEqual({
      status: 'ok',
      info: { wse: expect.objectContaining({ status: 'up' }) },
      error: {},
      details: { wse: expect.objectContaining({ status: 'up' }) },
    });
  });

  it('carries every snapshot key of the contract with the right type', async () => {
    const { body } = await getJson(`${server.httpUrl}/health`);
    const wse = (body.info as Record<string, Record<string, unknown>>).wse;

    expectSnapshotShape(wse);
    expectSingleInstanceValues(wse, 0);
  });

  it('counts the open ws clients in connections', async () => {
    await openClients(3);

    const { body } = await getJson(`${server.httpUrl}/health`);

    expect((body.info as Record<string, Record<string, unknown>>).wse.connections).toBe(3);
  });

  it('stops counting a client once it has closed', async () => {
    await openClients(2);
    await clients.pop()!.close();
    await eventually(() => server.registry.connectionCount === 1, 2_000, 'one connection to remain');

    const { body } = await getJson(`${server.httpUrl}/health`);

    expect((body.info as Record<string, Record<string, unknown>>).wse.connections).toBe(1);
  });

  it('reports an uptime that grows', async () => {
    const first = ((await getJson(`${server.httpUrl}/health`)).body.info as Record<string, Record<string, number>>).wse;
    // Wait on the clock, not a fixed sleep: poll until the reported uptime moves (bounded).
    let later = first;
    const deadline = Date.now() + 2_000;
    while (later.uptime_secs <= first.uptime_secs && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      later = ((await getJson(`${server.httpUrl}/health`)).body.info as Record<string, Record<string, number>>).wse;
    }

    expect(later.uptime_secs).toBeGreaterThan(first.uptime_secs);
  });

  it('GET /api/snapshot answers 200 with the same keys and values', async () => {
    await openClients(2);

    const snapshot = await getJson(`${server.httpUrl}/api/snapshot`, { authorization: `Bearer ${API_KEY}` });
    const health = await getJson(`${server.httpUrl}/health`);

    expect(snapshot.status).toBe(200);
    expectSnapshotShape(snapshot.body);
    expectSingleInstanceValues(snapshot.body, 2);
    // The health entry is the snapshot plus Terminus's `status`; uptime moves between the calls.
    const healthSnapshot = without((health.body.info as Record<string, Record<string, unknown>>).wse, 'status');
    expect(Object.keys(snapshot.body).sort()).toEqual(Object.keys(healthSnapshot).sort());
    expect(without(snapshot.body, 'uptime_secs')).toEqual(without(healthSnapshot, 'uptime_secs'));
  });
});

describe('shutdown of an engine app', () => {
  it('closes open clients with 1012 (service restart) and app.close() resolves without hanging', async () => {
    const server = await startEngineApp();
    const { client } = await TestClient.ready(server.wsUrl);
    const httpServer = server.app.getHttpServer() as Server;

    await withTimeout(server.close(), 5_000, 'app.close()');

    expect(await client.closed()).toEqual({ code: 1012, reason: 'service restart' });
    expect(httpServer.listening).toBe(false);
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'the registry to be empty');
    await expect(fetch(`${server.httpUrl}/health`)).rejects.toThrow();
  });

  it('closes promptly with no client connected', async () => {
    const server = await startEngineApp();
    await getJson(`${server.httpUrl}/health`);

    await withTimeout(server.close(), 5_000, 'app.close()');

    expect((server.app.getHttpServer() as Server).listening).toBe(false);
  });
});
