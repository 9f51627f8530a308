import { Redis, type RedisOptions } from 'ioredis';
import type { ResolvedRedisCluster, ResolvedRedisOptions } from '../../config/wse-module-options.interface.js';
import { Backoff } from '../../reliability/backoff.js';
import type { CircuitBreaker } from '../../reliability/circuit-breaker.js';
import { PROBE_PATTERN } from './delivery-probe.js';
import { defineHistoryCommands, type HistoryCommands } from './history-scripts.js';
import type { InterestCommands, InterestKind } from './interest-subscriptions.js';
import { definePublishBatch, type BatchPublisher } from './publish-batch.js';
import { rotatingConnector } from './node-rotation.js';
import { quitQuietly } from './quit-quietly.js';
import { ReconnectPolicy } from './reconnect-policy.js';
import { ShardLane, type ShardState } from './shard-lane.js';

/** What the two connections report. */
export interface ConnectionEvents {
  /**
   * A message of the topic space, as Redis sent it. `pattern` is the PSUBSCRIBE pattern it came
   * through in interest routing; undefined for an exact channel's message and in pattern routing.
   */
  onMessage(channel: Buffer, payload: Buffer, pattern: string | undefined): void;
  /** A delivery probe (this instance's or another's). */
  onProbe(channel: string, payload: string): void;
  /** The subscriber has a new connection; its (re)subscriptions are on their way. */
  onSubscriberConnected(): void;
  /** Redis has processed the subscriber's (re)subscriptions on its current connection. */
  onSubscriberActive(): void;
  onSubscriberLost(): void;
  onPublisherReady(): void;
  onPublisherLost(): void;
  /** A subscribe command failed (an ACL refusing the pattern...). */
  onSubscribeFailed(message: string): void;
  onError(role: 'subscriber' | 'publisher' | 'shards', message: string): void;
  /** The subscriber is about to try connecting again (`redis_reconnect_count`). */
  onReconnectAttempt(): void;
  /** Cluster: sharded channels whose slot moved to another master (see ShardLane). */
  onShardsMoved(channels: string[]): void;
}

const BASE: RedisOptions = Object.freeze({ lazyConnect: true, connectTimeout: 5000 });

/**
 * The subscriber's ioredis options. Its commands (the PSUBSCRIBEs) wait for the first
 * connection; after that autoResubscribe restores the subscriptions on every reconnection.
 */
export function subscriberOptions(retryStrategy: () => number | null): RedisOptions {
  return { ...BASE, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true, retryStrategy };
}

/**
 * The publisher's ioredis options. No offline queue: a publish while disconnected fails at once
 * into our DLQ instead of waiting in a client-side queue without bound. `maxRetriesPerRequest: 0`
 * rejects the commands on their way the moment the connection closes, and
 * `autoResendUnfulfilledCommands: false` keeps ioredis from sending them again on the next
 * connection: Redis may have run them already, so only our pipeline decides (it does not resend
 * them: their outcome is unknown, see PublishPipeline).
 */
export function publisherOptions(retryStrategy: () => number | null): RedisOptions {
  return {
    ...BASE,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy,
  };
}

/** Escapes glob characters so a literal channel prefix can be used in a PSUBSCRIBE pattern. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * The two Redis connections of one instance and their reconnection. ioredis owns each
 * connection's state machine; a ReconnectPolicy per connection gives it the delays.
 * `conn_breaker` guards the subscriber, the seed's listener: one failure per failed attempt of
 * that connection. The publisher reconnects on its own backoff; its failures show in
 * `pub_breaker` through the commands Redis refuses.
 */
export class RedisConnections implements InterestCommands {
  readonly subscriber: Redis;
  readonly publisher: BatchPublisher & HistoryCommands;
  /**
   * With a Redis Cluster: sharded pub/sub for the exact topics. The two connections above then
   * go to any one node of the cluster (the next on each reconnection) and carry the classic bus:
   * the probes, the globs and the copies published for them.
   */
  readonly shards: ShardLane | undefined;
  private stopping = false;
  private subscriptionsActive = false;
  private readonly subscriberPolicy: ReconnectPolicy;

  constructor(
    target: string | ResolvedRedisCluster,
    options: ResolvedRedisOptions,
    connBreaker: CircuitBreaker,
    events: ConnectionEvents,
    /** This instance's id (the cluster's slot markers carry it). */
    instanceId: string,
  ) {
    const subscriberPolicy = new ReconnectPolicy(new Backoff(options.reconnect), connBreaker);
    this.subscriberPolicy = subscriberPolicy;
    const publisherPolicy = new ReconnectPolicy(new Backoff(options.reconnect));
    const connect = (redisOptions: RedisOptions): Redis =>
      typeof target === 'string'
        ? new Redis(target, redisOptions)
        : new Redis({
            ...redisOptions,
            Connector: rotatingConnector(target.nodes),
            username: target.username,
            password: target.password,
          });
    const subscriber = connect(
      subscriberOptions(() => {
        if (this.stopping) return null;
        events.onReconnectAttempt();
        return subscriberPolicy.nextDelay();
      }),
    );
    const publisher = connect(publisherOptions(() => (this.stopping ? null : publisherPolicy.nextDelay())));
    this.shards =
      typeof target === 'string'
        ? undefined
        : new ShardLane(
            target,
            { instanceId, intervalMs: options.probeIntervalMs, timeoutMs: options.probeTimeoutMs },
            {
              onMessage: (channel, payload) => events.onMessage(channel, payload, undefined),
              onMoved: (channels) => {
                if (!this.stopping) events.onShardsMoved(channels);
              },
              onError: (message) => events.onError('shards', message),
            },
          );
    definePublishBatch(publisher);
    defineHistoryCommands(publisher);
    this.subscriber = subscriber;
    this.publisher = publisher;

    const probeLength = PROBE_PATTERN.length;
    const interest = options.routing === 'interest';
    // ioredis hands the pattern as text, the channel and payload as the bytes Redis sent.
    subscriber.on('pmessageBuffer', (pattern: string, channel: Buffer, payload: Buffer) => {
      // Cheapest first: the topic pattern and the probe pattern rarely have the same length.
      if (pattern.length === probeLength && pattern === PROBE_PATTERN) {
        events.onProbe(channel.toString('utf8'), payload.toString('utf8'));
      } else {
        events.onMessage(channel, payload, interest ? pattern : undefined);
      }
    });
    if (interest) {
      subscriber.on('messageBuffer', (channel: Buffer, payload: Buffer) =>
        events.onMessage(channel, payload, undefined),
      );
    }
    subscriber.on('ready', () => {
      subscriberPolicy.onConnected();
      if (!this.stopping) events.onSubscriberConnected();
      // ioredis writes the (re)subscriptions before it emits 'ready', so once this PING is
      // answered Redis has processed them: a probe published after that cannot overtake them.
      subscriber.ping().then(
        () => {
          if (subscriber.status !== 'ready' || this.stopping) return;
          this.subscriptionsActive = true;
          events.onSubscriberActive();
        },
        () => undefined, // the connection dropped again; the next 'ready' starts over
      );
    });
    subscriber.on('close', () => {
      const was = this.subscriptionsActive;
      this.subscriptionsActive = false;
      if (!this.stopping && was) events.onSubscriberLost();
    });
    let publisherWasReady = false;
    publisher.on('ready', () => {
      publisherWasReady = true;
      publisherPolicy.onConnected();
      if (!this.stopping) events.onPublisherReady();
    });
    publisher.on('close', () => {
      if (!publisherWasReady || this.stopping) return;
      publisherWasReady = false;
      events.onPublisherLost();
    });
    subscriber.on('error', (error: Error) => events.onError('subscriber', error.message));
    publisher.on('error', (error: Error) => events.onError('publisher', error.message));

    const subscribeFailed = (error: unknown): void => {
      if (!this.stopping) events.onSubscribeFailed(error instanceof Error ? error.message : String(error));
    };
    // Interest routing subscribes topic by topic (InterestSubscriptions); both listen to the probes.
    const patterns = interest ? [PROBE_PATTERN] : [`${escapeGlob(options.prefix)}*`, PROBE_PATTERN];
    subscriber.psubscribe(...patterns).catch(subscribeFailed);
    subscriber.connect().catch(() => undefined); // failures are retried by retryStrategy and reported via 'error'
    publisher.connect().catch(() => undefined);
  }

  get publisherReady(): boolean {
    return this.publisher.status === 'ready';
  }

  get subscriberReady(): boolean {
    return this.subscriptionsActive && this.subscriber.status === 'ready';
  }

  subscribe(kind: InterestKind, names: string[]): Promise<unknown> {
    if (kind === 'pattern') return this.subscriber.psubscribe(...names);
    return this.shards !== undefined ? this.shards.subscribe(names) : this.subscriber.subscribe(...names);
  }

  unsubscribe(kind: InterestKind, names: string[]): Promise<unknown> {
    if (kind === 'pattern') return this.subscriber.punsubscribe(...names);
    return this.shards !== undefined ? this.shards.unsubscribe(names) : this.subscriber.unsubscribe(...names);
  }

  /** The cluster's masters and their state; empty without a cluster. */
  shardStates(): ShardState[] {
    return this.shards?.shards() ?? [];
  }

  /**
   * True when, at this point of the subscriber's stream, Redis has `name` subscribed on this
   * connection: ioredis records each (un)subscribe reply as it parses it, in order with the
   * messages, so inside a message handler this says exactly whether the same PUBLISH also reached
   * this connection through `name`. Undefined when ioredis keeps no such record (another version).
   */
  listening(kind: InterestKind, name: string): boolean | undefined {
    const condition = this.subscriber.condition as { subscriber?: unknown } | null;
    const confirmed = condition?.subscriber;
    if (confirmed === false) return false;
    const set = (confirmed as ConfirmedSubscriptions | undefined)?.set;
    if (set === undefined) return undefined;
    return set[kind === 'channel' ? 'subscribe' : 'psubscribe'][name] === true;
  }

  /** Drops the subscriber's connection; ioredis connects a new one at once and re-subscribes. */
  replaceSubscriber(): void {
    if (this.stopping) return;
    this.subscriberPolicy.replace();
    this.subscriber.disconnect(true);
  }

  /** Quits both connections (a hard disconnect for one that is not up). Nothing is left open. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([quitQuietly(this.subscriber), quitQuietly(this.publisher), this.shards?.stop()]);
  }
}

/** The shape of ioredis's SubscriptionSet (the record behind `listening`). */
interface ConfirmedSubscriptions {
  readonly set?: {
    readonly subscribe: Readonly<Record<string, true>>;
    readonly psubscribe: Readonly<Record<string, true>>;
  };
}
