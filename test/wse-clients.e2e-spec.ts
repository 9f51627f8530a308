import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Inject, Injectable, Module, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { encode } from '@msgpack/msgpack';
import {
  OnWseEvent,
  WseMetricsService,
  WseModule,
  WsePublisher,
  WseWsAdapter,
  type WseEventContext,
  type WseModuleOptions,
} from '../src/index.js';
import { invalidMessages } from '../src/wse.messages.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { parseExposition } from './support/prometheus.js';
import { eventually, TestClient, type Envelope } from './support/ws-client.js';

/**
 * Issue 14: WSE's own clients work unchanged. Their code is not in this repository (nor on npm);
 * each case sends exactly the frames a client sends and expects what it expects, as read in
 * silvermpx/wse: the 1.4 TypeScript SDK (`client/`, category prefixes `WSE{`/`S{`/`U{`), the
 * 2.x TypeScript SDK (`ts-client/`, a `"c"` field instead), and the Python client
 * (`python-client/`, cookie and Bearer header, prefix or `"c"` depending on its version).
 * What each client does on each close code is modelled in `reconnectsOn` (see
 * docs/PROTOCOL.md, "Compatibility with WSE clients").
 */

jest.setTimeout(30_000);

// ---- a test application ---------------------------------------------------------------------

interface Received {
  type: string;
  payload: Readonly<Record<string, unknown>>;
  userId: string | null;
}

const RECEIVED = 'TEST:RECEIVED';

@Injectable()
class ChatHandlers {
  constructor(@Inject(RECEIVED) private readonly received: Received[]) {}

  @OnWseEvent('chat_message')
  onChat(payload: Readonly<Record<string, unknown>>, { connection, frame }: WseEventContext): void {
    this.received.push({ type: frame.t, payload, userId: connection.userId });
  }
}

@Injectable()
class CatchAll {
  constructor(@Inject(RECEIVED) private readonly received: Received[]) {}

  @OnWseEvent('*')
  onAny(payload: Readonly<Record<string, unknown>>, { connection, frame }: WseEventContext): unknown {
    this.received.push({ type: frame.t, payload, userId: connection.userId });
    return { t: 'handled_by_catch_all', p: { type: frame.t } };
  }
}

@Module({})
class CompatAppModule {
  static with(options: WseModuleOptions, received: Received[], catchAll: boolean): DynamicModule {
    return {
      module: CompatAppModule,
      imports: [WseModule.forRoot(options)],
      providers: [{ provide: RECEIVED, useValue: received }, ChatHandlers, ...(catchAll ? [CatchAll] : [])],
    };
  }
}

interface CompatApp {
  readonly app: INestApplication;
  readonly port: number;
  readonly wsUrl: string;
  readonly publisher: WsePublisher;
  readonly received: Received[];
  dropped(cause: string): Promise<number>;
  close(): Promise<void>;
}

const apps: CompatApp[] = [];
const clients: TestClient[] = [];

async function startCompatApp(
  options: WseModuleOptions = {},
  { port = 0, catchAll = false }: { port?: number; catchAll?: boolean } = {},
): Promise<CompatApp> {
  const received: Received[] = [];
  const app = await NestFactory.create(
    CompatAppModule.with({ auth: { jwtSecret: TEST_SECRET }, ...options }, received, catchAll),
    { logger: process.env.WSE_TEST_LOGS === '1' ? undefined : false, abortOnError: false },
  );
  app.useWebSocketAdapter(new WseWsAdapter(app));
  await app.listen(port, '127.0.0.1');
  const bound = (app.getHttpServer().address() as { port: number }).port;
  const metrics = app.get(WseMetricsService);
  let closed = false;
  const running: CompatApp = {
    app,
    port: bound,
    wsUrl: `ws://127.0.0.1:${bound}/wse`,
    publisher: app.get(WsePublisher),
    received,
    dropped: async (cause) => parseExposition(await metrics.metrics()).value('wse_messages_dropped_total', { cause }),
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
  apps.push(running);
  return running;
}

/** The same server again on the port it had, as after a deploy (bounded retries while the port is released). */
async function restartOnSamePort(previous: CompatApp, options: WseModuleOptions = {}): Promise<CompatApp> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startCompatApp(options, { port: previous.port });
    } catch (error) {
      if (attempt >= 20 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  for (const app of apps.splice(0)) await app.close();
});

// ---- the three clients, frame by frame ------------------------------------------------------

type Category = 'WSE' | 'S' | 'U';

/** What a client sends and what it does when closed, as its source reads. */
interface WseClientModel {
  readonly name: string;
  /** Opens the socket with this client's URL and headers. */
  connect(wsUrl: string, token: string, topics: string[]): Promise<TestClient>;
  /** A message of `category`, encoded the way this client puts it on the wire. */
  encode(category: Category, message: Record<string, unknown>): string;
  /** Its heartbeat. */
  ping(timestamp: number): string;
  /** Its answer to the server's `ping`. */
  pong(serverPing: Envelope): string;
  /** The close codes after which it reconnects by itself (docs/PROTOCOL.md, "Compatibility with WSE clients"). */
  reconnectsOn(code: number): boolean;
}

const envelopeFields = (): { id: string; ts: string; v: 1 } => ({
  id: randomUUID(),
  ts: new Date().toISOString(),
  v: 1,
});

/** `client/` ConnectionManager.connectToEndpoint: the browser sends the cookie; the URL carries the topics. */
function sdkUrl(wsUrl: string, topics: string[], clientVersion: string): string {
  const url = new URL(wsUrl);
  if (topics.length > 0) url.searchParams.set('topics', topics.join(','));
  url.searchParams.set('client_version', clientVersion);
  url.searchParams.set('protocol_version', '1');
  url.searchParams.set('compression', 'true');
  url.searchParams.set('encryption', 'false');
  return url.toString();
}

const sdk14: WseClientModel = {
  name: 'the WSE 1.4 TypeScript SDK (client/)',
  connect: (wsUrl, token, topics) =>
    TestClient.connect(sdkUrl(wsUrl, topics, '1.4.4'), { headers: { Cookie: `access_token=${token}` } }),
  // ConnectionManager.send: `${prefix}${JSON.stringify(message)}`.
  encode: (category, message) => `${category}${JSON.stringify(message)}`,
  ping: (timestamp) => `WSE${JSON.stringify({ t: 'ping', p: { timestamp }, v: 1 })}`,
  // MessageProcessor.routeMessage, on a JSON ping.
  pong: (serverPing) =>
    `WSE${JSON.stringify({
      t: 'PONG',
      p: { server_timestamp: serverPing.p.timestamp ?? Date.now(), client_timestamp: Date.now() },
      v: 1,
    })}`,
  // ws.onclose: 1000/1001 final, 4401/4403 auth (token dropped), 4429 parked in ERROR, the rest reconnect.
  reconnectsOn: (code) => ![1000, 1001, 4401, 4403, 4429].includes(code),
};

const sdk2: WseClientModel = {
  name: 'the WSE 2.x TypeScript SDK (ts-client/)',
  connect: (wsUrl, token, topics) =>
    TestClient.connect(sdkUrl(wsUrl, topics, '2.4.1'), { headers: { Cookie: `access_token=${token}` } }),
  // ConnectionManager.send: JSON.stringify({ c: category, ...message }).
  encode: (category, message) => JSON.stringify({ c: category, ...message }),
  ping: (timestamp) => JSON.stringify({ c: 'WSE', t: 'ping', p: { timestamp }, v: 1 }),
  pong: (serverPing) =>
    JSON.stringify({
      c: 'WSE',
      t: 'PONG',
      p: {
        server_timestamp: serverPing.p.server_time ?? serverPing.p.timestamp ?? Date.now(),
        client_timestamp: Date.now(),
      },
      v: 1,
    }),
  // ws.onclose (2.4.1): 1000/1001 final; 4401/4403 only after a token refresh; 4429 and the rest reconnect.
  reconnectsOn: (code) => ![1000, 1001, 4401, 4403].includes(code),
};

let pythonSeq = 0;
const python: WseClientModel = {
  name: 'the WSE Python client (python-client/)',
  // connection.py _connect_ws and _build_url: cookie and Bearer header; each topic quoted, joined by ",".
  connect: (wsUrl, token, topics) => {
    const query = ['client_version=1.3.5', 'protocol_version=1', 'compression=true', 'encryption=false'];
    if (topics.length > 0) query.push(`topics=${topics.map((t) => encodeURIComponent(t)).join(',')}`);
    return TestClient.connect(`${wsUrl}?${query.join('&')}`, {
      headers: { Cookie: `access_token=${token}`, Authorization: `Bearer ${token}` },
    });
  },
  // protocol.py MessageCodec.encode: prefix + {t, p, id, seq, ts, v, pri?}.
  encode: (category, message) => `${category}${JSON.stringify({ ...message, seq: ++pythonSeq })}`,
  ping: (timestamp) => JSON.stringify({ c: 'WSE', t: 'ping', p: { timestamp }, v: 1 }),
  pong: (serverPing) =>
    JSON.stringify({
      c: 'WSE',
      t: 'PONG',
      p: { server_timestamp: serverPing.p.server_time ?? Date.now(), client_timestamp: Date.now() },
      v: 1,
    }),
  // websockets raises ConnectionClosedOK for 1000/1001/1005 (DISCONNECTED); 1008/4401/4403 stop; the rest reconnect.
  reconnectsOn: (code) => ![1000, 1001, 1005, 1008, 4401, 4403].includes(code),
};

const MODELS = [sdk14, sdk2, python];

/** The handshake a client performs after `server_ready`: client_hello, then (SDKs) its subscription and sync. */
function clientHello(model: WseClientModel, connectionId: string): string {
  return model.encode('WSE', {
    t: 'client_hello',
    p: {
      client_version: model === sdk14 ? '1.4.4' : model === sdk2 ? '2.4.1' : '1.3.5',
      protocol_version: 1,
      features: {
        compression: true,
        encryption: false,
        batching: true,
        priority_queue: true,
        circuit_breaker: true,
        offline_queue: true,
        message_signing: false,
        rate_limiting: true,
        health_check: true,
        metrics: true,
      },
      connection_id: connectionId,
    },
    ...envelopeFields(),
    pri: 10,
  });
}

function subscriptionUpdate(model: WseClientModel, action: 'subscribe' | 'unsubscribe', topics: string[]): string {
  return model.encode('WSE', { t: 'subscription_update', p: { action, topics }, ...envelopeFields(), pri: 8 });
}

function syncRequest(model: WseClientModel, topics: string[]): string {
  return model.encode('S', {
    t: 'sync_request',
    p: { topics, include_snapshots: true, include_history: false, last_sequence: 0 },
    ...envelopeFields(),
    pri: 8,
  });
}

/** Connects as the client does and reads `server_ready` and (with topics on the URL) its subscription answer. */
async function connectAs(
  model: WseClientModel,
  server: CompatApp,
  topics: string[],
  sub = 'user-42',
): Promise<{ client: TestClient; ready: Envelope }> {
  const client = await model.connect(server.wsUrl, signToken({ sub }), topics);
  clients.push(client);
  const ready = await client.nextEnvelope();
  expect(ready.t).toBe('server_ready');
  return { client, ready };
}

// ---- each client -----------------------------------------------------------------------------

describe.each(MODELS)('$name', (model) => {
  it('connects with the access_token cookie and gets server_ready, then the answer to the ?topics= of its URL', async () => {
    const server = await startCompatApp();
    const { client, ready } = await connectAs(model, server, ['chat:lobby', 'user:42:events']);
    expect(ready).toEqual({
      c: 'WSE',
      t: 'server_ready',
      p: {
        message: 'Connection established',
        details: expect.objectContaining({
          version: 1,
          connection_id: expect.any(String),
          user_id: 'user-42',
          features: expect.objectContaining({ category_prefix: true, msgpack: true, compression: true }),
        }) as unknown,
      },
      v: 1,
    });
    expect(await client.nextEnvelope()).toEqual({
      c: 'WSE',
      t: 'subscription_update',
      p: {
        action: 'subscribe',
        success: true,
        success_topics: ['chat:lobby', 'user:42:events'],
        failed_topics: [],
        errors: [],
      },
      v: 1,
    });
    await client.expectNothing(100);
  });

  it('runs its handshake: client_hello, subscription_update, sync_request, each answered, nothing refused', async () => {
    const server = await startCompatApp();
    const { client, ready } = await connectAs(model, server, []);
    const connectionId = (ready.p.details as { connection_id: string }).connection_id;

    client.send(clientHello(model, connectionId));
    expect(await client.nextEnvelope()).toMatchObject({
      t: 'server_hello',
      p: { protocol_version: 1, connection_id: connectionId, limits: { max_message_size: 1_048_576 } },
    });

    client.send(subscriptionUpdate(model, 'subscribe', ['chat:lobby']));
    expect(await client.nextEnvelope()).toEqual({
      c: 'WSE',
      t: 'subscription_update',
      p: { action: 'subscribe', success: true, success_topics: ['chat:lobby'], failed_topics: [], errors: [] },
      v: 1,
    });

    client.send(syncRequest(model, ['chat:lobby']));
    expect(await client.nextEnvelope()).toEqual({
      c: 'WSE',
      t: 'snapshot_complete',
      p: {
        message: 'Initial sync complete',
        success: true,
        snapshots_sent: [],
        topics: ['chat:lobby'],
        count: 0,
        details: {
          topics: ['chat:lobby'],
          last_sequence_processed: 0,
          connection_id: connectionId,
          timestamp: expect.any(String),
        },
      },
      v: 1,
    });
    await client.expectNothing(100);
  });

  it('receives what is published on a topic it subscribed its way, exactly as published, and nothing after unsubscribing', async () => {
    const server = await startCompatApp();
    const { client } = await connectAs(model, server, []);
    client.send(subscriptionUpdate(model, 'subscribe', ['chat:lobby']));
    await client.nextOfType('subscription_update');

    const message = { t: 'chat_message', p: { room: 'lobby', text: 'hello' }, id: 'm-1' };
    server.publisher.publish('chat:lobby', message);
    expect((await client.next()).text).toBe(JSON.stringify(message));

    client.send(subscriptionUpdate(model, 'unsubscribe', ['chat:lobby']));
    expect((await client.nextOfType('subscription_update')).p).toEqual({
      action: 'unsubscribe',
      success: true,
      success_topics: ['chat:lobby'],
      failed_topics: [],
      errors: [],
    });
    server.publisher.publish('chat:lobby', message);
    await client.expectNothing(150);
  });

  it('gets PONG echoing its p.timestamp, and its own PONG to the server ping gets no answer', async () => {
    const server = await startCompatApp({ pingIntervalMs: 200, idleTimeoutMs: 10_000 });
    const { client } = await connectAs(model, server, []);
    client.send(model.ping(1764237600000));
    const pong = await client.next();
    expect(pong.json).toEqual({
      c: 'WSE',
      t: 'PONG',
      p: { client_timestamp: null, timestamp: 1764237600000, server_timestamp: expect.any(Number) },
      v: 1,
    });
    // WSE's Python client recognises a PONG (and a ping) only within the first 25 characters.
    expect(pong.text.slice(0, 25)).toContain('"t":"PONG"');

    const ping = await client.next(2_000);
    expect(ping.json).toEqual({ c: 'WSE', t: 'ping', p: { server_time: expect.any(String) }, v: 1 });
    expect(ping.text.slice(0, 25)).toContain('"t":"ping"');
    client.send(model.pong(ping.json as Envelope));
    // Only further heartbeats may follow, no error.
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(client.frames.map((f) => (f.json as Envelope).t).filter((t) => t !== 'ping')).toEqual([]);
  });

  it('sends an application event its way, which the handler receives', async () => {
    const server = await startCompatApp();
    const { client } = await connectAs(model, server, []);
    client.send(model.encode('U', { t: 'chat_message', p: { room: 'lobby', text: 'hi' }, ...envelopeFields() }));
    await eventually(() => server.received.length === 1, 2_000, 'the handler');
    expect(server.received).toEqual([
      { type: 'chat_message', payload: { room: 'lobby', text: 'hi' }, userId: 'user-42' },
    ]);
    await client.expectNothing(100);
  });

  it('after a graceful restart is closed with a code it reconnects on, and gets its topics back its way', async () => {
    const first = await startCompatApp();
    const topics = ['chat:lobby'];
    const { client } = await connectAs(model, first, topics);
    expect((await client.nextEnvelope()).p.success_topics).toEqual(topics);

    const closing = client.closed(5_000);
    await first.close();
    const { code, reason } = await closing;
    expect({ code, reason }).toEqual({ code: 1012, reason: 'service restart' });
    expect(model.reconnectsOn(code)).toBe(true);
    // What it would not come back from: why the server does not use 1001 any more.
    expect(model.reconnectsOn(1001)).toBe(false);

    // The client's reconnect, against the restarted server: the SDKs put their active topics on
    // the URL again and resend subscription_update on server_ready; the Python client reconnects
    // without ?topics= and resubscribes with subscription_update once server_ready is in.
    const second = await restartOnSamePort(first);
    const again = await connectAs(model, second, model === python ? [] : topics);
    again.client.send(subscriptionUpdate(model, 'subscribe', topics));
    const answers = model === python ? 1 : 2;
    for (let i = 0; i < answers; i++) {
      expect((await again.client.nextOfType('subscription_update')).p).toMatchObject({
        success: true,
        success_topics: topics,
      });
    }

    second.publisher.publish('chat:lobby', { t: 'chat_message', p: { text: 'back' } });
    expect((await again.client.next()).json).toEqual({ t: 'chat_message', p: { text: 'back' } });
  });
});

// ---- binary frames ---------------------------------------------------------------------------

describe('binary frames M: (MessagePack) and C: (zlib)', () => {
  const mFrame = (value: unknown): Buffer => Buffer.concat([Buffer.from('M:'), Buffer.from(encode(value))]);
  const cFrame = (bytes: Buffer): Buffer => Buffer.concat([Buffer.from('C:'), deflateSync(bytes)]);

  async function readyClient(options: WseModuleOptions = {}): Promise<{ server: CompatApp; client: TestClient }> {
    const server = await startCompatApp(options);
    const { client } = await connectAs(sdk2, server, []);
    return { server, client };
  }

  /** The connection still answers: the proof it was kept after an error. */
  async function expectStillOpen(client: TestClient): Promise<void> {
    client.send(sdk2.ping(7));
    expect(await client.nextEnvelope()).toMatchObject({ t: 'PONG', p: { timestamp: 7 } });
    expect(client.isOpen).toBe(true);
  }

  it('accepts a MessagePack subscription and a MessagePack event (ts-bench format-comparison)', async () => {
    const { server, client } = await readyClient();
    client.socket.send(mFrame({ t: 'subscription_update', p: { action: 'subscribe', topics: ['trades'] } }));
    expect((await client.nextEnvelope()).p).toMatchObject({ success: true, success_topics: ['trades'] });
    client.socket.send(mFrame({ t: 'chat_message', p: { symbol: 'ES', price: 5234.75, qty: 2 } }));
    await eventually(() => server.received.length === 1, 2_000, 'the handler');
    expect(server.received[0].payload).toEqual({ symbol: 'ES', price: 5234.75, qty: 2 });
  });

  it('accepts zlib of JSON (ts-bench), of prefixed JSON (WSE servers) and of MessagePack (the v2 SDK)', async () => {
    const { server, client } = await readyClient();
    const event = { t: 'chat_message', p: { n: 1 } };
    client.socket.send(cFrame(Buffer.from(JSON.stringify(event))));
    client.socket.send(cFrame(Buffer.from(`U${JSON.stringify({ ...event, p: { n: 2 } })}`)));
    client.socket.send(cFrame(Buffer.from(encode({ ...event, p: { n: 3 } }))));
    await eventually(() => server.received.length === 3, 2_000, 'three events');
    expect(server.received.map((r) => r.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    await client.expectNothing(100);
  });

  it('refuses a zlib bomb with a clear error and keeps the connection', async () => {
    const { server, client } = await readyClient({ maxMessageBytes: 64 * 1024 });
    // 64 MiB of one byte compresses to about 64 KiB: under the frame limit, far over it inflated.
    const bomb = cFrame(Buffer.alloc(64 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(64 * 1024);
    client.socket.send(bomb);
    expect(await client.nextEnvelope(5_000)).toEqual({
      c: 'WSE',
      t: 'error',
      p: { code: 'INVALID_MESSAGE', message: invalidMessages.zlibTooLarge(64 * 1024) },
      v: 1,
    });
    expect(invalidMessages.zlibTooLarge(65_536)).toBe('Compressed frame (C:) inflates to more than 65536 bytes');
    await expectStillOpen(client);
    expect(server.received).toEqual([]);
  });

  it('refuses a malformed MessagePack frame with a clear error and keeps the connection', async () => {
    const { client } = await readyClient();
    client.socket.send(Buffer.from([0x4d, 0x3a, 0xc1, 0x00]));
    expect(await client.nextEnvelope()).toEqual({
      c: 'WSE',
      t: 'error',
      p: { code: 'INVALID_MESSAGE', message: 'MessagePack frame (M:) is malformed: Unrecognized type byte: 0xc1' },
      v: 1,
    });
    client.socket.send(Buffer.from('C:not zlib'));
    expect((await client.nextEnvelope()).p).toEqual({
      code: 'INVALID_MESSAGE',
      message: 'Compressed frame (C:) is not valid zlib data',
    });
    await expectStillOpen(client);
  });

  it('refuses M: and C: when they are switched off, and says so in features', async () => {
    const server = await startCompatApp({ compatibility: { msgpack: false, compression: false } });
    const { client, ready } = await connectAs(sdk2, server, []);
    expect((ready.p.details as { features: Record<string, boolean> }).features).toMatchObject({
      msgpack: false,
      compression: false,
      url_topics: true,
    });
    client.socket.send(mFrame({ t: 'chat_message' }));
    expect((await client.nextEnvelope()).p).toEqual({
      code: 'INVALID_MESSAGE',
      message: 'MessagePack frames (M:) are not accepted by this server',
    });
    client.socket.send(cFrame(Buffer.from('{"t":"chat_message"}')));
    expect((await client.nextEnvelope()).p).toEqual({
      code: 'INVALID_MESSAGE',
      message: 'Compressed frames (C:) are not accepted by this server',
    });
    await expectStillOpen(client);
  });
});

// ---- the rest of what WSE accepts ------------------------------------------------------------

describe('type / payload, ?topics= and authorization', () => {
  it('reads type and payload as t and p', async () => {
    const server = await startCompatApp();
    const { client } = await connectAs(sdk2, server, []);
    client.send({ type: 'subscription', payload: { action: 'subscribe', topics: ['a'] } });
    expect((await client.nextEnvelope()).p).toMatchObject({ success: true, success_topics: ['a'] });
    client.send({ type: 'chat_message', payload: { x: 1 } });
    await eventually(() => server.received.length === 1, 2_000, 'the handler');
    expect(server.received[0]).toMatchObject({ type: 'chat_message', payload: { x: 1 } });
  });

  it('puts ?topics= through authorizeSubscription and the topic rules, like any subscribe', async () => {
    const server = await startCompatApp({
      authorizeSubscription: (connection, topic) => topic !== `user:other:events` && connection.userId !== null,
    });
    const long = 'x'.repeat(257);
    const { client } = await connectAs(sdk14, server, ['user:42:events', 'user:other:events', long], 'user-42');
    expect((await client.nextEnvelope()).p).toEqual({
      action: 'subscribe',
      success: false,
      success_topics: ['user:42:events'],
      failed_topics: ['user:other:events', long],
      errors: [
        { topic: 'user:other:events', reason: 'not authorized' },
        { topic: long, reason: 'topic is longer than 256 bytes' },
      ],
    });
    server.publisher.publish('user:other:events', { t: 'secret' });
    await client.expectNothing(150);
  });

  it('refuses more ?topics= than one subscription may list, as it refuses such a frame', async () => {
    const server = await startCompatApp({ maxTopicsPerSubscription: 2 });
    const { client } = await connectAs(python, server, ['a', 'b', 'c']);
    expect((await client.nextEnvelope()).p).toEqual({
      code: 'INVALID_MESSAGE',
      message: 'subscription: at most 2 topics per message',
    });
    await client.expectNothing(100);
  });

  it('ignores ?topics= with compatibility.urlTopics off', async () => {
    const server = await startCompatApp({ compatibility: { urlTopics: false } });
    const { client, ready } = await connectAs(sdk14, server, ['a']);
    expect((ready.p.details as { features: Record<string, boolean> }).features.url_topics).toBe(false);
    await client.expectNothing(150);
  });

  it('adds id and ts to system frames when asked', async () => {
    const server = await startCompatApp({ systemFrames: { id: true, ts: true } });
    const { client, ready } = await connectAs(python, server, []);
    expect(ready).toMatchObject({ c: 'WSE', t: 'server_ready', id: expect.any(String), ts: expect.any(String) });
    client.send(python.ping(1));
    const pong = await client.next();
    expect(Object.keys(pong.json as object)).toEqual(['c', 't', 'id', 'ts', 'p', 'v']);
    expect((pong.json as { id: string }).id).not.toBe((ready as unknown as { id: string }).id);
    expect(pong.text.slice(0, 25)).toContain('"t":"PONG"');
  });
});

describe('unknown application events', () => {
  it("answers UNKNOWN_EVENT by default (CONTRACT section 4), which WSE's clients only log", async () => {
    const server = await startCompatApp();
    const { client } = await connectAs(sdk14, server, []);
    client.send(sdk14.encode('U', { t: 'trade_update', p: {}, ...envelopeFields() }));
    expect((await client.nextEnvelope()).p).toEqual({
      code: 'UNKNOWN_EVENT',
      message: 'No handler for event "trade_update"',
    });
  });

  it("drops them silently with unknownEvents: 'ignore', as WSE's server does, and counts them", async () => {
    const server = await startCompatApp({ unknownEvents: 'ignore' });
    const { client } = await connectAs(sdk2, server, []);
    for (let i = 0; i < 5; i++) client.send(sdk2.encode('U', { t: 'trade_update', p: { i } }));
    client.send(sdk2.ping(9));
    expect(await client.nextEnvelope()).toMatchObject({ t: 'PONG', p: { timestamp: 9 } });
    await client.expectNothing(100);
    expect(await server.dropped('unknown_event')).toBe(5);
  });

  it("hands them to an @OnWseEvent('*') catch-all, which answers like any handler", async () => {
    const server = await startCompatApp({}, { catchAll: true });
    const { client } = await connectAs(python, server, []);
    client.send(python.encode('U', { t: 'trade_update', p: { px: 1 } }));
    expect(await client.nextJson()).toEqual({ t: 'handled_by_catch_all', p: { type: 'trade_update' } });
    // A handler of its own still wins.
    client.send(python.encode('U', { t: 'chat_message', p: { text: 'x' } }));
    await eventually(() => server.received.length === 2, 2_000, 'both handlers');
    expect(server.received.map((r) => r.type)).toEqual(['trade_update', 'chat_message']);
    await client.expectNothing(100);
  });
});

describe('the default rate limit', () => {
  it('is not tripped by a client flooding at full speed, as ts-bench does, for 4 s', async () => {
    const server = await startCompatApp({ unknownEvents: 'ignore' });
    const { client } = await connectAs(sdk2, server, []);
    // ts-bench's throughput test: one payload, sent as fast as the socket takes it.
    const payload = Buffer.from(
      JSON.stringify({
        t: 'trade_update',
        p: { symbol: 'ES', side: 'buy', price: 5234.75, qty: 2, ts: '2026-02-23T14:30:00.123Z', data: 'x'.repeat(40) },
      }),
    );
    const socket = client.socket;
    const deadline = Date.now() + 4_000;
    let sent = 0;
    await new Promise<void>((resolve) => {
      const burst = (): void => {
        while (Date.now() < deadline) {
          if (socket.bufferedAmount > 16 * 1024 * 1024) {
            setTimeout(burst, 1);
            return;
          }
          socket.send(payload);
          if (++sent % 1000 === 0) {
            setImmediate(burst);
            return;
          }
        }
        resolve();
      };
      burst();
    });
    // Everything sent is handled before the ping's answer: one PONG, no RATE_LIMITED, no warning.
    client.send(sdk2.ping(11));
    expect(await client.nextEnvelope(20_000)).toMatchObject({ t: 'PONG', p: { timestamp: 11 } });
    // Against the former default (10,000/s) this flood is refused from its second second on.
    expect({ sent: sent > 40_000, dropped: await server.dropped('rate_limited') }).toEqual({ sent: true, dropped: 0 });
    expect(await server.dropped('unknown_event')).toBe(sent);
  });
});
