import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { fakeWebSocket, type FakeSocket } from '../../test/support/fake-websocket.js';
import { WseClient } from './wse-client.js';
import type {
  WseClientError,
  WseClientOptions,
  WseClientState,
  WseMessage,
  WseResyncEvent,
  WseStateInfo,
} from './types.js';

/** random() for the specs: 0.5, so every backoff wait is half its bound (1000, 2000, 4000 ms…). */
const HALF = () => 0.5;
/** The specs' backoff (bounds 2000, 4000, 8000 ms…), so the waits are round numbers whatever the defaults. */
const SPEC_BACKOFF = { initialDelayMs: 2000, factor: 2, maxDelayMs: 30_000 };

interface Harness {
  client: WseClient;
  sockets: FakeSocket[];
  last(): FakeSocket;
  states: [WseClientState, WseStateInfo][];
  messages: WseMessage[];
  resyncs: WseResyncEvent[];
  errors: WseClientError[];
}

let harnesses: Harness[] = [];

function start(options: Partial<WseClientOptions> = {}): Harness {
  const fake = fakeWebSocket();
  const client = new WseClient({
    url: 'ws://server.test/wse',
    WebSocket: fake.WebSocket,
    random: HALF,
    backoff: SPEC_BACKOFF,
    ...options,
  });
  const harness: Harness = {
    client,
    sockets: fake.sockets,
    last: fake.last,
    states: [],
    messages: [],
    resyncs: [],
    errors: [],
  };
  client.on('state', (state, info) => harness.states.push([state, info]));
  client.on('message', (message) => harness.messages.push(message));
  client.on('resync', (event) => harness.resyncs.push(event));
  client.on('error', (error) => harness.errors.push(error));
  harnesses.push(harness);
  return harness;
}

/** Lets promises (the token) and timers due within `ms` run. */
async function advance(ms = 0): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

/** Starts a client and opens its first connection. */
async function connected(options: Partial<WseClientOptions> = {}, details: Record<string, unknown> = {}) {
  const harness = start(options);
  await advance();
  harness.last().accept({ ping_interval: 25_000, ...details });
  return harness;
}

/** The subscription frames a socket sent, as their `p`. */
function subscriptions(socket: FakeSocket): Record<string, unknown>[] {
  return socket.framesOf('subscription').map((frame) => frame.p as Record<string, unknown>);
}

function stateNames(harness: Harness): WseClientState[] {
  return harness.states.map(([state]) => state);
}

/** A promise's outcome so far, without waiting for it. */
function track<T>(promise: Promise<T>): { value?: T; error?: Error; settled: boolean } {
  const outcome: { value?: T; error?: Error; settled: boolean } = { settled: false };
  promise.then(
    (value) => Object.assign(outcome, { value, settled: true }),
    (error: Error) => Object.assign(outcome, { error, settled: true }),
  );
  return outcome;
}

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  for (const harness of harnesses) harness.client.close();
  harnesses = [];
  // Nothing the client started may be left: every timer is cleared by close().
  expect(jest.getTimerCount()).toBe(0);
  jest.useRealTimers();
});

describe('WseClient', () => {
  describe('connecting', () => {
    it('emits connecting, then open once server_ready arrives, and exposes its details', async () => {
      const harness = start();
      expect(harness.client.state).toBe('connecting');
      await advance();
      expect(stateNames(harness)).toEqual(['connecting']);
      expect(harness.sockets).toHaveLength(1);
      expect(harness.last().url).toBe('ws://server.test/wse');
      expect(harness.last().binaryType).toBe('arraybuffer');
      harness.last().accept({ user_id: 'alice', connection_id: 'c-1' });
      expect(harness.states).toEqual([
        ['connecting', { attempt: 1 }],
        ['open', { attempt: 1 }],
      ]);
      expect(harness.client.details).toMatchObject({ user_id: 'alice', connection_id: 'c-1' });
    });

    it('passes the token as the token query parameter, joined with & when the URL has a query', async () => {
      const plain = start({ token: 'jwt.one' });
      const withQuery = start({ url: 'ws://server.test/wse?room=a', token: 'a b&c' });
      await advance();
      expect(plain.last().url).toBe('ws://server.test/wse?token=jwt.one');
      expect(withQuery.last().url).toBe('ws://server.test/wse?room=a&token=a%20b%26c');
    });

    it('sends no token parameter without a token (cookie or anonymous mode)', async () => {
      const harness = start({ token: () => null });
      await advance();
      expect(harness.last().token).toBeNull();
      expect(harness.last().url).toBe('ws://server.test/wse');
    });

    it('asks an async token function before every connection attempt', async () => {
      let calls = 0;
      const harness = start({ token: async () => `token-${++calls}` });
      await advance();
      expect(harness.last().token).toBe('token-1');
      harness.last().serverClose(1006);
      await advance(1000);
      expect(harness.sockets).toHaveLength(2);
      expect(harness.last().token).toBe('token-2');
    });

    it('does not connect before connect() with autoConnect: false', async () => {
      const harness = start({ autoConnect: false });
      await advance();
      expect(harness.sockets).toHaveLength(0);
      expect(harness.client.state).toBe('closed');
      harness.client.connect();
      await advance();
      expect(harness.sockets).toHaveLength(1);
    });

    it('throws at construction without a WebSocket class', () => {
      expect(() => new WseClient({ url: 'ws://x/wse' })).toThrow(
        'WseClient: no global WebSocket here; pass options.WebSocket (e.g. the ws package)',
      );
    });

    it('refuses an option that is not a positive number', () => {
      const { WebSocket } = fakeWebSocket();
      expect(() => new WseClient({ url: 'ws://x/wse', WebSocket, maxQueuedFrames: 0 })).toThrow(
        'WseClient: maxQueuedFrames must be a positive number (got 0)',
      );
    });

    it('gives up on an attempt without server_ready within connectTimeoutMs and retries', async () => {
      const harness = start({ connectTimeoutMs: 3000 });
      await advance(2999);
      expect(harness.last().terminated).toBe(false);
      await advance(1);
      expect(harness.sockets[0].terminated).toBe(true);
      expect(harness.states.at(-1)).toEqual([
        'reconnecting',
        { attempt: 2, delayMs: 1000, code: 4000, reason: 'no server_ready within 3000 ms' },
      ]);
      await advance(1000);
      expect(harness.sockets).toHaveLength(2);
    });

    it('reports a throwing token function and retries with backoff', async () => {
      let fail = true;
      const harness = start({
        token: () => {
          if (fail) throw new Error('session storage unavailable');
          return 'ok';
        },
      });
      await advance();
      expect(harness.sockets).toHaveLength(0);
      expect(harness.errors).toEqual([
        { code: 'TOKEN_FAILED', message: 'token() failed: session storage unavailable' },
      ]);
      expect(harness.client.state).toBe('reconnecting');
      fail = false;
      await advance(1000);
      expect(harness.last().token).toBe('ok');
    });
  });

  describe('close codes', () => {
    it.each([1008, 1009])('stops on %i: state closed and an error event, no new attempt', async (code) => {
      const harness = await connected();
      harness.last().serverClose(code, 'rate limit exceeded');
      expect(harness.client.state).toBe('closed');
      expect(harness.errors).toEqual([
        { code: 'CLOSED', message: `closed by the server with ${code} (rate limit exceeded)`, closeCode: code },
      ]);
      expect(harness.states.at(-1)).toEqual(['closed', { attempt: 0, code, reason: 'rate limit exceeded' }]);
      await advance(120_000);
      expect(harness.sockets).toHaveLength(1);
    });

    it.each([1000, 1001, 1006, 1011, 1012, 1013, 4300, 3999])('reconnects after %i', async (code) => {
      const harness = await connected();
      harness.last().serverClose(code, 'bye');
      expect(harness.states.at(-1)).toEqual(['reconnecting', { attempt: 1, delayMs: 1000, code, reason: 'bye' }]);
      await advance(999);
      expect(harness.sockets).toHaveLength(1);
      await advance(1);
      expect(harness.sockets).toHaveLength(2);
      harness.last().accept();
      expect(harness.client.state).toBe('open');
      expect(harness.errors).toEqual([]);
    });
  });

  describe('backoff', () => {
    it('waits full-jitter delays growing with each failed attempt, and starts over after open', async () => {
      const draws = [0.9, 0.1, 0.5, 0.999, 0.25];
      const harness = start({
        random: () => draws.shift() ?? 0.5,
        backoff: { initialDelayMs: 1000, factor: 2, maxDelayMs: 5000 },
      });
      await advance();
      const waits: (number | undefined)[] = [];
      for (let i = 0; i < 4; i++) {
        harness.last().serverClose(1006);
        waits.push(harness.states.at(-1)?.[1].delayMs);
        await advance(waits.at(-1));
      }
      // Bounds 1000, 2000, 4000, 5000 (capped) times 0.9, 0.1, 0.5, 0.999.
      expect(waits).toEqual([900, 200, 2000, 4995]);
      expect(harness.states.filter(([state]) => state === 'reconnecting').map(([, info]) => info.attempt)).toEqual([
        2, 3, 4, 5,
      ]);
      harness.last().accept();
      harness.last().serverClose(1001);
      // Back to the first bound: 1000 × 0.25.
      expect(harness.states.at(-1)).toEqual(['reconnecting', { attempt: 1, delayMs: 250, code: 1001, reason: '' }]);
    });

    it('tries at once when connect() is called while reconnecting', async () => {
      const harness = await connected();
      harness.last().serverClose(1006);
      harness.client.connect();
      await advance();
      expect(harness.sockets).toHaveLength(2);
      harness.last().accept({ ping_interval: 25_000 });
      // The skipped timer does not open a third socket later.
      await advance(20_000);
      expect(harness.sockets).toHaveLength(2);
    });
  });

  describe('authentication (4401)', () => {
    function refuse(socket: FakeSocket, message = 'Token has expired'): void {
      socket.system('error', { code: 'AUTH_FAILED', message });
      socket.serverClose(4401, 'authentication failed');
    }

    it('stops after one attempt with a fixed token: closed, and an error event with the reason', async () => {
      const harness = start({ token: 'expired.jwt' });
      await advance();
      refuse(harness.last());
      await advance();
      expect(harness.client.state).toBe('closed');
      expect(harness.errors).toEqual([{ code: 'AUTH_FAILED', message: 'Token has expired', closeCode: 4401 }]);
      await advance(120_000);
      expect(harness.sockets).toHaveLength(1);
    });

    it('asks the token function once more and connects at once with a new token', async () => {
      const tokens = ['old', 'fresh'];
      const harness = start({ token: () => tokens.shift() });
      await advance();
      refuse(harness.last());
      await advance();
      expect(harness.sockets.map((socket) => socket.token)).toEqual(['old', 'fresh']);
      harness.last().accept();
      expect(harness.client.state).toBe('open');
      expect(harness.errors).toEqual([]);
    });

    it('stops when the function gives the refused token again', async () => {
      const harness = start({ token: () => 'same' });
      await advance();
      refuse(harness.last(), 'Token signature is invalid');
      await advance();
      expect(harness.sockets).toHaveLength(1);
      expect(harness.client.state).toBe('closed');
      expect(harness.errors).toEqual([{ code: 'AUTH_FAILED', message: 'Token signature is invalid', closeCode: 4401 }]);
    });

    it('stops on a second 4401 in a row: at most two attempts', async () => {
      let n = 0;
      const harness = start({ token: () => `bad-${++n}` });
      await advance();
      refuse(harness.last());
      await advance();
      refuse(harness.last(), 'Token is malformed');
      await advance(120_000);
      expect(harness.sockets.map((socket) => socket.token)).toEqual(['bad-1', 'bad-2']);
      expect(harness.client.state).toBe('closed');
      expect(harness.errors).toEqual([{ code: 'AUTH_FAILED', message: 'Token is malformed', closeCode: 4401 }]);
    });

    it('asks once more again after a connection that did open', async () => {
      let n = 0;
      const harness = start({ token: () => `t${++n}` });
      await advance();
      refuse(harness.last());
      await advance();
      harness.last().accept();
      harness.last().serverClose(1001);
      await advance(1000);
      refuse(harness.last());
      await advance();
      expect(harness.sockets.map((socket) => socket.token)).toEqual(['t1', 't2', 't3', 't4']);
      expect(harness.client.state).toBe('reconnecting');
    });
  });

  describe('the server-ping watchdog', () => {
    it('learns the interval from server_hello (asked with client_hello) and answers pings with pong', async () => {
      const harness = start({ pingMarginMs: 500 });
      await advance();
      const socket = harness.last();
      socket.accept();
      expect(socket.framesOf('client_hello')).toEqual([{ t: 'client_hello', p: { client_version: '0.1.0' } }]);
      socket.system('server_hello', { ping_interval: 1000, server_version: '0.1.0' });
      for (let i = 0; i < 5; i++) {
        await advance(1000);
        socket.system('ping', { server_time: new Date().toISOString() });
      }
      expect(socket.terminated).toBe(false);
      expect(socket.framesOf('pong')).toHaveLength(5);
      expect(harness.messages).toEqual([]);
      expect(harness.client.hello).toEqual({ ping_interval: 1000, server_version: '0.1.0' });
      socket.serverClose(1006);
      expect(harness.client.hello).toBeUndefined();
    });

    it('takes a connection silent for interval + margin as dead, and reconnects', async () => {
      const harness = start({ pingMarginMs: 500 });
      await advance();
      const socket = harness.last();
      socket.accept({ ping_interval: 1000 });
      expect(socket.framesOf('client_hello')).toEqual([]);
      await advance(1000);
      socket.system('ping', {});
      await advance(1499);
      expect(socket.terminated).toBe(false);
      await advance(1);
      expect(socket.terminated).toBe(true);
      expect(harness.states.at(-1)).toEqual([
        'reconnecting',
        { attempt: 1, delayMs: 1000, code: 4000, reason: 'no frame from the server within 1500 ms' },
      ]);
      // The dead socket's own close event, whenever it comes, changes nothing.
      socket.serverClose(1006);
      await advance(1000);
      expect(harness.sockets).toHaveLength(2);
    });

    it('counts any frame, not only pings, as a sign of life', async () => {
      const harness = await connected({ pingMarginMs: 500 }, { ping_interval: 1000 });
      for (let i = 0; i < 10; i++) {
        await advance(1400);
        harness.last().deliver({ n: i });
      }
      expect(harness.last().terminated).toBe(false);
      expect(harness.messages).toHaveLength(10);
    });
  });

  describe('subscribe and unsubscribe', () => {
    it("sends one frame and resolves with the server's answer", async () => {
      const harness = await connected();
      const outcome = track(harness.client.subscribe(['chat:lobby', 'user:*:events', 'secret']));
      expect(subscriptions(harness.last())).toEqual([
        { action: 'subscribe', topics: ['chat:lobby', 'user:*:events', 'secret'] },
      ]);
      harness.last().answer('subscribe', ['chat:lobby', 'user:*:events'], ['secret']);
      await advance();
      expect(outcome.value).toEqual({
        action: 'subscribe',
        success_topics: ['chat:lobby', 'user:*:events'],
        failed_topics: ['secret'],
        errors: [{ topic: 'secret', reason: 'not authorized' }],
      });
      // A refused topic is not restored after a reconnect.
      expect(harness.client.topics).toEqual(['chat:lobby', 'user:*:events']);
    });

    it('matches answers to calls by topic, whatever order they come in', async () => {
      const harness = await connected();
      const first = track(harness.client.subscribe('a'));
      const second = track(harness.client.subscribe(['b', 'c']));
      harness.last().answer('subscribe', ['b', 'c']);
      harness.last().answer('subscribe', ['a']);
      await advance();
      expect(first.value?.success_topics).toEqual(['a']);
      expect(second.value?.success_topics).toEqual(['b', 'c']);
    });

    it('unsubscribes with one frame and resolves with the answer', async () => {
      const harness = await connected();
      void harness.client.subscribe(['a', 'b']);
      harness.last().answer('subscribe', ['a', 'b']);
      const outcome = track(harness.client.unsubscribe('a'));
      expect(subscriptions(harness.last()).at(-1)).toEqual({ action: 'unsubscribe', topics: ['a'] });
      harness.last().answer('unsubscribe', ['a']);
      await advance();
      expect(outcome.value?.success_topics).toEqual(['a']);
      expect(harness.client.topics).toEqual(['b']);
    });

    it('while disconnected: subscribe resolves from the resubscribe, unsubscribe at once', async () => {
      const harness = start();
      const subscribed = track(harness.client.subscribe(['a', 'b']));
      const unsubscribed = track(harness.client.unsubscribe('b'));
      await advance();
      expect(unsubscribed.value).toEqual({
        action: 'unsubscribe',
        success_topics: ['b'],
        failed_topics: [],
        errors: [],
      });
      harness.last().accept();
      expect(subscriptions(harness.last())).toEqual([{ action: 'subscribe', topics: ['a'] }]);
      harness.last().answer('subscribe', ['a']);
      await advance();
      // b was unsubscribed before anything was sent: the answer covers what was asked of the server.
      expect(subscribed.value?.success_topics).toEqual(['a']);
    });

    it('settles an unsubscribe in flight when the connection drops: the server forgot it all', async () => {
      const harness = await connected();
      void harness.client.subscribe('a');
      harness.last().answer('subscribe', ['a']);
      const outcome = track(harness.client.unsubscribe('a'));
      harness.last().serverClose(1006);
      await advance();
      expect(outcome.value).toEqual({ action: 'unsubscribe', success_topics: ['a'], failed_topics: [], errors: [] });
      await advance(1000);
      harness.last().accept({ ping_interval: 25_000 });
      expect(subscriptions(harness.last())).toEqual([]);
    });

    it('rejects after requestTimeoutMs without an answer from an open connection', async () => {
      const harness = await connected({ requestTimeoutMs: 2000 });
      const outcome = track(harness.client.subscribe('a'));
      await advance(1999);
      expect(outcome.settled).toBe(false);
      await advance(1);
      expect(outcome.error?.message).toBe('no answer to subscribe within 2000 ms');
    });

    it('carries a call in flight over a reconnect and answers it from the resubscribe', async () => {
      const harness = await connected({ requestTimeoutMs: 2000 });
      const outcome = track(harness.client.subscribe('a'));
      harness.last().serverClose(1006);
      await advance(5000);
      expect(outcome.settled).toBe(false);
      harness.last().accept();
      harness.last().answer('subscribe', ['a']);
      await advance();
      expect(outcome.value?.success_topics).toEqual(['a']);
      // Never confirmed before the loss: no resync owed for it.
      expect(harness.resyncs).toEqual([]);
    });

    it('rejects waiting calls on close(), and every call after it', async () => {
      const harness = await connected();
      const pending = harness.client.subscribe('a');
      harness.client.close();
      await expect(pending).rejects.toThrow('the client was closed');
      await expect(harness.client.subscribe('b')).rejects.toThrow('the client is closed: subscribe not sent');
    });

    it('splits a long list into frames of maxTopicsPerFrame and answers the call once all are in', async () => {
      const harness = await connected({ maxTopicsPerFrame: 2 });
      const outcome = track(harness.client.subscribe(['a', 'b', 'c', 'd', 'e']));
      expect(subscriptions(harness.last()).map((p) => p.topics)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
      harness.last().answer('subscribe', ['a', 'b']);
      harness.last().answer('subscribe', ['c', 'd']);
      await advance();
      expect(outcome.settled).toBe(false);
      harness.last().answer('subscribe', ['e']);
      await advance();
      expect(outcome.value?.success_topics).toEqual(['a', 'b', 'c', 'd', 'e']);
    });
  });

  describe('after a reconnect', () => {
    const RECOVERY = { features: { subscriptions: true, recovery: true } };

    async function subscribedTo(topics: string[], details: Record<string, unknown> = RECOVERY) {
      const harness = await connected({}, details);
      void harness.client.subscribe(topics);
      harness.last().answer('subscribe', topics);
      return harness;
    }

    async function reconnect(harness: Harness, details: Record<string, unknown> = RECOVERY): Promise<FakeSocket> {
      harness.last().serverClose(1001);
      await advance(1000);
      harness.last().accept({ ping_interval: 25_000, ...details });
      return harness.last();
    }

    it('resubscribes everything in one frame, with the positions of the history topics it saw', async () => {
      const harness = await subscribedTo(['chat:a', 'chat:b', 'news', 'user:*']);
      harness.last().deliver({ tp: 'chat:a', e: 'ep1', o: 41, text: 'x' });
      harness.last().deliver({ tp: 'chat:a', e: 'ep1', o: 42, text: 'y' });
      harness.last().deliver({ tp: 'chat:b', e: 'ep1', o: 7, text: 'z' });
      harness.last().deliver({ plain: true });
      const socket = await reconnect(harness);
      expect(socket.framesOf('subscription')).toEqual([
        {
          t: 'subscription',
          p: {
            action: 'subscribe',
            topics: ['chat:a', 'chat:b', 'news', 'user:*'],
            recover: true,
            recovery: { 'chat:a': { epoch: 'ep1', offset: 42 }, 'chat:b': { epoch: 'ep1', offset: 7 } },
          },
        },
      ]);
    });

    it('sends no recovery when the server does not advertise it', async () => {
      const harness = await subscribedTo(['chat:a'], {});
      harness.last().deliver({ tp: 'chat:a', e: 'ep1', o: 1 });
      const socket = await reconnect(harness, {});
      expect(subscriptions(socket)).toEqual([{ action: 'subscribe', topics: ['chat:a'] }]);
    });

    it('emits resync per topic: recovered, not recovered with the count lost, unknown across epochs', async () => {
      const harness = await subscribedTo(['a', 'b', 'c', 'plain']);
      harness.last().deliver({ tp: 'a', e: 'ep1', o: 5 });
      harness.last().deliver({ tp: 'b', e: 'ep1', o: 5 });
      harness.last().deliver({ tp: 'c', e: 'ep1', o: 5 });
      const socket = await reconnect(harness);
      socket.answer('subscribe', ['a', 'b', 'c', 'plain'], [], {
        recovery: {
          a: { epoch: 'ep1', offset: 8, recovered: true, count: 3 },
          b: { epoch: 'ep1', offset: 900, recovered: false, count: 0 },
          c: { epoch: 'ep2', offset: 3, recovered: false, count: 0 },
        },
      });
      expect(harness.resyncs).toEqual([
        { topic: 'a', recovered: true, lost: 0, reason: 'reconnected' },
        { topic: 'b', recovered: false, lost: 895, reason: 'reconnected' },
        { topic: 'c', recovered: false, reason: 'reconnected' },
        { topic: 'plain', recovered: false, reason: 'reconnected' },
      ]);
    });

    it('emits resync recovered: false for every topic when the server keeps no history', async () => {
      const harness = await subscribedTo(['a', 'b'], {});
      const socket = await reconnect(harness, {});
      socket.answer('subscribe', ['a', 'b']);
      expect(harness.resyncs.map(({ topic, recovered }) => [topic, recovered])).toEqual([
        ['a', false],
        ['b', false],
      ]);
    });

    it('drops the replayed messages it already delivered, once each, by (tp, e, o)', async () => {
      const harness = await subscribedTo(['a']);
      harness.last().deliver({ tp: 'a', e: 'ep1', o: 1, n: 1 });
      harness.last().deliver({ tp: 'a', e: 'ep1', o: 2, n: 2 });
      const socket = await reconnect(harness);
      // A replay overlapping what was seen (at-least-once after a bus gap), then live messages.
      for (const o of [2, 3, 4, 3, 5]) socket.deliver({ tp: 'a', e: 'ep1', o, n: o });
      socket.answer('subscribe', ['a'], [], {
        recovery: { a: { epoch: 'ep1', offset: 5, recovered: true, count: 3 } },
      });
      expect(harness.messages.map((m) => m.offset)).toEqual([1, 2, 3, 4, 5]);
      expect(harness.messages.at(-1)).toEqual({
        topic: 'a',
        epoch: 'ep1',
        offset: 5,
        data: { n: 5 },
        raw: '{"tp":"a","e":"ep1","o":5,"n":5}',
      });
    });

    it('accepts a new epoch from offset 1, and recovers from the position the answer reported', async () => {
      const harness = await subscribedTo(['a']);
      harness.last().deliver({ tp: 'a', e: 'ep1', o: 9 });
      let socket = await reconnect(harness);
      socket.answer('subscribe', ['a'], [], { recovery: { a: { epoch: 'ep2', offset: 0, recovered: false } } });
      socket.deliver({ tp: 'a', e: 'ep2', o: 1 });
      expect(harness.messages.map((m) => [m.epoch, m.offset])).toEqual([
        ['ep1', 9],
        ['ep2', 1],
      ]);
      socket = await reconnect(harness);
      expect(subscriptions(socket)[0].recovery).toEqual({ a: { epoch: 'ep2', offset: 1 } });
    });

    it('never drops a live message at the offset a fresh subscribe answer reported', async () => {
      const harness = await connected({}, RECOVERY);
      void harness.client.subscribe('a');
      harness.last().answer('subscribe', ['a'], [], { recovery: { a: { epoch: 'ep1', offset: 10 } } });
      // Published while the subscribe ran: counted in the answer's offset, delivered after it.
      harness.last().deliver({ tp: 'a', e: 'ep1', o: 10 });
      harness.last().deliver({ tp: 'a', e: 'ep1', o: 11 });
      expect(harness.messages.map((m) => m.offset)).toEqual([10, 11]);
      const socket = await reconnect(harness);
      expect(subscriptions(socket)[0].recovery).toEqual({ a: { epoch: 'ep1', offset: 11 } });
    });

    it('reports a topic the server now refuses, and stops restoring it', async () => {
      const harness = await subscribedTo(['a', 'b'], {});
      const socket = await reconnect(harness, {});
      socket.answer('subscribe', ['a'], ['b']);
      expect(harness.errors).toEqual([
        { code: 'SUBSCRIBE_FAILED', message: 'resubscribe to b refused: not authorized', topic: 'b' },
      ]);
      expect(harness.client.topics).toEqual(['a']);
    });
  });

  describe('a resync frame (the server lost its bus for a while)', () => {
    const RECOVERY = { features: { recovery: true } };

    async function subscribedWithHistory() {
      const harness = await connected({}, RECOVERY);
      void harness.client.subscribe(['a', 'b', 'plain', 'g:*']);
      harness.last().answer('subscribe', ['a', 'b', 'plain', 'g:*']);
      harness.last().deliver({ tp: 'a', e: 'ep1', o: 3 });
      harness.last().deliver({ tp: 'b', e: 'ep1', o: 6 });
      return harness;
    }

    it('recovers the history topics that moved, in one subscribe with their positions', async () => {
      const harness = await subscribedWithHistory();
      const socket = harness.last();
      socket.system('resync', {
        reason: 'redis_reconnected',
        topics: ['a', 'b', 'plain', 'g:*'],
        down_ms: 1234,
        recovery: { a: { epoch: 'ep1', offset: 5 }, b: { epoch: 'ep1', offset: 6 } },
      });
      expect(subscriptions(socket).at(-1)).toEqual({
        action: 'subscribe',
        topics: ['a'],
        recover: true,
        recovery: { a: { epoch: 'ep1', offset: 3 } },
      });
      // b is already at the server's position; plain and the glob keep no history.
      expect(harness.resyncs).toEqual([
        { topic: 'b', recovered: true, lost: 0, reason: 'redis_reconnected', downMs: 1234 },
        { topic: 'plain', recovered: false, reason: 'redis_reconnected', downMs: 1234 },
        { topic: 'g:*', recovered: false, reason: 'redis_reconnected', downMs: 1234 },
      ]);
      socket.deliver({ tp: 'a', e: 'ep1', o: 4 });
      socket.deliver({ tp: 'a', e: 'ep1', o: 5 });
      socket.answer('subscribe', ['a'], [], {
        recovery: { a: { epoch: 'ep1', offset: 5, recovered: true, count: 2 } },
      });
      expect(harness.resyncs.at(-1)).toEqual({
        topic: 'a',
        recovered: true,
        lost: 0,
        reason: 'redis_reconnected',
        downMs: 1234,
      });
      expect(harness.messages.filter((m) => m.topic === 'a').map((m) => m.offset)).toEqual([3, 4, 5]);
    });

    it('reports every listed topic not recovered when the server keeps no history', async () => {
      const harness = await connected();
      void harness.client.subscribe(['chat:x']);
      harness.last().answer('subscribe', ['chat:x']);
      harness.last().system('resync', { reason: 'redis_reconnected', topics: ['chat:x', 'not-mine'], down_ms: 10 });
      expect(harness.resyncs).toEqual([{ topic: 'chat:x', recovered: false, reason: 'redis_reconnected', downMs: 10 }]);
      expect(subscriptions(harness.last())).toHaveLength(1);
    });
  });

  describe('the outgoing queue', () => {
    it('sends at once while open', async () => {
      const harness = await connected();
      expect(harness.client.send('chat_message', { text: 'hi' })).toBe(true);
      expect(harness.client.send('bare')).toBe(true);
      expect(harness.last().frames().slice(-2)).toEqual([{ t: 'chat_message', p: { text: 'hi' } }, { t: 'bare' }]);
    });

    it('keeps frames while disconnected and sends them in order after the resubscribe', async () => {
      const harness = await connected();
      void harness.client.subscribe('a');
      harness.last().answer('subscribe', ['a']);
      harness.last().serverClose(1006);
      for (let i = 1; i <= 3; i++) expect(harness.client.send('n', { i })).toBe(true);
      expect(harness.client.queued).toBe(3);
      await advance(1000);
      harness.last().accept({ ping_interval: 25_000 });
      expect(harness.last().frames()).toEqual([
        { t: 'subscription', p: { action: 'subscribe', topics: ['a'] } },
        { t: 'n', p: { i: 1 } },
        { t: 'n', p: { i: 2 } },
        { t: 'n', p: { i: 3 } },
      ]);
      expect(harness.client.queued).toBe(0);
    });

    it('refuses a frame past maxQueuedFrames and reports it with an error event', async () => {
      const harness = start({ maxQueuedFrames: 2 });
      expect(harness.client.send('n', { i: 1 })).toBe(true);
      expect(harness.client.send('n', { i: 2 })).toBe(true);
      expect(harness.client.send('n', { i: 3 })).toBe(false);
      expect(harness.errors).toEqual([
        {
          code: 'QUEUE_OVERFLOW',
          message: 'outgoing queue full (2 frames): n not sent',
          frame: { type: 'n', payload: { i: 3 } },
        },
      ]);
      await advance();
      harness.last().accept({ ping_interval: 25_000 });
      expect(harness.last().frames()).toEqual([
        { t: 'n', p: { i: 1 } },
        { t: 'n', p: { i: 2 } },
      ]);
    });

    it('reports queued frames as discarded on close(), and refuses send() after it', async () => {
      const harness = start();
      harness.client.send('n', { i: 1 });
      harness.client.close();
      expect(harness.errors).toEqual([
        { code: 'QUEUE_DISCARDED', message: '1 queued frames not sent: the client closed', count: 1 },
      ]);
      expect(harness.client.send('n', { i: 2 })).toBe(false);
      expect(harness.errors.at(-1)).toEqual({
        code: 'CLOSED',
        message: 'the client is closed: n not sent',
        frame: { type: 'n', payload: { i: 2 } },
      });
    });
  });

  describe('messages', () => {
    it('delivers parsed JSON, text that is not JSON, and unknown system frames; keeps its own frames', async () => {
      const harness = await connected();
      const socket = harness.last();
      socket.deliver({ t: 'chat_message', p: { text: 'hi' } });
      socket.deliver('plain text');
      socket.system('rate_limit_warning', { remaining: 3 });
      socket.system('ping', {});
      socket.system('PONG', {});
      expect(harness.messages).toEqual([
        { data: { t: 'chat_message', p: { text: 'hi' } }, raw: '{"t":"chat_message","p":{"text":"hi"}}' },
        { data: 'plain text', raw: 'plain text' },
        {
          data: { c: 'WSE', t: 'rate_limit_warning', p: { remaining: 3 }, v: 1 },
          raw: '{"c":"WSE","t":"rate_limit_warning","p":{"remaining":3},"v":1}',
        },
      ]);
    });

    it('decodes binary frames as UTF-8', async () => {
      const harness = await connected();
      harness.last().onmessage?.({ data: new TextEncoder().encode('{"x":"é"}').buffer });
      expect(harness.messages).toEqual([{ data: { x: 'é' }, raw: '{"x":"é"}' }]);
    });

    it("turns the server's error frames into error events", async () => {
      const harness = await connected();
      harness.last().system('error', { code: 'RATE_LIMITED', message: 'Too many messages', retry_after: 0.5 });
      expect(harness.errors).toEqual([{ code: 'RATE_LIMITED', message: 'Too many messages', retry_after: 0.5 }]);
    });

    it('keeps delivering to other listeners when one throws, and reports the throw on its own turn', async () => {
      const harness = await connected();
      const unsubscribe = harness.client.on('message', () => {
        throw new Error('listener bug');
      });
      harness.last().deliver({ n: 1 });
      expect(harness.messages).toHaveLength(1);
      expect(() => jest.advanceTimersByTime(0)).toThrow('listener bug');
      unsubscribe();
      harness.last().deliver({ n: 2 });
      expect(harness.messages).toHaveLength(2);
      expect(jest.getTimerCount()).toBe(1); // only the watchdog
    });
  });

  describe('the browser network events', () => {
    const scope = globalThis as unknown as Record<string, unknown>;
    let online = true;
    let listeners: Set<() => void>;

    beforeEach(() => {
      online = true;
      listeners = new Set();
      Object.defineProperty(scope, 'navigator', {
        configurable: true,
        value: {
          get onLine() {
            return online;
          },
        },
      });
      scope.addEventListener = (type: string, listener: () => void) => type === 'online' && listeners.add(listener);
      scope.removeEventListener = (type: string, listener: () => void) =>
        type === 'online' && listeners.delete(listener);
    });

    afterEach(() => {
      delete scope.navigator;
      delete scope.addEventListener;
      delete scope.removeEventListener;
    });

    it('waits for the online event instead of a timer while the browser is offline', async () => {
      const harness = await connected();
      online = false;
      harness.last().serverClose(1006);
      expect(harness.states.at(-1)).toEqual(['reconnecting', { attempt: 1, code: 1006, reason: '' }]);
      await advance(120_000);
      expect(harness.sockets).toHaveLength(1);
      online = true;
      for (const listener of listeners) listener();
      await advance();
      expect(harness.sockets).toHaveLength(2);
    });

    it('skips the backoff wait when the network comes back', async () => {
      const harness = await connected();
      harness.last().serverClose(1006);
      for (const listener of listeners) listener();
      await advance();
      expect(harness.sockets).toHaveLength(2);
    });

    it('removes its listener on close()', async () => {
      const harness = await connected();
      expect(listeners.size).toBe(1);
      harness.client.close();
      expect(listeners.size).toBe(0);
    });
  });

  describe('close()', () => {
    it('closes the socket with 1000, ends in closed and never reconnects', async () => {
      const harness = await connected();
      const socket = harness.last();
      harness.client.close();
      expect(socket.closedByClient).toEqual({ code: 1000, reason: 'client closed' });
      expect(harness.states.at(-1)).toEqual(['closed', { attempt: 0, code: 1000, reason: 'closed by the client' }]);
      socket.serverClose(1000);
      await advance(120_000);
      expect(harness.sockets).toHaveLength(1);
      expect(harness.errors).toEqual([]);
    });

    it('cancels a connection waiting for its token', async () => {
      let release: (token: string) => void = () => undefined;
      const harness = start({ token: () => new Promise<string>((resolve) => (release = resolve)) });
      await advance();
      harness.client.close();
      release('late');
      await advance();
      expect(harness.sockets).toHaveLength(0);
    });

    it('can be started again with connect(), restoring the subscriptions', async () => {
      const harness = await connected();
      void harness.client.subscribe('a');
      harness.last().answer('subscribe', ['a']);
      harness.client.close();
      harness.client.connect();
      await advance();
      harness.last().accept({ ping_interval: 25_000 });
      expect(subscriptions(harness.last())).toEqual([{ action: 'subscribe', topics: ['a'] }]);
    });
  });
});
