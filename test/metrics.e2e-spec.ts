import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { parseExposition, type Exposition } from './support/prometheus.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * `GET /metrics` of WseHttpModule (issue "Operations"): Prometheus text read at scrape time,
 * every health-snapshot key as `wse_<key>`, the delivery, drop, close-code and breaker series,
 * the two histograms, Node's process metrics, and the optional API-key protection.
 */

// testTimeout in jest.config.js's project is not applied per project: the integration bound, here.
jest.setTimeout(30_000);

const API_KEY = 'metrics-api-key';

/** CONTRACT section 8, verbatim. */
const CONTRACT_SNAPSHOT_KEYS = [
  'connections',
  'inbound_queue_depth',
  'inbound_dropped',
  'redis_connected',
  'redis_messages_received',
  'redis_messages_published',
  'redis_messages_delivered',
  'redis_messages_dropped',
  'redis_publish_errors',
  'redis_reconnect_count',
  'redis_dlq_size',
  'uptime_secs',
];

const DROP_CAUSES = [
  'slow_consumer',
  'connection_closed',
  'inbound_queue_full',
  'rate_limited',
  'unknown_event',
  'redis_publish_failed',
];

async function scrape(server: EngineApp, authorization?: string): Promise<Response> {
  return fetch(`${server.httpUrl}/metrics`, {
    headers: authorization === undefined ? {} : { authorization },
    signal: AbortSignal.timeout(5_000),
  });
}

async function metrics(server: EngineApp): Promise<Exposition> {
  const response = await scrape(server);
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

async function publish(server: EngineApp, topic: string, data: unknown): Promise<unknown> {
  const response = await fetch(`${server.httpUrl}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ topic, data }),
    signal: AbortSignal.timeout(5_000),
  });
  return { status: response.status, body: await response.json() };
}

/** Cumulative `le` buckets of a histogram, in bound order, +Inf last. */
function buckets(exposition: Exposition, name: string): Array<[string, number]> {
  return exposition
    .series(`${name}_bucket`)
    .map(([labels, value]): [string, number] => [labels.le, value])
    .sort(([a], [b]) => (a === '+Inf' ? 1 : b === '+Inf' ? -1 : Number(a) - Number(b)));
}

describe('GET /metrics (open by default)', () => {
  let server: EngineApp;
  const opened: TestClient[] = [];

  async function connect(): Promise<TestClient> {
    const { client } = await TestClient.ready(server.wsUrl);
    opened.push(client);
    return client;
  }

  beforeEach(async () => {
    server = await startEngineApp({ apiKey: API_KEY });
  });
  afterEach(async () => {
    for (const client of opened.splice(0)) await client.close();
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
    await server.close();
  });

  it('answers Prometheus text with no caching', async () => {
    const response = await scrape(server);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const text = await response.text();
    expect(() => parseExposition(text)).not.toThrow();
  });

  it('has a wse_<key> series for every key of CONTRACT section 8, with the snapshot values of a fresh server', async () => {
    const exposition = await metrics(server);

    for (const key of CONTRACT_SNAPSHOT_KEYS) {
      expect([key, exposition.has(`wse_${key}`)]).toEqual([key, true]);
    }
    const { uptime_secs: uptime, ...rest } = Object.fromEntries(
      CONTRACT_SNAPSHOT_KEYS.map((key) => [key, exposition.value(`wse_${key}`)]),
    );
    expect(rest).toEqual({
      connections: 0,
      inbound_queue_depth: 0,
      inbound_dropped: 0,
      redis_connected: 0,
      redis_messages_received: 0,
      redis_messages_published: 0,
      redis_messages_delivered: 0,
      redis_messages_dropped: 0,
      redis_publish_errors: 0,
      redis_reconnect_count: 0,
      redis_dlq_size: 0,
    });
    expect(uptime).toBeGreaterThan(0);
    expect(uptime).toBeLessThan(60);
  });

  it('exports the snapshot extras, counters as counters and levels as gauges', async () => {
    const exposition = await metrics(server);

    expect({
      topics: exposition.value('wse_topics'),
      patterns: exposition.value('wse_patterns'),
      local_deliveries: exposition.value('wse_local_deliveries'),
      outbound_dropped: exposition.value('wse_outbound_dropped'),
    }).toEqual({ topics: 0, patterns: 0, local_deliveries: 0, outbound_dropped: 0 });
    expect({
      connections: exposition.types.get('wse_connections'),
      inbound_queue_depth: exposition.types.get('wse_inbound_queue_depth'),
      redis_connected: exposition.types.get('wse_redis_connected'),
      redis_publish_errors: exposition.types.get('wse_redis_publish_errors'),
      deliveries: exposition.types.get('wse_deliveries_total'),
      dropped: exposition.types.get('wse_messages_dropped_total'),
      closed: exposition.types.get('wse_connections_closed_total'),
      breaker: exposition.types.get('wse_circuit_breaker_state'),
      fanout: exposition.types.get('wse_fanout_size'),
      latency: exposition.types.get('wse_publish_to_write_seconds'),
    }).toEqual({
      connections: 'gauge',
      inbound_queue_depth: 'gauge',
      redis_connected: 'gauge',
      redis_publish_errors: 'counter',
      deliveries: 'counter',
      dropped: 'counter',
      closed: 'counter',
      breaker: 'gauge',
      fanout: 'histogram',
      latency: 'histogram',
    });
  });

  it('reports exact connection, subscription, delivery and fan-out figures', async () => {
    const alice = await connect();
    const bob = await connect();
    expect((await alice.subscribe(['news', 'alerts'])).p.success_topics).toEqual(['news', 'alerts']);
    // `n*` matches news too: bob still receives each news message once.
    expect((await bob.subscribe(['news', 'n*'])).p.success_topics).toEqual(['news', 'n*']);

    expect(await publish(server, 'news', { n: 1 })).toEqual({ status: 200, body: { delivered: 2 } });
    expect(await publish(server, 'alerts', { n: 2 })).toEqual({ status: 200, body: { delivered: 1 } });
    expect((await alice.take(2)).map((frame) => frame.text)).toEqual(['{"n":1}', '{"n":2}']);
    expect((await bob.take(1)).map((frame) => frame.text)).toEqual(['{"n":1}']);

    const exposition = await metrics(server);
    expect({
      connections: exposition.value('wse_connections'),
      topics: exposition.value('wse_topics'),
      patterns: exposition.value('wse_patterns'),
      deliveries: exposition.value('wse_deliveries_total'),
      local_deliveries: exposition.value('wse_local_deliveries'),
      fanout_count: exposition.value('wse_fanout_size_count'),
      fanout_sum: exposition.value('wse_fanout_size_sum'),
    }).toEqual({
      connections: 2,
      topics: 3,
      patterns: 1,
      deliveries: 3,
      local_deliveries: 3,
      fanout_count: 2,
      fanout_sum: 3,
    });
    // One message reached 2 connections, one reached 1: cumulative buckets from le=1 on.
    expect(buckets(exposition, 'wse_fanout_size')).toEqual([
      ['1', 1],
      ['2', 2],
      ['5', 2],
      ['10', 2],
      ['50', 2],
      ['100', 2],
      ['500', 2],
      ['1000', 2],
      ['5000', 2],
      ['10000', 2],
      ['50000', 2],
      ['+Inf', 2],
    ]);
    for (const cause of DROP_CAUSES) {
      expect([cause, exposition.value('wse_messages_dropped_total', { cause })]).toEqual([cause, 0]);
    }
    expect(exposition.value('wse_outbound_dropped')).toBe(0);
  });

  it('counts publish-to-write latency once per write turn, with consistent buckets', async () => {
    const client = await connect();
    await client.subscribe(['ticks']);
    for (let n = 1; n <= 5; n++) {
      expect(await publish(server, 'ticks', n)).toEqual({ status: 200, body: { delivered: 1 } });
      expect((await client.next()).text).toBe(String(n));
    }

    const exposition = await metrics(server);
    const latency = buckets(exposition, 'wse_publish_to_write_seconds');
    const count = exposition.value('wse_publish_to_write_seconds_count');
    // At least server_ready, subscription_update and the five messages went out, in separate turns.
    expect(count).toBeGreaterThanOrEqual(7);
    expect(latency.map(([le]) => le)).toEqual([
      '0.00005',
      '0.0001',
      '0.00025',
      '0.0005',
      '0.001',
      '0.0025',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '1',
      '+Inf',
    ]);
    expect(latency.at(-1)).toEqual(['+Inf', count]);
    for (let i = 1; i < latency.length; i++) expect(latency[i][1]).toBeGreaterThanOrEqual(latency[i - 1][1]);
    const sum = exposition.value('wse_publish_to_write_seconds_sum');
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(count); // each turn took well under a second
  });

  it('counts closed connections by close code', async () => {
    const first = await connect();
    const second = await connect();
    const third = await connect();
    expect((await metrics(server)).series('wse_connections_closed_total')).toEqual([]);

    first.socket.close(1000, 'done');
    second.socket.close(1000, 'done');
    third.socket.close(4000, 'custom');
    await Promise.all([first.closed(), second.closed(), third.closed()]);
    await eventually(() => server.registry.connectionCount === 0, 2_000, 'the three connections to be unregistered');

    const exposition = await metrics(server);
    expect(Object.fromEntries(exposition.series('wse_connections_closed_total').map(([l, v]) => [l.code, v]))).toEqual({
      '1000': 2,
      '4000': 1,
    });
    expect(exposition.value('wse_connections')).toBe(0);
  });

  it('reports both circuit breakers closed, one line per state', async () => {
    const exposition = await metrics(server);

    expect(exposition.series('wse_circuit_breaker_state')).toEqual([
      [{ breaker: 'conn_breaker', state: 'CLOSED' }, 1],
      [{ breaker: 'conn_breaker', state: 'OPEN' }, 0],
      [{ breaker: 'conn_breaker', state: 'HALF_OPEN' }, 0],
      [{ breaker: 'pub_breaker', state: 'CLOSED' }, 1],
      [{ breaker: 'pub_breaker', state: 'OPEN' }, 0],
      [{ breaker: 'pub_breaker', state: 'HALF_OPEN' }, 0],
    ]);
  });

  it("includes Node's default process metrics", async () => {
    const exposition = await metrics(server);

    expect(exposition.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(exposition.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(exposition.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(1_000_000);
    expect(exposition.value('process_resident_memory_bytes')).toBeGreaterThan(1_000_000);
    expect(exposition.series('nodejs_version_info')).toEqual([
      [expect.objectContaining({ version: process.version }), 1],
    ]);
  });
});

describe('GET /metrics with requireApiKey: true', () => {
  let server: EngineApp;
  const refusal = { error: 'Missing or wrong API key: send Authorization: Bearer <WSE_API_KEY>' };

  beforeEach(async () => {
    server = await startEngineApp(
      { apiKey: API_KEY },
      { http: { api: true, metrics: { requireApiKey: true }, stats: true } },
    );
  });
  afterEach(async () => {
    await server.close();
  });

  it.each([
    ['no Authorization header', undefined],
    ['a wrong key', 'Bearer not-the-key'],
    ['the key with another scheme', `Basic ${API_KEY}`],
    ['the key without a scheme', API_KEY],
    ['an empty bearer', 'Bearer '],
  ])('answers 401 to %s', async (_what, authorization) => {
    const response = await scrape(server, authorization);

    expect(response.status).toBe(401);
    expect(await response.json()).toEqual(refusal);
  });

  it('answers 200 with the metrics to the API key', async () => {
    const response = await scrape(server, `Bearer ${API_KEY}`);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(parseExposition(await response.text()).value('wse_connections')).toBe(0);
  });

  it('leaves /health open', async () => {
    const response = await fetch(`${server.httpUrl}/health`, { signal: AbortSignal.timeout(5_000) });
    await response.arrayBuffer();
    expect(response.status).toBe(200);
  });
});
