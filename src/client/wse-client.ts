import { reconnectDelay, WSE_BACKOFF_DEFAULTS, type WseBackoffOptions } from './backoff.js';
import { closeAction } from './close-codes.js';
import {
  isDuplicate,
  missedCount,
  readRecoveryState,
  readStamp,
  type WsePosition,
  type WseRecoveryState,
} from './stamp.js';
import type {
  WseClientError,
  WseClientEvents,
  WseClientOptions,
  WseClientState,
  WseReadyDetails,
  WseResyncEvent,
  WseServerHello,
  WseSocket,
  WseStateInfo,
  WseSubscriptionResult,
  WseToken,
  WseWebSocketConstructor,
} from './types.js';

/** Sent in `client_hello`. */
export const WSE_CLIENT_VERSION = '0.1.0';

/** The code of closes this client decides itself (no ping, no server_ready in time); retried. */
const CLIENT_CLOSE_CODE = 4000;

type Json = Record<string, unknown>;
type Timer = unknown;
type Action = 'subscribe' | 'unsubscribe';

/**
 * What the client takes from the global scope. Read at each use, never captured at load, so a
 * test's fake timers apply, and typed here so the client compiles without the DOM or Node types
 * (it must run on both).
 */
interface Host {
  WebSocket?: WseWebSocketConstructor;
  setTimeout(callback: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
  TextDecoder?: new () => { decode(data: unknown): string };
  navigator?: { onLine?: unknown };
  addEventListener?(type: string, listener: () => void): void;
  removeEventListener?(type: string, listener: () => void): void;
}
const host = globalThis as unknown as Host;

/** The handler slots both WebSocket implementations have (`ws` adds `terminate`). */
interface WiredSocket extends WseSocket {
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: (() => void) | null;
  terminate?: () => void;
}

/** A `subscribe()` / `unsubscribe()` call waiting for the server's answer about its topics. */
interface Waiter {
  action: Action;
  /** Topics not answered yet. */
  topics: Set<string>;
  answer: WseSubscriptionResult;
  resolve(answer: WseSubscriptionResult): void;
  reject(error: Error): void;
  timer?: Timer;
}

/** Why a topic owes the application a `resync` event once the server answers about it. */
interface PendingResync {
  reason: string;
  downMs?: number;
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null;
const objectOr = (value: unknown): Json => (isObject(value) ? value : {});
const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(value > 0)) throw new TypeError(`WseClient: ${name} must be a positive number (got ${value})`);
  return value;
}

/**
 * The WSE client (CONTRACT section 12) for browsers and Node: connects, keeps the connection
 * (full-jitter backoff, a server-ping watchdog, the browser's `online` event), resubscribes
 * everything in one frame after a reconnect, recovers history topics from the last position it
 * saw and drops duplicates, and keeps a bounded queue of frames sent while disconnected.
 *
 * Guarantees: a stamped message is delivered at most once per `(topic, epoch, offset)`; frames
 * given to `send()` leave in call order, or are reported through an `error` event; every
 * subscribed topic gets a `resync` event after a reconnect, saying whether anything was lost.
 *
 * @example
 * const client = new WseClient({ url: 'wss://example.com/wse', token: () => auth.jwt() });
 * client.on('message', (m) => console.log(m.topic, m.data));
 * client.on('resync', (r) => { if (!r.recovered) reload(r.topic); });
 * await client.subscribe(['chat:lobby']);
 * client.send('chat_message', { room: 'lobby', text: 'hi' });
 */
export class WseClient {
  private readonly url: string;
  private readonly token: WseClientOptions['token'];
  private readonly WebSocketClass: WseWebSocketConstructor;
  private readonly backoff: WseBackoffOptions;
  private readonly pingMarginMs: number;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxQueuedFrames: number;
  private readonly maxTopicsPerFrame: number;
  private readonly random: () => number;
  private readonly now: () => number;

  private stateValue: WseClientState = 'closed';
  private readyDetails: WseReadyDetails | undefined;
  private helloValue: WseServerHello | undefined;
  private socket: WiredSocket | undefined;
  /** Set by close() and terminal closes: requests fail until connect(). */
  private ended = false;
  /** Bumped whenever the client stops, so an async step of an earlier run (a token) gives up. */
  private run = 0;
  /** Connection attempts since the last `open`. */
  private attempts = 0;
  /** Backoff waits since the last `open`: the exponent of the next one. */
  private waits = 0;
  private everOpened = false;
  private authRetried = false;
  /** `p.message` of the AUTH_FAILED frame that precedes a 4401 close. */
  private authMessage = '';
  private sentToken: WseToken;
  private lastFrameAt = 0;
  private pingLimitMs = 0;
  private connectTimer: Timer;
  private watchTimer: Timer;
  private retryTimer: Timer;
  private waitingForNetwork = false;
  /** Every topic the application subscribed to, answered or not: what a reconnect restores. */
  private readonly desired = new Set<string>();
  /** History positions of subscribed topics, for recovery and duplicate removal. */
  private readonly positions = new Map<string, WsePosition>();
  private readonly pendingResync = new Map<string, PendingResync>();
  private readonly waiters: Waiter[] = [];
  private queue: string[] = [];
  private readonly listeners: { [K in keyof WseClientEvents]: Set<WseClientEvents[K]> } = {
    state: new Set(),
    message: new Set(),
    resync: new Set(),
    error: new Set(),
  };

  constructor(options: WseClientOptions) {
    const WebSocketClass = options.WebSocket ?? host.WebSocket;
    if (WebSocketClass === undefined) {
      throw new TypeError('WseClient: no global WebSocket here; pass options.WebSocket (e.g. the ws package)');
    }
    this.WebSocketClass = WebSocketClass;
    this.url = options.url;
    this.token = options.token;
    const backoff = { ...WSE_BACKOFF_DEFAULTS, ...options.backoff };
    this.backoff = {
      initialDelayMs: positive('backoff.initialDelayMs', backoff.initialDelayMs, 0),
      factor: positive('backoff.factor', backoff.factor, 0),
      maxDelayMs: positive('backoff.maxDelayMs', backoff.maxDelayMs, 0),
    };
    this.pingMarginMs = positive('pingMarginMs', options.pingMarginMs, 10_000);
    this.connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs, 10_000);
    this.requestTimeoutMs = positive('requestTimeoutMs', options.requestTimeoutMs, 10_000);
    this.maxQueuedFrames = Math.floor(positive('maxQueuedFrames', options.maxQueuedFrames, 100));
    this.maxTopicsPerFrame = Math.floor(positive('maxTopicsPerFrame', options.maxTopicsPerFrame, 100));
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    if (options.autoConnect !== false) this.connect();
  }

  /** The current state. */
  get state(): WseClientState {
    return this.stateValue;
  }

  /** `server_ready.p.details` of the open connection (connection_id, user_id, features…). */
  get details(): WseReadyDetails | undefined {
    return this.readyDetails;
  }

  /** `server_hello.p` of the open connection (server_version, limits, ping_interval…), once it came. */
  get hello(): WseServerHello | undefined {
    return this.helloValue;
  }

  /** Every topic subscribed to (what a reconnect restores), in subscription order. */
  get topics(): string[] {
    return [...this.desired];
  }

  /** Frames waiting in the outgoing queue. */
  get queued(): number {
    return this.queue.length;
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof WseClientEvents>(event: K, listener: WseClientEvents[K]): () => void {
    this.listeners[event].add(listener);
    return () => this.off(event, listener);
  }

  off<K extends keyof WseClientEvents>(event: K, listener: WseClientEvents[K]): void {
    this.listeners[event].delete(listener);
  }

  /**
   * Starts the client (after `close()`, a terminal close, or `autoConnect: false`). While
   * `reconnecting`, tries at once instead of waiting out the backoff.
   */
  connect(): void {
    if (this.stateValue === 'reconnecting') {
      this.tryNow();
      return;
    }
    if (this.stateValue !== 'closed') return;
    this.ended = false;
    this.attempts = 0;
    this.waits = 0;
    this.authRetried = false;
    this.watchNetwork(true);
    this.stateValue = 'connecting';
    const run = ++this.run;
    // A microtask later, so that listeners added right after `new WseClient()` hear it.
    void Promise.resolve().then(() => {
      if (run === this.run && this.stateValue === 'connecting') this.emit('state', 'connecting', { attempt: 1 });
    });
    void this.open();
  }

  /**
   * Stops for good: closes the connection (1000), cancels every timer, rejects the calls
   * waiting for an answer and reports queued frames as discarded. `connect()` starts again.
   */
  close(): void {
    if (this.stateValue === 'closed') {
      this.ended = true;
      return;
    }
    this.finish(undefined, 1000, 'closed by the client');
  }

  /**
   * Subscribes to exact topics and globs. Resolves with the server's answer about these topics
   * (`success_topics`, `failed_topics`, `errors`); while disconnected, the answer comes with the
   * resubscribe after the next connect. Rejects on `close()`, or without an answer from an open
   * connection within `requestTimeoutMs`.
   */
  subscribe(topics: string | readonly string[]): Promise<WseSubscriptionResult> {
    return this.request('subscribe', topics);
  }

  /** Unsubscribes; while disconnected it resolves at once (the server keeps nothing of a closed connection). */
  unsubscribe(topics: string | readonly string[]): Promise<WseSubscriptionResult> {
    return this.request('unsubscribe', topics);
  }

  /**
   * Sends the application event `{"t": type, "p": payload}`. While not connected the frame waits
   * in the outgoing queue (`maxQueuedFrames`) and leaves in order after the next connect. Returns
   * false, with an `error` event carrying the frame, when the queue is full or the client closed.
   */
  send(type: string, payload?: object): boolean {
    const text = JSON.stringify(payload === undefined ? { t: type } : { t: type, p: payload });
    if (this.stateValue === 'open' && this.socket !== undefined) {
      this.socket.send(text);
      return true;
    }
    const frame = { type, payload };
    if (this.ended) {
      this.emit('error', { code: 'CLOSED', message: `the client is closed: ${type} not sent`, frame });
      return false;
    }
    if (this.queue.length >= this.maxQueuedFrames) {
      this.emit('error', {
        code: 'QUEUE_OVERFLOW',
        message: `outgoing queue full (${this.maxQueuedFrames} frames): ${type} not sent`,
        frame,
      });
      return false;
    }
    this.queue.push(text);
    return true;
  }

  // ---- connecting --------------------------------------------------------------------------

  private async open(given?: { token: WseToken }): Promise<void> {
    const run = this.run;
    this.retryTimer = this.cancel(this.retryTimer);
    this.waitingForNetwork = false;
    this.attempts++;
    let token: WseToken;
    if (given !== undefined) {
      token = given.token;
    } else {
      try {
        token = await this.askToken();
      } catch (error) {
        if (run !== this.run) return;
        this.emit('error', { code: 'TOKEN_FAILED', message: `token() failed: ${describe(error)}` });
        this.retry(undefined, 'token() failed');
        return;
      }
      if (run !== this.run) return;
    }
    this.sentToken = token;
    this.authMessage = '';
    const url = token ? `${this.url}${this.url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : this.url;
    const socket = new this.WebSocketClass(url) as WiredSocket;
    socket.binaryType = 'arraybuffer';
    socket.onmessage = (event) => {
      if (this.socket === socket) this.onFrame(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this.lost(event.code, event.reason);
    };
    // Every error is followed by a close event, which is where the client acts.
    socket.onerror = () => undefined;
    this.socket = socket;
    this.connectTimer = this.later(this.connectTimeoutMs, () =>
      this.drop(`no server_ready within ${this.connectTimeoutMs} ms`),
    );
  }

  private async askToken(): Promise<WseToken> {
    const token = this.token;
    return (typeof token === 'function' ? await token() : token) || undefined;
  }

  /** The connection is taken for dead by the client: detached, closed, handled as lost. */
  private drop(reason: string): void {
    const socket = this.socket;
    if (socket === undefined) return;
    this.socket = undefined;
    // ws's close() would wait up to 30 s for the dead peer's close frame; terminate() frees it now.
    if (socket.terminate !== undefined) socket.terminate();
    else socket.close(CLIENT_CLOSE_CODE, reason);
    this.lost(CLIENT_CLOSE_CODE, reason);
  }

  private lost(code: number, reason: string): void {
    this.socket = undefined;
    this.connectTimer = this.cancel(this.connectTimer);
    this.watchTimer = this.cancel(this.watchTimer);
    this.readyDetails = undefined;
    this.helloValue = undefined;
    this.pendingResync.clear();
    // The server forgets a closed connection's subscriptions: an unsubscribe in flight is done,
    // and a subscribe in flight is answered by the resubscribe after the next connect.
    for (const waiter of [...this.waiters]) {
      if (waiter.action === 'unsubscribe') {
        waiter.answer.success_topics.push(...waiter.topics);
        this.settle(waiter);
      } else {
        waiter.timer = this.cancel(waiter.timer);
      }
    }
    const action = closeAction(code);
    if (action === 'stop') {
      this.finish(
        {
          code: 'CLOSED',
          message: `closed by the server with ${code}${reason ? ` (${reason})` : ''}`,
          closeCode: code,
        },
        code,
        reason,
      );
    } else if (action === 'auth') {
      void this.reauthenticate(code, reason);
    } else {
      this.retry(code, reason);
    }
  }

  /** After 4401: one more token, unless it is the refused one; then stop. */
  private async reauthenticate(code: number, reason: string): Promise<void> {
    const run = this.run;
    const refused = this.sentToken;
    const message = this.authMessage || 'authentication failed';
    let next = refused;
    if (!this.authRetried && typeof this.token === 'function') {
      this.authRetried = true;
      try {
        next = await this.askToken();
      } catch {
        // A token function that throws now has nothing better to offer: stop with the refusal.
        next = refused;
      }
      if (run !== this.run) return;
    }
    if (next === refused) {
      this.finish({ code: 'AUTH_FAILED', message, closeCode: code }, code, reason);
      return;
    }
    this.setState('reconnecting', { attempt: this.attempts + 1, delayMs: 0, code, reason });
    void this.open({ token: next });
  }

  private retry(code: number | undefined, reason: string): void {
    const info: WseStateInfo = { attempt: this.attempts + 1, code, reason };
    if (host.navigator?.onLine === false) {
      // The browser knows there is no network: wait for its `online` event instead of timers.
      this.waitingForNetwork = true;
    } else {
      info.delayMs = reconnectDelay(this.waits++, this.backoff, this.random);
      this.retryTimer = this.later(info.delayMs, () => void this.open());
    }
    this.setState('reconnecting', info);
  }

  /** Skips the wait of a scheduled retry (`online` event, `connect()` while reconnecting). */
  private tryNow(): void {
    if (this.retryTimer !== undefined || this.waitingForNetwork) void this.open();
  }

  private readonly onOnline = (): void => this.tryNow();

  private watchNetwork(on: boolean): void {
    (on ? host.addEventListener : host.removeEventListener)?.call(host, 'online', this.onOnline);
  }

  // ---- frames ------------------------------------------------------------------------------

  private onFrame(data: unknown): void {
    this.lastFrameAt = this.now();
    const raw = typeof data === 'string' ? data : host.TextDecoder ? new host.TextDecoder().decode(data) : String(data);
    let parsed: unknown = raw;
    try {
      parsed = JSON.parse(raw);
    } catch {
      // Not JSON: a string payload, published and delivered as plain text.
    }
    if (isObject(parsed) && parsed.c === 'WSE' && this.onSystem(parsed.t, objectOr(parsed.p))) return;
    const stamp = readStamp(parsed);
    if (stamp === undefined) {
      this.emit('message', { data: parsed, raw });
      return;
    }
    if (isDuplicate(this.positions.get(stamp.tp), stamp)) return;
    if (this.desired.has(stamp.tp)) this.positions.set(stamp.tp, { e: stamp.e, o: stamp.o, seen: true });
    // The payload as published: the stamp's three fields are the server's, not the publisher's.
    const payload: Json = { ...(parsed as Json) };
    delete payload.tp;
    delete payload.e;
    delete payload.o;
    this.emit('message', { topic: stamp.tp, epoch: stamp.e, offset: stamp.o, data: payload, raw });
  }

  /** Handles a system frame; false for a type the client leaves to the application. */
  private onSystem(type: unknown, p: Json): boolean {
    switch (type) {
      case 'server_ready':
        this.onReady(objectOr(p.details));
        return true;
      case 'server_hello':
        this.helloValue = p;
        this.watchPings(p.ping_interval);
        return true;
      case 'ping':
        this.write({ t: 'pong' });
        return true;
      case 'PONG':
        return true;
      case 'subscription_update':
        this.onAnswer(p);
        return true;
      case 'resync':
        this.onResync(p);
        return true;
      case 'error':
        if (p.code === 'AUTH_FAILED') this.authMessage = String(p.message ?? '');
        else this.emit('error', { ...p, code: String(p.code ?? 'ERROR'), message: String(p.message ?? '') });
        return true;
      default:
        return false;
    }
  }

  private onReady(details: WseReadyDetails): void {
    const socket = this.socket;
    const attempt = this.attempts;
    this.connectTimer = this.cancel(this.connectTimer);
    this.readyDetails = details;
    this.attempts = 0;
    this.waits = 0;
    this.authRetried = false;
    const reconnected = this.everOpened;
    this.everOpened = true;
    this.stateValue = 'open';
    if (typeof details.ping_interval === 'number') this.watchPings(details.ping_interval);
    else this.write({ t: 'client_hello', p: { client_version: WSE_CLIENT_VERSION } });
    this.resubscribe(reconnected);
    const queued = this.queue;
    this.queue = [];
    for (const text of queued) socket?.send(text);
    if (this.socket === socket) this.setState('open', { attempt });
  }

  /**
   * The watchdog: the server pings every `interval` ms, so a connection without any frame for
   * interval + margin is dead (a half-open TCP link, a frozen server or proxy) even though no
   * close event will come for minutes. One timer per interval, not one per frame: each frame
   * only records its time, and the timer, when it fires, waits out whatever is left.
   */
  private watchPings(interval: unknown): void {
    if (typeof interval !== 'number' || !(interval > 0)) return;
    this.pingLimitMs = interval + this.pingMarginMs;
    this.lastFrameAt = this.now();
    this.cancel(this.watchTimer);
    this.checkPings();
  }

  private readonly checkPings = (): void => {
    const left = this.lastFrameAt + this.pingLimitMs - this.now();
    if (left > 0) this.watchTimer = this.later(left, this.checkPings);
    else this.drop(`no frame from the server within ${this.pingLimitMs} ms`);
  };

  // ---- subscriptions -----------------------------------------------------------------------

  private request(action: Action, input: string | readonly string[]): Promise<WseSubscriptionResult> {
    if (this.ended) return Promise.reject(new Error(`the client is closed: ${action} not sent`));
    const topics = [...new Set(typeof input === 'string' ? [input] : input)];
    const open = this.stateValue === 'open';
    for (const topic of topics) {
      if (action === 'subscribe') {
        this.desired.add(topic);
        continue;
      }
      this.desired.delete(topic);
      this.positions.delete(topic);
      this.pendingResync.delete(topic);
      // Not sent yet (no open connection): a subscribe waiting for it has nothing to wait for.
      for (const waiter of open ? [] : [...this.waiters]) {
        if (waiter.topics.delete(topic) && waiter.topics.size === 0) this.settle(waiter);
      }
    }
    const answer: WseSubscriptionResult = { action, success_topics: [], failed_topics: [], errors: [] };
    if (topics.length === 0 || (action === 'unsubscribe' && !open)) {
      answer.success_topics = topics;
      return Promise.resolve(answer);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { action, topics: new Set(topics), answer, resolve, reject };
      this.waiters.push(waiter);
      if (open) {
        this.subscriptionFrames(action, topics, false);
        this.arm(waiter);
      }
    });
  }

  /**
   * After `server_ready`: everything subscribed, in as few frames as the server takes (one,
   * up to `maxTopicsPerFrame` topics), with recovery positions when the server has history.
   * After a reconnect each topic that was subscribed before owes the application a `resync`.
   */
  private resubscribe(reconnected: boolean): void {
    const topics = [...this.desired];
    if (reconnected) {
      for (const topic of topics) {
        // A topic a call is still waiting for was never confirmed: nothing to resync there.
        if (!this.waiters.some((waiter) => waiter.topics.has(topic))) {
          this.pendingResync.set(topic, { reason: 'reconnected' });
        }
      }
    }
    this.subscriptionFrames('subscribe', topics, true);
    for (const waiter of this.waiters) this.arm(waiter);
  }

  private subscriptionFrames(action: Action, topics: string[], recover: boolean): void {
    const withPositions = recover && this.readyDetails?.features?.recovery === true;
    for (let i = 0; i < topics.length; i += this.maxTopicsPerFrame) {
      const chunk = topics.slice(i, i + this.maxTopicsPerFrame);
      const p: Json = { action, topics: chunk };
      const recovery: Record<string, { epoch: string; offset: number }> = {};
      let count = 0;
      for (const topic of withPositions ? chunk : []) {
        const position = this.positions.get(topic);
        if (position === undefined) continue;
        recovery[topic] = { epoch: position.e, offset: position.o };
        count++;
      }
      if (count > 0) {
        p.recover = true;
        p.recovery = recovery;
      }
      this.write({ t: 'subscription', p });
    }
  }

  private onAnswer(p: Json): void {
    const action: Action = p.action === 'unsubscribe' ? 'unsubscribe' : 'subscribe';
    const succeeded = strings(p.success_topics);
    const failed = strings(p.failed_topics);
    const recovery = objectOr(p.recovery);
    const reasons = new Map<string, string>();
    for (const entry of Array.isArray(p.errors) ? p.errors : []) {
      if (isObject(entry) && typeof entry.topic === 'string') reasons.set(entry.topic, String(entry.reason ?? ''));
    }
    for (const topic of succeeded) {
      const state = readRecoveryState(recovery[topic]);
      if (action === 'subscribe') this.settleRecovery(topic, state);
      this.answerWaiter(action, topic, undefined, state);
    }
    for (const topic of failed) {
      const reason = reasons.get(topic) ?? 'refused';
      if (action === 'subscribe') {
        // Refused now, refused at every reconnect: it is no longer part of what is restored.
        this.desired.delete(topic);
        this.positions.delete(topic);
        this.pendingResync.delete(topic);
      }
      if (!this.answerWaiter(action, topic, reason, undefined) && action === 'subscribe') {
        this.emit('error', { code: 'SUBSCRIBE_FAILED', message: `resubscribe to ${topic} refused: ${reason}`, topic });
      }
    }
  }

  /** Hands a topic's answer to the oldest call waiting for it; false when none waits. */
  private answerWaiter(
    action: Action,
    topic: string,
    failure: string | undefined,
    state: WseRecoveryState | undefined,
  ): boolean {
    const waiter = this.waiters.find((candidate) => candidate.action === action && candidate.topics.has(topic));
    if (waiter === undefined) return false;
    waiter.topics.delete(topic);
    const answer = waiter.answer;
    if (failure === undefined) {
      answer.success_topics.push(topic);
    } else {
      answer.failed_topics.push(topic);
      answer.errors.push({ topic, reason: failure });
    }
    if (state !== undefined) (answer.recovery ??= {})[topic] = state;
    if (waiter.topics.size === 0) this.settle(waiter);
    return true;
  }

  /**
   * A subscribe answer about `topic`: emits the `resync` it owes, if any, and moves the topic's
   * position to the server's when nothing is replayed (so the next recovery starts there).
   */
  private settleRecovery(topic: string, state: WseRecoveryState | undefined): void {
    const position = this.positions.get(topic);
    const pending = this.pendingResync.get(topic);
    const recovered = state?.recovered === true;
    const event: WseResyncEvent | undefined = pending && { topic, recovered, reason: pending.reason };
    if (event !== undefined) {
      this.pendingResync.delete(topic);
      const lost = recovered ? 0 : missedCount(position, state);
      if (lost !== undefined) event.lost = lost;
      if (pending?.downMs !== undefined) event.downMs = pending.downMs;
    }
    // While a replay runs, the replayed messages move the position themselves.
    if (
      state !== undefined &&
      !recovered &&
      this.desired.has(topic) &&
      (position === undefined || position.e !== state.epoch || position.o < state.offset)
    ) {
      this.positions.set(topic, { e: state.epoch, o: state.offset, seen: false });
    }
    if (event !== undefined) this.emit('resync', event);
  }

  /**
   * A `resync` frame: the server's bus was interrupted and messages may be missing. History
   * topics with a position are recovered (one subscribe with `recover`); a topic already at the
   * server's current position lost nothing; every other listed topic is reported not recovered.
   */
  private onResync(p: Json): void {
    const reason = typeof p.reason === 'string' ? p.reason : 'resync';
    const downMs = typeof p.down_ms === 'number' ? p.down_ms : undefined;
    const current = objectOr(p.recovery);
    const canRecover = this.readyDetails?.features?.recovery === true;
    const recover: string[] = [];
    for (const topic of strings(p.topics)) {
      if (!this.desired.has(topic)) continue;
      const position = this.positions.get(topic);
      const now = readRecoveryState(current[topic]);
      if (canRecover && position !== undefined && !(now?.epoch === position.e && now.offset <= position.o)) {
        recover.push(topic);
        this.pendingResync.set(topic, { reason, downMs });
        continue;
      }
      const upToDate = canRecover && position !== undefined;
      const event: WseResyncEvent = { topic, recovered: upToDate, reason };
      if (upToDate) event.lost = 0;
      if (downMs !== undefined) event.downMs = downMs;
      this.emit('resync', event);
    }
    this.subscriptionFrames('subscribe', recover, true);
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private arm(waiter: Waiter): void {
    waiter.timer ??= this.later(this.requestTimeoutMs, () =>
      this.settle(waiter, new Error(`no answer to ${waiter.action} within ${this.requestTimeoutMs} ms`)),
    );
  }

  private settle(waiter: Waiter, error?: Error): void {
    const index = this.waiters.indexOf(waiter);
    if (index >= 0) this.waiters.splice(index, 1);
    this.cancel(waiter.timer);
    if (error === undefined) waiter.resolve(waiter.answer);
    else waiter.reject(error);
  }

  /** Stops: after close(), or a terminal close code (then `error` says why). */
  private finish(error: WseClientError | undefined, code: number, reason: string): void {
    this.run++;
    this.ended = true;
    this.watchNetwork(false);
    this.connectTimer = this.cancel(this.connectTimer);
    this.watchTimer = this.cancel(this.watchTimer);
    this.retryTimer = this.cancel(this.retryTimer);
    this.waitingForNetwork = false;
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, 'client closed');
    this.readyDetails = undefined;
    this.helloValue = undefined;
    this.pendingResync.clear();
    const failure = new Error(error?.message ?? 'the client was closed');
    for (const waiter of [...this.waiters]) this.settle(waiter, failure);
    const discarded = this.queue.length;
    this.queue = [];
    const attempt = this.attempts;
    this.stateValue = 'closed';
    if (error !== undefined) this.emit('error', error);
    if (discarded > 0) {
      this.emit('error', {
        code: 'QUEUE_DISCARDED',
        message: `${discarded} queued frames not sent: the client closed`,
        count: discarded,
      });
    }
    this.emit('state', 'closed', { attempt, code, reason });
  }

  private write(frame: Json): void {
    this.socket?.send(JSON.stringify(frame));
  }

  private setState(state: WseClientState, info: WseStateInfo): void {
    this.stateValue = state;
    this.emit('state', state, info);
  }

  private emit<K extends keyof WseClientEvents>(event: K, ...args: Parameters<WseClientEvents[K]>): void {
    for (const listener of this.listeners[event]) {
      try {
        (listener as (...values: Parameters<WseClientEvents[K]>) => void)(...args);
      } catch (error) {
        // A failing listener must not break the client or the other listeners; it is
        // rethrown on its own turn, where the runtime reports it as uncaught.
        host.setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }

  private later(ms: number, callback: () => void): Timer {
    return host.setTimeout(callback, ms);
  }

  /** Clears a timer; returns undefined to store in its place. */
  private cancel(timer: Timer): undefined {
    if (timer !== undefined) host.clearTimeout(timer);
    return undefined;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
