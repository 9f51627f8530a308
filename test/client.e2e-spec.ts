import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  WseClient,
  type WseClientError,
  type WseClientOptions,
  type WseClientState,
  type WseMessage,
  type WseResyncEvent,
  type WseStateInfo,
} from 'nestjs-wse/client';
import WebSocket from 'ws';
import { httpCall } from './support/http.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { RedisServer } from './support/redis-server.js';
import { ServerProcess } from './support/server-process.js';
import { eventually } from './support/ws-client.js';

/**
 * `nestjs-wse/client` in Node (on `ws`, Node 20 has no global WebSocket) against the example
 * server run as its own process, as `npm start` runs it: connect, subscribe and receive; a
 * server restarted on the same port; a bad token; a server that stops pinging (SIGSTOP); the
 * outgoing queue; two instances on one Redis.
 */

const API_KEY = 'client-e2e-api-key';
const WAIT_MS = 10_000;

/** `ws`'s WebSocket, keeping every instance (one per connection attempt) and the frames each one sent and received. */
function recordingWebSocket() {
  const sockets: { url: string; sent: Record<string, unknown>[]; received: string[] }[] = [];
  class RecordingWebSocket extends WebSocket {
    private readonly record: (typeof sockets)[number];
    constructor(url: string) {
      super(url);
      this.record = { url, sent: [], received: [] };
      sockets.push(this.record);
      this.on('message', (data) => this.record.received.push(String(data)));
    }
    override send(data: string): void {
      this.record.sent.push(JSON.parse(data) as Record<string, unknown>);
      super.send(data);
    }
  }
  return { WebSocket: RecordingWebSocket, sockets };
}

/** A client with what it emitted recorded, closed after each test. */
interface Recorded {
  client: WseClient;
  sockets: ReturnType<typeof recordingWebSocket>['sockets'];
  states: [WseClientState, WseStateInfo][];
  messages: WseMessage[];
  resyncs: WseResyncEvent[];
  errors: WseClientError[];
}

let clients: WseClient[] = [];

function startClient(url: string, options: Partial<WseClientOptions> = {}): Recorded {
  const { WebSocket, sockets } = recordingWebSocket();
  const client = new WseClient({
    url,
    WebSocket,
    // Short waits, so a restart is caught in seconds; full jitter as in production.
    backoff: { initialDelayMs: 200, maxDelayMs: 1_000 },
    ...options,
  });
  clients.push(client);
  const recorded: Recorded = { client, sockets, states: [], messages: [], resyncs: [], errors: [] };
  client.on('state', (state, info) => recorded.states.push([state, info]));
  client.on('message', (message) => recorded.messages.push(message));
  client.on('resync', (event) => recorded.resyncs.push(event));
  client.on('error', (error) => recorded.errors.push(error));
  return recorded;
}

async function waitForState(recorded: Recorded, state: WseClientState, timeoutMs = WAIT_MS): Promise<void> {
  await eventually(() => recorded.client.state === state, timeoutMs, `client state ${state}`);
}

/** The `text` of each message received, in order: published `{text}` or a chat `{t, p: {text}}`. */
function texts(recorded: Recorded): unknown[] {
  return recorded.messages.map((message) => {
    const data = message.data as { text?: unknown; p?: { text?: unknown } };
    return data.text ?? data.p?.text;
  });
}

async function publish(server: ServerProcess, topic: string, data: unknown): Promise<Record<string, unknown>> {
  const answer = await httpCall(`${server.httpUrl}/api/publish`, 'POST', { topic, data }, API_KEY);
  if (answer.status !== 200 && answer.status !== 202) throw new Error(`publish: HTTP ${answer.status}`);
  return answer.body;
}

afterEach(() => {
  for (const client of clients) client.close();
  clients = [];
});

describe('nestjs-wse/client against the example server', () => {
  const env = { WSE_JWT_SECRET: TEST_SECRET, WSE_API_KEY: API_KEY, WSE_PING_INTERVAL_MS: '1000' };
  let server: ServerProcess;

  beforeAll(async () => {
    server = await ServerProcess.spawn(env);
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('connects, subscribes, receives what is published, sends events, and unsubscribes', async () => {
    const alice = startClient(server.wsUrl, { token: () => signToken({ sub: 'alice' }) });
    await waitForState(alice, 'open');
    expect(alice.client.details).toMatchObject({ user_id: 'alice', version: 1 });
    expect(alice.states.map(([state]) => state)).toEqual(['connecting', 'open']);

    const answer = await alice.client.subscribe(['news:a', 'user:*:events', '', 'chat:r1']);
    expect(answer.success_topics).toEqual(['news:a', 'user:*:events', 'chat:r1']);
    expect(answer.failed_topics).toEqual(['']);
    expect(answer.errors).toEqual([{ topic: '', reason: 'topic is empty' }]);

    expect(await publish(server, 'news:a', { text: 'headline' })).toEqual({ delivered: 1 });
    expect(await publish(server, 'user:7:events', 'plain text')).toEqual({ delivered: 1 });
    alice.client.send('chat_message', { room: 'r1', text: 'hi from alice' });
    await eventually(() => alice.messages.length === 3, WAIT_MS, 'three messages');
    expect(alice.messages[0]).toEqual({ data: { text: 'headline' }, raw: '{"text":"headline"}' });
    expect(alice.messages[1]).toEqual({ data: 'plain text', raw: 'plain text' });
    expect(alice.messages[2].data).toMatchObject({
      t: 'chat_message',
      p: { room: 'r1', text: 'hi from alice', user_id: 'alice' },
    });

    const left = await alice.client.unsubscribe('news:a');
    expect(left.success_topics).toEqual(['news:a']);
    expect(await publish(server, 'news:a', { text: 'not for alice' })).toEqual({ delivered: 0 });
    expect(alice.errors).toEqual([]);
  });

  it('turns an error frame of the server into an error event and stays open', async () => {
    const bob = startClient(server.wsUrl, { token: signToken({ sub: 'bob' }) });
    await waitForState(bob, 'open');
    bob.client.send('no_such_event', {});
    await eventually(() => bob.errors.length === 1, WAIT_MS, 'an error event');
    expect(bob.errors[0]).toMatchObject({ code: 'UNKNOWN_EVENT' });
    expect(bob.client.state).toBe('open');
  });

  describe('with a bad token', () => {
    it('tries at most twice with a token function, then stays closed with the reason', async () => {
      let asked = 0;
      const mallory = startClient(server.wsUrl, {
        token: () => signToken({ sub: `mallory-${++asked}` }, {}, 'not-the-server-secret-0123456789'),
      });
      await waitForState(mallory, 'closed');
      expect(mallory.sockets).toHaveLength(2);
      expect(asked).toBe(2);
      expect(mallory.errors).toEqual([{ code: 'AUTH_FAILED', message: 'Token signature is invalid', closeCode: 4401 }]);
      // Well past the backoff's first waits: no third attempt.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(mallory.sockets).toHaveLength(2);
      expect(mallory.client.state).toBe('closed');
    });

    it('tries once with a fixed token that is refused', async () => {
      const expired = startClient(server.wsUrl, { token: signToken({ sub: 'eve' }, { expiresIn: -10 }) });
      await waitForState(expired, 'closed');
      expect(expired.sockets).toHaveLength(1);
      expect(expired.errors).toEqual([{ code: 'AUTH_FAILED', message: 'Token has expired', closeCode: 4401 }]);
    });
  });

  it('reports what overflows the outgoing queue and sends the rest in order once connected', async () => {
    const observer = startClient(server.wsUrl, { token: signToken({ sub: 'observer' }) });
    await waitForState(observer, 'open');
    await observer.client.subscribe('chat:queue');

    const sender = startClient(server.wsUrl, {
      token: signToken({ sub: 'carol' }),
      autoConnect: false,
      maxQueuedFrames: 3,
    });
    const accepted = [1, 2, 3, 4, 5].map((n) =>
      sender.client.send('chat_message', { room: 'queue', text: `queued ${n}` }),
    );
    expect(accepted).toEqual([true, true, true, false, false]);
    expect(sender.errors).toEqual(
      [4, 5].map((n) => ({
        code: 'QUEUE_OVERFLOW',
        message: 'outgoing queue full (3 frames): chat_message not sent',
        frame: { type: 'chat_message', payload: { room: 'queue', text: `queued ${n}` } },
      })),
    );
    sender.client.connect();
    await eventually(() => observer.messages.length >= 3, WAIT_MS, 'the three queued messages');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(texts(observer)).toEqual(['queued 1', 'queued 2', 'queued 3']);
    expect(sender.client.queued).toBe(0);
  });
});

describe('nestjs-wse/client when the server goes away', () => {
  const env = { WSE_API_KEY: API_KEY, WSE_PING_INTERVAL_MS: '1000' };
  let server: ServerProcess;
  const stopped: ServerProcess[] = [];

  beforeAll(async () => {
    server = await ServerProcess.spawn(env);
  });

  afterAll(async () => {
    if (server?.pid !== undefined && server.running) process.kill(server.pid, 'SIGCONT');
    await Promise.allSettled([server?.stop(), ...stopped.map((old) => old.stop())]);
  });

  it('reconnects to a server restarted on the same port, resubscribes by itself in one frame, and gets the next message', async () => {
    const dave = startClient(server.wsUrl);
    await waitForState(dave, 'open');
    await dave.client.subscribe(['news:restart', 'alerts:*']);
    await publish(server, 'news:restart', { text: 'before' });
    await eventually(() => dave.messages.length === 1, WAIT_MS, 'the first message');
    const before = dave.client.details?.connection_id;

    await server.stop();
    stopped.push(server);
    await eventually(() => dave.client.state === 'reconnecting', WAIT_MS, 'reconnecting');
    expect(dave.states.find(([state]) => state === 'reconnecting')?.[1]).toMatchObject({
      attempt: 1,
      code: 1012,
      reason: 'service restart',
    });
    server = await ServerProcess.spawn(env, { port: server.port });

    await waitForState(dave, 'open', 20_000);
    expect(dave.client.details?.connection_id).not.toBe(before);
    await eventually(() => dave.resyncs.length === 2, WAIT_MS, 'a resync event per topic');
    // No history on this server: the application is told to reload both topics.
    expect(dave.resyncs).toEqual([
      { topic: 'news:restart', recovered: false, reason: 'reconnected' },
      { topic: 'alerts:*', recovered: false, reason: 'reconnected' },
    ]);
    const last = dave.sockets.at(-1)!;
    expect(last.sent.filter((frame) => frame.t === 'subscription')).toEqual([
      { t: 'subscription', p: { action: 'subscribe', topics: ['news:restart', 'alerts:*'] } },
    ]);
    expect(await publish(server, 'news:restart', { text: 'after' })).toEqual({ delivered: 1 });
    await eventually(() => dave.messages.length === 2, WAIT_MS, 'the message after the restart');
    expect(texts(dave)).toEqual(['before', 'after']);
    expect(dave.errors).toEqual([]);
  }, 45_000);

  it('takes a server that stops sending pings (SIGSTOP) for dead within interval + margin, and comes back after SIGCONT', async () => {
    const pingMarginMs = 1_000;
    const erin = startClient(server.wsUrl, { pingMarginMs, connectTimeoutMs: 2_000 });
    await waitForState(erin, 'open');
    // The interval comes with server_hello; a ping after it proves the server pings this connection.
    const socket = erin.sockets.at(-1)!;
    await eventually(
      () =>
        socket.received.findIndex((text) => text.includes('"t":"server_hello"')) >= 0 &&
        socket.received.some((text) => text.includes('"t":"ping"')),
      WAIT_MS,
      'server_hello and a ping',
    );
    const pid = server.pid!;
    const stoppedAt = Date.now();
    process.kill(pid, 'SIGSTOP');
    try {
      await eventually(() => erin.client.state === 'reconnecting', WAIT_MS, 'the watchdog to fire');
      const detectedMs = Date.now() - stoppedAt;
      const [, info] = erin.states.find(([state]) => state === 'reconnecting')!;
      expect(info).toMatchObject({ code: 4000, reason: 'no frame from the server within 2000 ms' });
      // The last ping came at most one interval (plus the server's sweep, 250 ms) before the
      // stop, and the watchdog fires interval + margin after it: between 750 and 2000 ms after
      // the stop. 1.5 s more for a loaded 2-core machine.
      expect(detectedMs).toBeGreaterThanOrEqual(700);
      expect(detectedMs).toBeLessThanOrEqual(2_000 + 1_500);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitForState(erin, 'open', 20_000);
    expect(erin.errors).toEqual([]);
  }, 45_000);
});

describe('nestjs-wse/client on two instances sharing Redis', () => {
  let redis: RedisServer;
  let env: Record<string, string>;
  let serverA: ServerProcess;
  let serverB: ServerProcess;
  const stopped: ServerProcess[] = [];

  beforeAll(async () => {
    redis = await RedisServer.launch();
    // History for hist:* where the server keeps it (CONTRACT section 11); ignored where it does not.
    env = { REDIS_URL: redis.url, WSE_API_KEY: API_KEY, WSE_RECOVERY_TOPICS: 'hist:*' };
    [serverA, serverB] = await Promise.all([ServerProcess.spawn(env), ServerProcess.spawn(env)]);
  }, 30_000);

  afterAll(async () => {
    await Promise.allSettled([serverA?.stop(), serverB?.stop(), ...stopped.map((old) => old.stop())]);
    await redis?.stop();
  });

  it('gets messages published on the other instance, before and after its own instance restarts', async () => {
    const frank = startClient(serverA.wsUrl);
    await waitForState(frank, 'open');
    await frank.client.subscribe('hist:room');
    await publish(serverB, 'hist:room', { text: 'before' });
    await eventually(() => frank.messages.length === 1, WAIT_MS, 'the message from instance B');

    await serverA.stop();
    stopped.push(serverA);
    await eventually(() => frank.client.state === 'reconnecting', WAIT_MS, 'reconnecting');
    for (const n of [1, 2, 3]) await publish(serverB, 'hist:room', { text: `away ${n}` });
    serverA = await ServerProcess.spawn(env, { port: serverA.port });
    await waitForState(frank, 'open', 20_000);
    await eventually(() => frank.resyncs.length === 1, WAIT_MS, 'the resync event');
    await publish(serverB, 'hist:room', { text: 'after' });
    await eventually(() => texts(frank).includes('after'), WAIT_MS, 'the message after the restart');
    await new Promise((resolve) => setTimeout(resolve, 300));

    if (frank.client.details?.features?.recovery === true) {
      // History on the server: what was published while away arrives once, in order.
      expect(texts(frank)).toEqual(['before', 'away 1', 'away 2', 'away 3', 'after']);
      expect(frank.resyncs).toEqual([{ topic: 'hist:room', recovered: true, lost: 0, reason: 'reconnected' }]);
      expect(frank.messages.every((message) => message.topic === 'hist:room')).toBe(true);
    } else {
      // No history yet (issue 12): at most once, and the application is told to reload.
      expect(texts(frank)).toEqual(['before', 'after']);
      expect(frank.resyncs).toEqual([{ topic: 'hist:room', recovered: false, reason: 'reconnected' }]);
    }
    expect(frank.errors).toEqual([]);
  }, 60_000);
});
