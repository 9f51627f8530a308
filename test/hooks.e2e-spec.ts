import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Inject, Injectable, Module, type DynamicModule, type INestApplication, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import WebSocket from 'ws';
import {
  OnWseConnect,
  OnWseDisconnect,
  OnWseEvent,
  TopicRegistryService,
  WseConfigError,
  WseEventError,
  WseModule,
  WseAdmin,
  WsePublisher,
  type WseConnectionInfo,
  type WseEventContext,
  type WseModuleOptions,
} from '../src/index.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * The library inside an application of its own (not the example app): WseModule.forRoot /
 * forRootAsync, the @OnWseConnect / @OnWseDisconnect / @OnWseEvent hooks, the bounded inbound
 * queue, authorizeSubscription, option validation and a custom path.
 */

// ---- a test application ---------------------------------------------------------------------

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** What the probe's hooks saw; one per app, so apps in this file do not share state. */
interface ProbeState {
  connects: Array<{ id: string; userId: string | null; claims: Record<string, unknown> | null }>;
  disconnects: Array<{ id: string; userId: string | null; topics: string[]; code: number }>;
  /** What `block` handlers wait on; the test resolves it. */
  gate: Deferred;
  blockStarted: number;
  blockFinished: number;
}

function newProbeState(): ProbeState {
  return { connects: [], disconnects: [], gate: deferred(), blockStarted: 0, blockFinished: 0 };
}

const PROBE_STATE = 'TEST:PROBE_STATE';
const TEST_CONFIG = 'TEST:CONFIG';

@Injectable()
class HooksProbe {
  constructor(
    @Inject(PROBE_STATE) private readonly state: ProbeState,
    @Inject(WsePublisher) private readonly wse: WsePublisher,
  ) {}

  @OnWseConnect()
  onConnect(connection: WseConnectionInfo): void {
    this.state.connects.push({ id: connection.id, userId: connection.userId, claims: connection.claims });
    if (connection.userId !== null) this.wse.subscribe(connection.id, [`user:${connection.userId}:events`]);
  }

  @OnWseDisconnect()
  onDisconnect(connection: WseConnectionInfo, code: number): void {
    this.state.disconnects.push({ id: connection.id, userId: connection.userId, topics: [...connection.topics], code });
  }

  @OnWseEvent('echo')
  echo(payload: Readonly<Record<string, unknown>>, { connection }: WseEventContext): unknown {
    return { echoed: payload, user_id: connection.userId };
  }

  @OnWseEvent('echo_text')
  async echoText(payload: Readonly<Record<string, unknown>>): Promise<string> {
    return `text:${String(payload.text)}`;
  }

  @OnWseEvent('silent')
  silent(): void {
    return undefined;
  }

  @OnWseEvent('fail_known')
  failKnown(): never {
    throw new WseEventError('SOME_CODE', 'msg');
  }

  @OnWseEvent('fail_plain')
  async failPlain(): Promise<never> {
    throw new Error('internal details that must not reach the client');
  }

  @OnWseEvent('fail_plain_sync')
  failPlainSync(): never {
    throw new TypeError('thrown synchronously');
  }

  @OnWseEvent('block')
  async block(payload: Readonly<Record<string, unknown>>): Promise<unknown> {
    this.state.blockStarted++;
    await this.state.gate.promise;
    this.state.blockFinished++;
    return { done: payload.n };
  }
}

/** A root module holding `wse` (a WseModule registration) and the probe. */
function testModule(wse: DynamicModule, state: ProbeState): Type {
  @Module({ imports: [wse], providers: [{ provide: PROBE_STATE, useValue: state }, HooksProbe] })
  class HooksTestModule {}
  return HooksTestModule;
}

/** A module exporting TEST_CONFIG, for forRootAsync({ imports, inject }). */
function configModule(config: WseModuleOptions): DynamicModule {
  class TestConfigModule {}
  const provider = { provide: TEST_CONFIG, useValue: config };
  return { module: TestConfigModule, providers: [provider], exports: [provider] };
}

interface CustomApp {
  readonly app: INestApplication;
  readonly state: ProbeState;
  readonly publisher: WsePublisher;
  readonly admin: WseAdmin;
  readonly registry: TopicRegistryService;
  url(path?: string): string;
  close(): Promise<void>;
}

async function startCustomApp(wse: DynamicModule, state = newProbeState()): Promise<CustomApp> {
  const app = await NestFactory.create(testModule(wse, state), { logger: false, abortOnError: false });
  app.useWebSocketAdapter(new WsAdapter(app));
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return {
    app,
    state,
    publisher: app.get(WsePublisher),
    admin: app.get(WseAdmin),
    registry: app.get(TopicRegistryService),
    url: (path = '/wse') => `ws://127.0.0.1:${port}${path}`,
    close: () => app.close(),
  };
}

/** A suite's clients, closed after each test; waits for the registry to be empty. */
function clientPool(getApp: () => CustomApp) {
  const open: TestClient[] = [];
  return {
    async ready(query = ''): Promise<{ client: TestClient; id: string }> {
      const { client, ready } = await TestClient.ready(`${getApp().url()}${query}`);
      open.push(client);
      return { client, id: (ready.p.details as { connection_id: string }).connection_id };
    },
    async closeAll(): Promise<void> {
      await Promise.all(open.splice(0).map((client) => client.close()));
      await eventually(() => getApp().registry.connectionCount === 0, 2_000, 'every connection to be unregistered');
    },
  };
}

/** Resolves with how an upgrade to `url` failed; rejects if it opened. */
function upgradeFailure(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('open', () => {
      socket.terminate();
      reject(new Error(`upgrade to ${url} succeeded`));
    });
    socket.once('error', (error) => resolve(error.message));
  });
}

const envelope = (t: string, p: Record<string, unknown>) => ({ c: 'WSE', t, p, v: 1 });

// ---- hooks and event handlers ---------------------------------------------------------------

describe('hooks and event handlers (forRoot with a JWT secret)', () => {
  let server: CustomApp;
  const clients = clientPool(() => server);

  beforeAll(async () => {
    server = await startCustomApp(WseModule.forRoot({ auth: { jwtSecret: TEST_SECRET } }));
  });
  afterEach(() => clients.closeAll());
  afterAll(async () => {
    await server.close();
  });

  describe('@OnWseConnect', () => {
    it('sees the user id and the verified claims', async () => {
      const { id } = await clients.ready(`?token=${signToken({ sub: 'alice', role: 'admin' })}`);

      await eventually(() => server.state.connects.some((c) => c.id === id), 2_000, 'the connect hook');
      expect(server.state.connects.find((c) => c.id === id)).toEqual({
        id,
        userId: 'alice',
        claims: { sub: 'alice', role: 'admin', iat: expect.any(Number), exp: expect.any(Number) },
      });
    });

    it('can subscribe the connection to user:{sub}:events so a publish there arrives', async () => {
      const alice = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);
      const bob = await clients.ready(`?token=${signToken({ sub: 'bob' })}`);

      expect(server.admin.getConnection(alice.id)?.topics).toEqual(new Set(['user:alice:events']));
      expect(server.publisher.publishLocal('user:alice:events', { t: 'notice', p: { n: 1 } })).toBe(1);

      expect((await alice.client.next()).text).toBe('{"t":"notice","p":{"n":1}}');
      await Promise.all([alice.client.expectNothing(), bob.client.expectNothing()]);
    });
  });

  describe('@OnWseDisconnect', () => {
    it('is called with the connection, its topics still visible, and the close code', async () => {
      const { client, id } = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);
      await client.subscribe(['news', 'alerts:*']);

      client.socket.close(4000, 'bye');
      await client.closed();

      await eventually(() => server.state.disconnects.some((d) => d.id === id), 2_000, 'the disconnect hook');
      expect(server.state.disconnects.filter((d) => d.id === id)).toEqual([
        { id, userId: 'alice', topics: ['user:alice:events', 'news', 'alerts:*'], code: 4000 },
      ]);
      expect(server.admin.getConnection(id)).toBeUndefined();
      expect(server.admin.getTopicSubscriberCount('news')).toBe(0);
    });

    it('gets 1005 when the client closes without a code', async () => {
      const { client, id } = await clients.ready(`?token=${signToken({ sub: 'bob' })}`);

      await client.close();

      await eventually(() => server.state.disconnects.some((d) => d.id === id), 2_000, 'the disconnect hook');
      expect(server.state.disconnects.find((d) => d.id === id)?.code).toBe(1005);
    });
  });

  describe('@OnWseEvent', () => {
    it('sends an object return value back to the client as JSON', async () => {
      const { client } = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);

      client.send({ t: 'echo', p: { a: 1, b: ['x'] } });

      expect((await client.next()).text).toBe('{"echoed":{"a":1,"b":["x"]},"user_id":"alice"}');
      await client.expectNothing();
    });

    it('sends a string resolved by an async handler as-is', async () => {
      const { client } = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);

      client.send({ t: 'echo_text', p: { text: 'hi' } });

      expect((await client.next()).text).toBe('text:hi');
    });

    it('sends nothing when the handler returns undefined', async () => {
      const { client } = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);

      client.send({ t: 'silent' });

      await client.expectNothing();
    });

    it('answers a WseEventError with an error frame carrying its code and message', async () => {
      const { client } = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);

      client.send({ t: 'fail_known', p: {} });

      expect((await client.next()).text).toBe('{"c":"WSE","t":"error","p":{"code":"SOME_CODE","message":"msg"},"v":1}');
      expect(client.isOpen).toBe(true);
    });

    it('answers any other error with INTERNAL_ERROR, without its details, and keeps the connection open', async () => {
      const { client } = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);

      client.send({ t: 'fail_plain', p: {} });

      expect(await client.nextJson()).toEqual(
        envelope('error', { code: 'INTERNAL_ERROR', message: 'Handler for event "fail_plain" failed' }),
      );
      client.send({ t: 'ping', p: { client_timestamp: 7 } });
      expect(await client.nextJson()).toEqual(
        envelope('PONG', { client_timestamp: 7, timestamp: null, server_timestamp: expect.any(Number) }),
      );
      client.send({ t: 'echo', p: { again: true } });
      expect((await client.next()).text).toBe('{"echoed":{"again":true},"user_id":"alice"}');
      expect(client.isOpen).toBe(true);
    });

    it('answers a synchronous plain throw with INTERNAL_ERROR too', async () => {
      const { client } = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);

      client.send({ t: 'fail_plain_sync' });

      expect(await client.nextJson()).toEqual(
        envelope('error', { code: 'INTERNAL_ERROR', message: 'Handler for event "fail_plain_sync" failed' }),
      );
      await client.expectNothing();
      expect(client.isOpen).toBe(true);
    });

    it('answers an event without a handler with UNKNOWN_EVENT', async () => {
      const { client } = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);

      client.send({ t: 'no_such_event', p: {} });

      expect(await client.nextJson()).toEqual(
        envelope('error', { code: 'UNKNOWN_EVENT', message: 'No handler for event "no_such_event"' }),
      );
      expect(client.isOpen).toBe(true);
    });
  });
});

// ---- the inbound queue ------------------------------------------------------------------------

describe('inbound queue (inboundQueueSize 2, inboundConcurrency 1)', () => {
  let server: CustomApp;
  const clients = clientPool(() => server);

  beforeAll(async () => {
    server = await startCustomApp(
      WseModule.forRoot({ auth: { anonymous: true }, inboundQueueSize: 2, inboundConcurrency: 1 }),
    );
  });
  afterEach(async () => {
    server.state.gate.resolve();
    await eventually(() => server.admin.healthSnapshot().inbound_queue_depth === 0, 2_000, 'the queue to drain');
    await clients.closeAll();
  });
  afterAll(async () => {
    await server.close();
  });

  it('refuses the 3rd pending event with OVERLOADED while ping, publishes and other clients keep working', async () => {
    const { client } = await clients.ready();
    const { client: other } = await clients.ready();
    await client.subscribe(['room']);
    await other.subscribe(['room']);
    server.state.gate = deferred();

    client.send({ t: 'block', p: { n: 1 } });
    client.send({ t: 'block', p: { n: 2 } });
    client.send({ t: 'block', p: { n: 3 } });

    expect(await client.nextJson()).toEqual(
      envelope('error', { code: 'OVERLOADED', message: 'Server is overloaded: the event was dropped, retry later' }),
    );
    expect(server.admin.healthSnapshot()).toMatchObject({ inbound_queue_depth: 2, inbound_dropped: 1 });
    expect(server.state.blockStarted).toBe(1);

    // Control frames do not wait behind the queue.
    client.send({ t: 'ping', p: { client_timestamp: 1 } });
    expect(await client.nextJson()).toEqual(
      envelope('PONG', { client_timestamp: 1, timestamp: null, server_timestamp: expect.any(Number) }),
    );
    other.send({ t: 'PING', p: { client_timestamp: 2 } });
    expect(await other.nextJson()).toEqual(
      envelope('PONG', { client_timestamp: 2, timestamp: null, server_timestamp: expect.any(Number) }),
    );
    expect((await client.subscribe(['more'])).p).toMatchObject({ success_topics: ['more'], failed_topics: [] });

    // Fan-out does not wait behind it either.
    expect(server.publisher.publishLocal('room', 'while blocked')).toBe(2);
    expect((await client.next()).text).toBe('while blocked');
    expect((await other.next()).text).toBe('while blocked');

    // The queue is shared: another client's event is refused too while it is full.
    other.send({ t: 'block', p: { n: 4 } });
    expect(await other.nextJson()).toEqual(
      envelope('error', { code: 'OVERLOADED', message: 'Server is overloaded: the event was dropped, retry later' }),
    );
    expect(server.admin.healthSnapshot()).toMatchObject({ inbound_queue_depth: 2, inbound_dropped: 2 });

    server.state.gate.resolve();

    const answers = await client.take(2);
    expect(answers.map((f) => f.text)).toEqual(['{"done":1}', '{"done":2}']);
    await Promise.all([client.expectNothing(), other.expectNothing()]);
    expect(server.state.blockFinished).toBe(2);
    expect(server.admin.healthSnapshot()).toMatchObject({ inbound_queue_depth: 0, inbound_dropped: 2 });
  });

  it('accepts events again once the queue has drained', async () => {
    const { client } = await clients.ready();
    server.state.gate = deferred();
    server.state.gate.resolve();
    const droppedBefore = server.admin.healthSnapshot().inbound_dropped;

    client.send({ t: 'block', p: { n: 'a' } });
    client.send({ t: 'block', p: { n: 'b' } });
    // One handler at a time: the answers come in arrival order.
    expect((await client.take(2)).map((f) => f.text)).toEqual(['{"done":"a"}', '{"done":"b"}']);

    client.send({ t: 'echo', p: {} });
    client.send({ t: 'echo_text', p: { text: 'x' } });
    expect((await client.take(2)).map((f) => f.text)).toEqual(['{"echoed":{},"user_id":null}', 'text:x']);
    await client.expectNothing();
    expect(server.admin.healthSnapshot().inbound_dropped).toBe(droppedBefore);
  });
});

// ---- authorizeSubscription ----------------------------------------------------------------------

const onlyOwnTopics = (connection: WseConnectionInfo, topic: string): boolean =>
  topic.startsWith(`user:${connection.userId}:`);

describe.each([
  [
    'a synchronous authorizer (forRoot)',
    () => WseModule.forRoot({ auth: { jwtSecret: TEST_SECRET }, authorizeSubscription: onlyOwnTopics }),
  ],
  [
    'an async authorizer (forRootAsync with useFactory and inject)',
    () =>
      WseModule.forRootAsync({
        imports: [configModule({ auth: { jwtSecret: TEST_SECRET } })],
        inject: [TEST_CONFIG],
        useFactory: async (config: WseModuleOptions): Promise<WseModuleOptions> => ({
          ...config,
          authorizeSubscription: async (connection, topic) => {
            await new Promise((resolve) => setTimeout(resolve, 5));
            return onlyOwnTopics(connection, topic);
          },
        }),
      }),
  ],
])('authorizeSubscription with %s', (_name, makeModule) => {
  let server: CustomApp;
  const clients = clientPool(() => server);

  beforeAll(async () => {
    server = await startCustomApp(makeModule());
  });
  afterEach(() => clients.closeAll());
  afterAll(async () => {
    await server.close();
  });

  it('subscribes allowed topics and puts refused ones in failed_topics', async () => {
    const { client } = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);

    const update = await client.subscribe(['user:alice:orders', 'user:bob:orders', 'user:*', 'news']);

    expect(update).toEqual(
      envelope('subscription_update', {
        action: 'subscribe',
        success: false,
        success_topics: ['user:alice:orders'],
        failed_topics: ['user:bob:orders', 'user:*', 'news'],
        errors: [
          { topic: 'user:bob:orders', reason: 'not authorized' },
          { topic: 'user:*', reason: 'not authorized' },
          { topic: 'news', reason: 'not authorized' },
        ],
      }),
    );
  });

  it('never delivers a refused topic', async () => {
    const { client } = await clients.ready(`?token=${signToken({ sub: 'alice' })}`);
    await client.subscribe(['user:alice:orders', 'user:bob:orders', 'user:*']);

    expect(server.publisher.publishLocal('user:bob:orders', 'for bob')).toBe(0);
    expect(server.publisher.publishLocal('user:carol:events', 'for carol')).toBe(0);
    await client.expectNothing();

    expect(server.publisher.publishLocal('user:alice:orders', 'for alice')).toBe(1);
    expect((await client.next()).text).toBe('for alice');
  });

  it('runs the connect hook in this app too (user topic subscribed, claims seen)', async () => {
    const { client, id } = await clients.ready(`?token=${signToken({ sub: 'dave' })}`);

    expect(server.state.connects.find((c) => c.id === id)).toMatchObject({ userId: 'dave', claims: { sub: 'dave' } });
    expect(server.publisher.publishLocal('user:dave:events', 'hello dave')).toBe(1);
    expect((await client.next()).text).toBe('hello dave');
  });
});

// ---- option validation ----------------------------------------------------------------------------

describe('option validation at start', () => {
  it('rejects app creation with a WseConfigError naming maxConnections (forRoot)', async () => {
    const creation = NestFactory.create(
      testModule(WseModule.forRoot({ auth: { anonymous: true }, maxConnections: -1 }), newProbeState()),
      {
        logger: false,
        abortOnError: false,
      },
    );

    const error = await creation.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(WseConfigError);
    expect((error as WseConfigError).message).toBe(
      'Invalid WseModule options:\n  - maxConnections: must be a positive integer (got -1)',
    );
    expect((error as WseConfigError).problems).toEqual([
      { path: 'maxConnections', rule: 'must be a positive integer', value: -1 },
    ]);
  });

  it('rejects app creation with a WseConfigError listing every bad option (forRootAsync)', async () => {
    const module = WseModule.forRootAsync({
      useFactory: () => ({ auth: { anonymous: true }, maxConnections: -1, path: 'no-slash', inboundConcurrency: 0 }),
    });

    const error = await NestFactory.create(testModule(module, newProbeState()), {
      logger: false,
      abortOnError: false,
    }).then(
      () => undefined,
      (reason: unknown) => reason,
    );

    expect(error).toBeInstanceOf(WseConfigError);
    expect((error as WseConfigError).problems.map((p) => p.path)).toEqual([
      'path',
      'maxConnections',
      'inboundConcurrency',
    ]);
  });
});

// ---- custom path ------------------------------------------------------------------------------------

describe("a custom path ('/custom')", () => {
  let server: CustomApp;

  beforeAll(async () => {
    server = await startCustomApp(WseModule.forRoot({ auth: { anonymous: true }, path: '/custom' }));
  });
  afterAll(async () => {
    await server.close();
  });

  it('serves the WebSocket at /custom', async () => {
    const { client, ready } = await TestClient.ready(server.url('/custom'));
    try {
      expect(ready).toMatchObject({ c: 'WSE', t: 'server_ready', v: 1 });
      client.send({ t: 'echo', p: { path: 'custom' } });
      expect((await client.next()).text).toBe('{"echoed":{"path":"custom"},"user_id":null}');
    } finally {
      await client.close();
    }
  });

  it('does not serve /wse: the upgrade fails', async () => {
    const failure = await upgradeFailure(server.url('/wse'));

    expect(failure).toEqual(expect.any(String));
    expect(server.registry.connectionCount).toBe(0);
  });
});
