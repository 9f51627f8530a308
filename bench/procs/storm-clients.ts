import jwt from 'jsonwebtoken';
import { io as socketIoClient, type Socket as SocketIoSocket } from 'socket.io-client';
import WebSocket from 'ws';
import { WseClient, type WseWebSocketConstructor } from '../../src/client/index.js';
import type { StormConnectParams, StormSnapshot } from '../lib/apis.js';
import { clockMs, sleep } from '../lib/clock.js';

/**
 * The reconnect storm's clients: real clients with their own reconnect logic and their own
 * default backoff, not the raw load connections. nestjs-wse: `WseClient` (`nestjs-wse/client`)
 * on the `ws` package, which resubscribes by itself after a reconnect. Socket.IO:
 * `socket.io-client`, which reconnects by itself; resubscribing is the application's, done in
 * its `connect` handler as Socket.IO's documentation shows.
 *
 * Each client records, after `arm()`, when it lost its connection, when it was connected again,
 * when all its topics were subscribed again and when it had received a message on each of them.
 */

/** Close codes and errors that mean the server answered and said no (not "nobody listening"). */
const REFUSAL_CODES: ReadonlySet<number> = new Set([1008, 1011, 1013, 4401, 4403, 4429]);

interface Tracked {
  readonly topics: readonly string[];
  lost: boolean;
  connectedAt: number;
  resubscribedAt: number;
  receivedAt: number;
  resynced: Set<string>;
  received: Set<string>;
  isOpen(): boolean;
  close(): void;
}

const tracked: Tracked[] = [];
let armed = false;
let refused = 0;
let firstRefusal: string | undefined;

function refusal(what: string): void {
  refused++;
  firstRefusal ??= what;
}

function fresh(topics: readonly string[], isOpen: () => boolean, close: () => void): Tracked {
  return {
    topics,
    lost: false,
    connectedAt: Number.NaN,
    resubscribedAt: Number.NaN,
    receivedAt: Number.NaN,
    resynced: new Set(),
    received: new Set(),
    isOpen,
    close,
  };
}

function onReceived(t: Tracked, topic: unknown): void {
  if (!armed || !t.lost || Number.isNaN(t.connectedAt) || typeof topic !== 'string') return;
  if (!t.topics.includes(topic)) return;
  t.received.add(topic);
  if (t.received.size === t.topics.length && Number.isNaN(t.receivedAt)) t.receivedAt = clockMs();
}

/** The topic a ticker message names (`{"t":"bench","p":{"topic":...}}`), whatever the system's framing. */
function topicOf(data: unknown): unknown {
  return (data as { p?: { topic?: unknown } } | null)?.p?.topic;
}

/** `ws` bound to one source address (127.0.0.x), against ephemeral port exhaustion. */
function boundWebSocket(localAddress: string): WseWebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string) {
      super(url, { localAddress, perMessageDeflate: false });
    }
  } as unknown as WseWebSocketConstructor;
}

function wseClient(url: string, token: string, topics: readonly string[], localAddress: string): Promise<void> {
  const client = new WseClient({ url, token, WebSocket: boundWebSocket(localAddress), autoConnect: false });
  const t = fresh(
    topics,
    () => client.state === 'open',
    () => client.close(),
  );
  tracked.push(t);
  client.on('state', (state, info) => {
    if (state === 'open') {
      if (armed && t.lost && Number.isNaN(t.connectedAt)) t.connectedAt = clockMs();
      return;
    }
    if (state === 'reconnecting' || state === 'closed') {
      if (armed) t.lost = true;
      if (info.code !== undefined && REFUSAL_CODES.has(info.code)) refusal(`close ${info.code} ${info.reason ?? ''}`);
    }
  });
  client.on('resync', (event) => {
    if (!armed || !t.lost || Number.isNaN(t.connectedAt)) return;
    t.resynced.add(event.topic);
    if (t.resynced.size === topics.length && Number.isNaN(t.resubscribedAt)) t.resubscribedAt = clockMs();
  });
  client.on('error', (error) => {
    if (error.code === 'AUTH_FAILED' || error.code === 'SUBSCRIBE_FAILED') refusal(`${error.code}: ${error.message}`);
  });
  client.on('message', (message) => onReceived(t, topicOf(message.data)));
  client.connect();
  return client.subscribe([...topics]).then((answer) => {
    if (answer.failed_topics.length > 0) throw new Error(`subscribe refused: ${JSON.stringify(answer.errors)}`);
  });
}

function socketIoClientOf(port: number, token: string, topics: readonly string[], localAddress: string): Promise<void> {
  // forceNew: one Manager (one connection) per client, as separate browsers would have.
  const socket: SocketIoSocket = socketIoClient(`http://127.0.0.1:${port}`, {
    transports: ['websocket'],
    auth: { token },
    forceNew: true,
    // Handed to `ws` by engine.io-client in Node.
    localAddress,
  } as unknown as Parameters<typeof socketIoClient>[1]);
  const t = fresh(
    topics,
    () => socket.connected,
    () => socket.close(),
  );
  tracked.push(t);
  let first: ((error?: Error) => void) | undefined;
  const subscribed = new Promise<void>((resolve, reject) => {
    first = (error) => (error === undefined ? resolve() : reject(error));
  });
  socket.on('connect', () => {
    if (armed && t.lost && Number.isNaN(t.connectedAt)) t.connectedAt = clockMs();
    socket.emit('subscribe', [...topics], () => {
      if (first !== undefined) {
        first();
        first = undefined;
      } else if (armed && t.lost && Number.isNaN(t.resubscribedAt)) {
        t.resubscribedAt = clockMs();
      }
    });
  });
  socket.on('disconnect', () => {
    if (armed) t.lost = true;
  });
  socket.on('connect_error', (error: Error) => {
    // "websocket error" is nobody listening (the server is down); anything else came from the server.
    if (error.message !== 'websocket error' && error.message !== 'timeout') refusal(`connect_error: ${error.message}`);
    if (first !== undefined && !socket.active) first(error);
  });
  socket.on('m', (message: unknown) => onReceived(t, topicOf(message)));
  return subscribed;
}

/** Opens `count` clients, `concurrency` at a time, each subscribed to its topics before the next. */
export async function stormConnect(
  params: StormConnectParams,
): Promise<{ opened: number; failed: number; firstError?: string }> {
  const tokens: string[] = [];
  for (let i = 0; i < params.count; i++) {
    tokens.push(
      jwt.sign({ sub: `user-${params.firstIndex + i}` }, params.jwtSecret, { algorithm: 'HS256', expiresIn: 3600 }),
    );
  }
  let next = 0;
  let opened = 0;
  let failed = 0;
  let firstError: string | undefined;
  const deadline = Date.now() + params.timeoutMs;
  const worker = async (): Promise<void> => {
    while (next < params.count && Date.now() < deadline) {
      const i = next++;
      const g = params.firstIndex + i;
      const topics = Array.from(
        { length: params.topicsPerClient },
        (_, k) => `${params.topicPrefix}${(g + k) % params.topicCount}`,
      );
      const localAddress = params.localAddresses[i % params.localAddresses.length];
      const url = `ws://127.0.0.1:${params.port}${params.path}`;
      const started =
        params.protocol === 'wse'
          ? wseClient(url, tokens[i], topics, localAddress)
          : socketIoClientOf(params.port, tokens[i], topics, localAddress);
      try {
        await Promise.race([
          started,
          sleep(15_000).then(() => {
            throw new Error('not subscribed within 15 s');
          }),
        ]);
        opened++;
      } catch (error) {
        failed++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: params.concurrency }, worker));
  return { opened, failed, firstError };
}

/** From now on, losses and recoveries are recorded (every client's marks start empty). */
export function stormArm(): void {
  armed = true;
  refused = 0;
  firstRefusal = undefined;
  for (const t of tracked) {
    // One still away since an earlier restart counts as lost from the start of this one.
    t.lost = !t.isOpen();
    t.connectedAt = Number.NaN;
    t.resubscribedAt = Number.NaN;
    t.receivedAt = Number.NaN;
    t.resynced.clear();
    t.received.clear();
  }
}

export function stormSnapshot(withTimes: boolean): StormSnapshot {
  let lost = 0;
  let connected = 0;
  let resubscribed = 0;
  let receiving = 0;
  for (const t of tracked) {
    if (t.lost) lost++;
    if (!Number.isNaN(t.connectedAt)) connected++;
    if (!Number.isNaN(t.resubscribedAt)) resubscribed++;
    if (!Number.isNaN(t.receivedAt)) receiving++;
  }
  return {
    clients: tracked.length,
    lost,
    connected,
    resubscribed,
    receiving,
    refused,
    firstRefusal,
    atMs: clockMs(),
    times: withTimes
      ? {
          connected: tracked.map((t) => t.connectedAt),
          resubscribed: tracked.map((t) => t.resubscribedAt),
          receiving: tracked.map((t) => t.receivedAt),
        }
      : undefined,
  };
}

export function stormCloseAll(): void {
  armed = false;
  for (const t of tracked) t.close();
  tracked.length = 0;
}
