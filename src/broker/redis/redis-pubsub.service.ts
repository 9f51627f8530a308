import { randomBytes } from 'node:crypto';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import { InjectWseOptions } from '../../config/inject-wse-options.decorator.js';
import type { ResolvedRedisOptions, ResolvedWseOptions } from '../../config/wse-module-options.interface.js';
import { Backoff } from '../../reliability/backoff.js';
import { CircuitBreaker, type CircuitState } from '../../reliability/circuit-breaker.js';
import { DeadLetterQueue, type DeadLetter } from '../../reliability/dead-letter-queue.js';
import { ThrottledWarning } from '../../reliability/throttled-warning.js';
import { REDIS_PROBE_CHANNEL_PREFIX } from '../../wse.constants.js';
import { redisMessages } from '../../wse.messages.js';
import {
  definePublishBatch,
  isScriptRefused,
  MAX_BATCH_BYTES,
  MAX_BATCH_MESSAGES,
  NO_REFUSALS,
  publishPipelined,
  type BatchPublisher,
  type BatchRefusals,
} from './publish-batch.js';
import { RedisStats } from './redis-stats.js';

/** Receives every message of the topic space: the topic (prefix stripped) and the payload bytes. */
export type RedisMessageHandler = (topic: string, payload: Buffer) => void;

/** Told when the subscriber is delivering again after a gap of `downMs`. */
export type RedisResyncHandler = (downMs: number) => void;

/** A message as published: JSON text (or any string) or bytes; Redis gets its UTF-8 form. */
export type RedisPayload = string | Buffer;

/** A publish on its way: where, what, and which attempt this is (1 = the first). */
interface PendingPublish {
  readonly channel: string;
  readonly payload: RedisPayload;
  readonly attempt: number;
}

/** Outcome of `replayDlq()`. */
export interface DlqReplayResult {
  /** Entries Redis accepted this time. */
  replayed: number;
  /** Entries that failed again and are back in the DLQ. */
  failed: number;
}

/**
 * The broker: Redis Pub/Sub for multi-instance fan-out. It knows channels and bytes and nothing
 * of sockets; whatever arrives goes to the one handler registered at start.
 *
 * - Two connections. The subscriber runs `PSUBSCRIBE <prefix>*` and hands each payload, as the
 *   Buffer Redis sent (never parsed), to the handler. The publisher runs with ioredis's offline
 *   queue off: a publish during an outage fails at once into our retry and DLQ path instead of
 *   waiting in an unbounded client-side queue.
 * - Publishes issued in the same tick travel together: one `PUBLISH` when there is one, else one
 *   small Lua script that runs `PUBLISH` for each, in order (see publish-batch.ts). Subscribers
 *   see exactly what separate PUBLISHes would give them; the instance pays for one command
 *   instead of hundreds (ioredis's per-command work was half of a publishing instance's CPU).
 *   A Redis that refuses scripts (an ACL without EVAL) gets one pipeline of PUBLISHes instead,
 *   from its first refusal on, with nothing lost or counted as failed in the switch.
 * - A publishing instance's own subscribers get its messages through Redis like everyone else,
 *   so each connection on each instance gets a message once.
 * - Reliability (CONTRACT section 10): up to 3 attempts (100 ms, 200 ms apart), then the DLQ;
 *   while disconnected or with `pub_breaker` open, straight to the DLQ. Reconnection is ioredis's
 *   own state machine driven by our Backoff through `retryStrategy`, with `conn_breaker`
 *   stretching the delay while it is open; `autoResubscribe` restores the subscriptions.
 * - Delivery is proven, not assumed: every `probeIntervalMs` the instance publishes a probe to
 *   its own channel and expects it back on the subscriber. A probe not back within
 *   `probeTimeoutMs` marks Redis down and forces the subscriber to reconnect: a subscriber that
 *   silently stopped receiving would otherwise keep the health check green. The probe channel
 *   lies outside `<prefix>*`, so no client, not even one subscribed to `*`, ever sees it.
 * - `redisConnected()` is true only once a probe has come back since the last (re)connection;
 *   at that moment the resync handler hears how long delivery was interrupted.
 */
@Injectable()
export class RedisPubSubService implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly stats = new RedisStats();
  readonly connBreaker: CircuitBreaker;
  readonly pubBreaker: CircuitBreaker;
  private readonly options: ResolvedRedisOptions;
  private readonly logger = new Logger('RedisPubSub');
  private readonly dlqWarning = new ThrottledWarning((line) => this.logger.warn(line));
  private readonly dlq: DeadLetterQueue;
  private readonly instanceId = randomBytes(6).toString('hex');
  private readonly prefixBytes: number;
  private readonly probeChannel: string;

  private url: string | undefined;
  private subscriber: Redis | undefined;
  private publisher: BatchPublisher | undefined;
  private onMessage: RedisMessageHandler = () => undefined;
  private onResync: RedisResyncHandler = () => undefined;

  /** True once a probe has come back since the subscriber last (re)connected. */
  private delivering = false;
  /** True once Redis has processed the subscriber's (re)subscriptions on its current connection. */
  private subscriptionsActive = false;
  /** When delivery was last seen interrupted; undefined while delivering or before the first connection. */
  private downSince: number | undefined;
  private everDelivered = false;
  private probeSeq = 0;
  private pendingProbe: { nonce: string; timer: NodeJS.Timeout } | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Publishes of this tick, sent together when the tick ends. */
  private batch: PendingPublish[] = [];
  private readonly sendBatchSoon = (): void => this.sendBatch();
  /** False once Redis refused to run the batch script: pipelined PUBLISHes from then on. */
  private scriptAllowed = true;
  /** Publishes waiting for their next attempt, by the timer that will send them. */
  private readonly retryTimers = new Map<NodeJS.Timeout, PendingPublish[]>();
  private inFlight = 0;
  private stopping = false;

  constructor(@InjectWseOptions() wseOptions: ResolvedWseOptions) {
    this.options = wseOptions.redis;
    this.url = this.options.url;
    this.dlq = new DeadLetterQueue(this.options.dlqCapacity);
    const onBreakerChange = (name: string, from: CircuitState, to: CircuitState): void =>
      this.logger.warn(redisMessages.breakerChanged(name, from, to));
    this.connBreaker = new CircuitBreaker('conn_breaker', this.options.breaker, Date.now, onBreakerChange);
    this.pubBreaker = new CircuitBreaker('pub_breaker', this.options.breaker, Date.now, onBreakerChange);
    this.prefixBytes = Buffer.byteLength(this.options.prefix);
    // Outside the topic space: it does not start with the prefix (resolveWseOptions checks), so
    // `PSUBSCRIBE <prefix>*` never matches it and no client can receive it.
    this.probeChannel = REDIS_PROBE_CHANNEL_PREFIX + this.instanceId;
  }

  // ---- wiring ------------------------------------------------------------------------------

  /** Registers the handler of inbound messages (the local fan-out). Called once, at start. */
  setMessageHandler(handler: RedisMessageHandler): void {
    this.onMessage = handler;
  }

  setResyncHandler(handler: RedisResyncHandler): void {
    this.onResync = handler;
  }

  /** True when a Redis URL is configured (multi-instance mode), connected or not. */
  get configured(): boolean {
    return this.url !== undefined;
  }

  /** True while Redis is connected and proven to deliver (a probe came back). */
  redisConnected(): boolean {
    return this.delivering && this.subscriber?.status === 'ready' && this.publisher?.status === 'ready';
  }

  get dlqSize(): number {
    return this.dlq.size;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Connects in the background: an outage at boot is the same state as one later. */
  onApplicationBootstrap(): void {
    if (this.url !== undefined) this.start(this.url);
  }

  /**
   * Switches multi-instance mode on at run time (or moves to another Redis). Returns at once;
   * `redisConnected()` tells when delivery is proven.
   */
  async connectRedis(url: string): Promise<void> {
    await this.stop();
    this.stopping = false;
    this.url = url;
    this.start(url);
  }

  /**
   * Stops last, after Nest has closed the HTTP server and the WebSocket endpoint: publishes made
   * while the application shuts down (a request finishing, a destroy hook) still reach Redis.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.stop();
    if (this.dlq.size > 0) this.logger.warn(redisMessages.dlqLostAtShutdown(this.dlq.size));
  }

  // ---- publishing --------------------------------------------------------------------------

  /**
   * Publishes `payload` on `<prefix><topic>`. Never throws and never blocks: a publish that
   * cannot reach Redis ends in the DLQ with the reason.
   */
  publish(topic: string, payload: RedisPayload): void {
    this.attempt(this.options.prefix + topic, payload, 1);
  }

  /** Returns and removes every DLQ entry, oldest first. */
  getDlqEntries(): DeadLetter[] {
    return this.dlq.drain();
  }

  /**
   * Re-publishes every DLQ entry once (no retries: the entries already had theirs). Entries that
   * fail again go back to the DLQ. Resolves when every entry has an outcome.
   */
  async replayDlq(): Promise<DlqReplayResult> {
    const entries = this.dlq.drain();
    const outcomes = await Promise.all(entries.map((entry) => this.publishOnce(entry.channel, entry.payload)));
    let replayed = 0;
    for (let i = 0; i < entries.length; i++) {
      const error = outcomes[i];
      if (error === undefined) replayed++;
      else this.dlq.push({ ...entries[i], error });
    }
    return { replayed, failed: entries.length - replayed };
  }

  /**
   * Queues one attempt for this tick's batch, or dead-letters it at once when it cannot be sent:
   * Redis not connected, the instance stopping, or `pub_breaker` open.
   */
  private attempt(channel: string, payload: RedisPayload, attempt: number): void {
    const publisher = this.publisher;
    if (publisher === undefined || publisher.status !== 'ready' || this.stopping) {
      this.deadLetter(channel, payload, redisMessages.notConnected());
      return;
    }
    if (!this.pubBreaker.allow()) {
      this.deadLetter(channel, payload, redisMessages.breakerOpen('pub_breaker'));
      return;
    }
    if (this.batch.length === 0) process.nextTick(this.sendBatchSoon);
    this.batch.push({ channel, payload, attempt });
  }

  /** Sends what this tick queued, in commands of at most MAX_BATCH_MESSAGES / MAX_BATCH_BYTES. */
  private sendBatch(): void {
    const queued = this.batch;
    if (queued.length === 0) return;
    this.batch = [];
    const publisher = this.publisher;
    if (publisher === undefined || publisher.status !== 'ready') {
      for (const item of queued) this.deadLetter(item.channel, item.payload, redisMessages.notConnected());
      return;
    }
    let start = 0;
    while (start < queued.length) {
      let end = start;
      let bytes = 0;
      while (end < queued.length && end - start < MAX_BATCH_MESSAGES && (end === start || bytes < MAX_BATCH_BYTES)) {
        bytes += queued[end].payload.length;
        end++;
      }
      this.sendCommand(publisher, start === 0 && end === queued.length ? queued : queued.slice(start, end));
      start = end;
    }
  }

  private sendCommand(publisher: BatchPublisher, items: PendingPublish[]): void {
    const count = items.length;
    this.inFlight += count;
    let sent: Promise<BatchRefusals>;
    if (count === 1) {
      sent = publisher.publish(items[0].channel, items[0].payload).then(() => NO_REFUSALS);
    } else {
      const args: RedisPayload[] = new Array<RedisPayload>(count * 2);
      for (let i = 0; i < count; i++) {
        args[2 * i] = items[i].channel;
        args[2 * i + 1] = items[i].payload;
      }
      sent = this.scriptAllowed ? publisher.wsePublishBatch(...args) : publishPipelined(publisher, args);
    }
    sent.then(
      (refusals) => {
        this.inFlight -= count;
        this.settle(items, refusals, undefined);
      },
      (error: unknown) => {
        this.inFlight -= count;
        if (count > 1 && isScriptRefused(error)) {
          // Nothing of the batch was published: the same attempt again, without the script (the
          // batches already on their way when the first refusal came back end up here too).
          if (this.scriptAllowed) this.logger.warn(redisMessages.scriptRefused(errorText(error)));
          this.scriptAllowed = false;
          this.sendCommand(publisher, items);
          return;
        }
        this.settle(items, NO_REFUSALS, errorText(error));
      },
    );
  }

  /**
   * Counts each publish of a command as a success or a failure, as separate PUBLISHes would
   * have been: `refusals` are the messages Redis refused inside a batch, `commandError` fails
   * the whole command. Failed publishes with attempts left go back into a batch after 100 ms,
   * 200 ms, ...; the rest, and all of them once the instance is stopping, go to the DLQ.
   */
  private settle(items: PendingPublish[], refusals: BatchRefusals, commandError: string | undefined): void {
    let refused: Map<number, string> | undefined;
    for (let i = 0; i + 1 < refusals.length; i += 2) {
      (refused ??= new Map()).set(Number(refusals[i]) - 1, String(refusals[i + 1]));
    }
    let retries: Map<number, PendingPublish[]> | undefined;
    for (let i = 0; i < items.length; i++) {
      const error = commandError ?? refused?.get(i);
      if (error === undefined) {
        this.stats.published++;
        this.pubBreaker.recordSuccess();
        continue;
      }
      const item = items[i];
      this.pubBreaker.recordFailure();
      if (item.attempt >= this.options.publishAttempts || this.stopping) {
        this.deadLetter(item.channel, item.payload, error);
        continue;
      }
      retries ??= new Map();
      const group = retries.get(item.attempt);
      if (group === undefined) retries.set(item.attempt, [item]);
      else group.push(item);
    }
    for (const [attempt, group] of retries ?? []) {
      const timer = setTimeout(
        () => {
          this.retryTimers.delete(timer);
          for (const item of group) this.attempt(item.channel, item.payload, attempt + 1);
        },
        this.options.publishRetryDelayMs * 2 ** (attempt - 1),
      );
      timer.unref();
      this.retryTimers.set(timer, group);
    }
  }

  /** One PUBLISH, resolving with the error text or undefined. */
  private async publishOnce(channel: string, payload: RedisPayload): Promise<string | undefined> {
    const publisher = this.publisher;
    if (publisher === undefined || publisher.status !== 'ready') return redisMessages.notConnected();
    if (!this.pubBreaker.allow()) return redisMessages.breakerOpen('pub_breaker');
    try {
      await publisher.publish(channel, payload);
      this.stats.published++;
      this.pubBreaker.recordSuccess();
      return undefined;
    } catch (error) {
      this.pubBreaker.recordFailure();
      return errorText(error);
    }
  }

  private deadLetter(channel: string, payload: RedisPayload, error: string): void {
    this.stats.publishErrors++;
    this.dlq.push({ channel, payload: typeof payload === 'string' ? payload : payload.toString('utf8'), error });
    this.dlqWarning.record((count) => redisMessages.movedToDlq(count, error));
  }

  // ---- connections -------------------------------------------------------------------------

  private start(url: string): void {
    const base: RedisOptions = { lazyConnect: true, connectTimeout: 5000 };
    const subscriberBackoff = new Backoff(this.options.reconnect);
    const publisherBackoff = new Backoff(this.options.reconnect);
    const subscriber = new Redis(url, {
      ...base,
      // Commands (our PSUBSCRIBE) wait for the first connection; after that autoResubscribe
      // restores the subscriptions on every reconnection.
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResubscribe: true,
      retryStrategy: this.retryStrategy(subscriberBackoff, true),
    });
    const publisher = new Redis(url, {
      ...base,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: this.retryStrategy(publisherBackoff, false),
    });
    definePublishBatch(publisher);
    this.subscriber = subscriber;
    this.publisher = publisher;

    subscriber.on('pmessageBuffer', (_pattern: string, channel: Buffer, payload: Buffer) =>
      this.onChannelMessage(channel, payload),
    );
    // The probe comes back on a plain SUBSCRIBE: a Redis ACL can grant `&__wse_probe__:*` for a
    // channel, while a PSUBSCRIBE pattern must equal a granted pattern literally.
    subscriber.on('messageBuffer', (_channel: Buffer, payload: Buffer) => this.onProbe(payload));
    subscriber.on('ready', () => {
      this.onConnectionReady(subscriberBackoff);
      // ioredis writes the (re)subscriptions before it emits 'ready', so once this PING is
      // answered Redis has processed them: a probe published after that cannot overtake them.
      subscriber.ping().then(
        () => {
          this.subscriptionsActive = true;
          this.sendProbe();
        },
        () => undefined, // the connection dropped again; the next 'ready' starts over
      );
    });
    subscriber.on('close', () => (this.subscriptionsActive = false));
    publisher.on('ready', () => this.onConnectionReady(publisherBackoff));
    for (const [role, connection] of [
      ['subscriber', subscriber],
      ['publisher', publisher],
    ] as const) {
      connection.on('error', (error: Error) => this.logger.warn(redisMessages.connectionError(role, error.message)));
      connection.on('close', () => this.markDown());
    }
    const subscribeFailed = (error: unknown): void => {
      if (!this.stopping) this.logger.error(redisMessages.subscribeFailed(errorText(error)));
    };
    subscriber.psubscribe(`${escapeGlob(this.options.prefix)}*`).catch(subscribeFailed);
    subscriber.subscribe(this.probeChannel).catch(subscribeFailed);
    subscriber.connect().catch(() => undefined); // failures are retried by retryStrategy and logged via 'error'
    publisher.connect().catch(() => undefined);

    this.probeTimer = setInterval(() => this.sendProbe(), this.options.probeIntervalMs);
    this.probeTimer.unref();
  }

  /**
   * ioredis asks this after every lost or failed connection. Our Backoff gives the delay; an open
   * `conn_breaker` stretches it to when the breaker half-opens. Never gives up: an outage of any
   * length ends in a reconnection.
   */
  private retryStrategy(backoff: Backoff, countAttempts: boolean): (times: number) => number | null {
    return () => {
      if (this.stopping) return null;
      if (countAttempts) this.stats.reconnectCount++;
      this.connBreaker.recordFailure();
      return Math.max(backoff.next(), this.connBreaker.retryAfterMs());
    };
  }

  /** A connection is up: its backoff starts from 1 s again, and delivery is to be proven. */
  private onConnectionReady(backoff: Backoff): void {
    backoff.reset();
    this.connBreaker.recordSuccess();
    this.sendProbe();
  }

  private markDown(): void {
    if (this.stopping) return;
    this.delivering = false;
    this.downSince ??= Date.now();
  }

  private onChannelMessage(channel: Buffer, payload: Buffer): void {
    this.stats.received++;
    // The prefix is known to be there (the pattern is `<prefix>*`); only the topic is decoded.
    this.onMessage(channel.toString('utf8', this.prefixBytes), payload);
  }

  // ---- delivery probe ----------------------------------------------------------------------

  private sendProbe(): void {
    const publisher = this.publisher;
    if (this.pendingProbe !== undefined || !this.subscriptionsActive || publisher?.status !== 'ready') return;
    const nonce = `${this.instanceId}:${++this.probeSeq}`;
    const timer = setTimeout(() => this.onProbeTimeout(), this.options.probeTimeoutMs);
    timer.unref();
    this.pendingProbe = { nonce, timer };
    // A failed probe publish is the same as a lost probe: the timeout handles both.
    publisher.publish(this.probeChannel, nonce).catch(() => undefined);
  }

  private onProbe(payload: Buffer): void {
    const pending = this.pendingProbe;
    if (pending === undefined || payload.toString('utf8') !== pending.nonce) return;
    clearTimeout(pending.timer);
    this.pendingProbe = undefined;
    // A probe that went round proves both connections work: a success for conn_breaker too, so a
    // half-open breaker closes once delivery is back (two 'ready' events alone are not enough).
    this.connBreaker.recordSuccess();
    if (this.delivering) return;
    this.delivering = true;
    const downSince = this.downSince;
    this.downSince = undefined;
    if (this.everDelivered && downSince !== undefined) {
      const downMs = Date.now() - downSince;
      this.logger.log(redisMessages.deliveringAgain(downMs));
      this.onResync(downMs);
    } else {
      this.logger.log(redisMessages.delivering());
    }
    this.everDelivered = true;
  }

  private onProbeTimeout(): void {
    this.pendingProbe = undefined;
    if (this.stopping) return;
    this.logger.warn(redisMessages.probeLost(this.options.probeTimeoutMs));
    this.markDown();
    // Drop the subscriber's connection and let ioredis reconnect it: a fresh connection is the
    // cure for a subscriber that stopped receiving while its socket still looks alive.
    this.subscriber?.disconnect(true);
  }

  // ---- shutdown ----------------------------------------------------------------------------

  /**
   * Stops probing, waits up to `shutdownTimeoutMs` for publishes in flight, moves what is still
   * waiting for a retry to the DLQ, and quits both connections. Nothing is sent into the void.
   */
  private async stop(): Promise<void> {
    // What this tick published still goes out (shutdown hooks publish too), then nothing new.
    this.sendBatch();
    this.stopping = true;
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    if (this.pendingProbe !== undefined) clearTimeout(this.pendingProbe.timer);
    this.pendingProbe = undefined;
    for (const [timer, group] of this.retryTimers) {
      clearTimeout(timer);
      for (const item of group) this.deadLetter(item.channel, item.payload, redisMessages.shutdown());
    }
    this.retryTimers.clear();
    const deadline = Date.now() + this.options.shutdownTimeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const connections = [this.subscriber, this.publisher].filter((c): c is Redis => c !== undefined);
    this.subscriber = undefined;
    this.publisher = undefined;
    this.delivering = false;
    await Promise.all(connections.map((connection) => quitQuietly(connection)));
  }
}

async function quitQuietly(connection: Redis): Promise<void> {
  if (connection.status === 'ready') {
    try {
      await connection.quit();
      return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  connection.disconnect(false);
}

/** Escapes glob characters so a literal channel can be used as a PSUBSCRIBE pattern. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
