import { randomBytes } from 'node:crypto';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { InjectWseOptions } from '../../config/inject-wse-options.decorator.js';
import type {
  ResolvedRedisCluster,
  ResolvedRedisOptions,
  ResolvedWseOptions,
} from '../../config/wse-module-options.interface.js';
import { CircuitBreaker, type CircuitState } from '../../reliability/circuit-breaker.js';
import {
  DeadLetterQueue,
  neverSent,
  type DeadLetter,
  type DeadLetterReason,
} from '../../reliability/dead-letter-queue.js';
import { ThrottledWarning } from '../../reliability/throttled-warning.js';
import { REDIS_PROBE_CHANNEL_PREFIX } from '../../wse.constants.js';
import { redisMessages } from '../../wse.messages.js';
import { DeliveryProbe } from './delivery-probe.js';
import { InterestSubscriptions } from './interest-subscriptions.js';
import { isScriptRefused, publishPipelined, type BatchReply } from './publish-batch.js';
import { PublishPipeline, type CommandSender, type RedisPayload, type Refusal } from './publish-pipeline.js';
import { escapeGlob, RedisConnections } from './redis-connections.js';
import type { ShardState } from './shard-lane.js';
import { isRedirection, LATE, outcomeOfOne, PUBLISHED, publishByMaster, SHORT } from './sharded-batch.js';
import { RedisHistory, type BatchMessage } from './redis-history.js';
import { RedisStats } from './redis-stats.js';

export type { RedisPayload } from './publish-pipeline.js';

/**
 * Receives every message of the topic space: the topic (prefix stripped) and the payload bytes.
 * In interest routing `glob` is the glob it came through (one PUBLISH can arrive once per
 * matching subscription: see `listening`); undefined for an exact topic's message.
 */
export type RedisMessageHandler = (topic: string, payload: Buffer, glob: string | undefined) => void;

/** Subscription commands in one command, at most (interest routing). */
const MAX_NAMES_PER_COMMAND = 1000;

/**
 * Told when messages may have been missed: the subscriber is delivering again after a gap of
 * `downMs` (`topics` undefined: every topic), or, in a cluster, the slots of `topics` moved to
 * another master (their messages published meanwhile reached no one here).
 */
export type RedisResyncHandler = (downMs: number, topics?: readonly string[]) => void;

/** Cluster: whether a topic's messages must also go on the classic bus, for the globs that match it. */
export type GlobFollowed = (topic: string) => boolean;

/** Cluster: another instance says which globs it follows (all of them; empty when it leaves). */
export type GlobAnnouncementHandler = (instanceId: string, globs: readonly string[]) => void;

/** Outcome of `replayDlq()`. */
export interface DlqReplayResult {
  /** Entries Redis accepted this time, for every instance. */
  replayed: number;
  /** Entries that failed again and are back in the DLQ (their `replays` counts the tries). */
  failed: number;
  /**
   * Entries left in the DLQ untouched because they may have been delivered already
   * (`outcome_unknown`, `partial`): resent only when asked with `{ unknown: true }`.
   */
  skipped: number;
  /** How late the latest of the replayed entries arrived: now minus when it first failed (ms). */
  late_ms: number;
}

/** Options of `replayDlq()`. */
export interface DlqReplayOptions {
  /**
   * Also resend the entries that may have been delivered already (`outcome_unknown`, `partial`),
   * accepting that some subscribers may get them twice. @default false
   */
  unknown?: boolean;
}

/**
 * The broker: Redis Pub/Sub for multi-instance fan-out. It knows channels and bytes and nothing
 * of sockets; whatever arrives goes to the one handler registered at start. It composes three
 * parts, each with its own rules and unit specs:
 *
 * - RedisConnections: the subscriber (`PSUBSCRIBE <prefix>*` and the probe pattern) and the
 *   publisher, their reconnection (ReconnectPolicy: our Backoff, `conn_breaker` counting the
 *   subscriber's failed attempts).
 * - PublishPipeline: batching, bounds, deadlines, retries, `pub_breaker`, and the outcome of every
 *   publish: published, or a dead letter with its reason.
 * - DeliveryProbe: proof of delivery, a frozen Redis told apart from a dead subscriber, the other
 *   instances and whether the bus is whole.
 *
 * What this class adds: the lifecycle (`connectRedis()` serialised; shutdown), the dead letter
 * queue and its replay, the counters, and the rule that nothing is published while the bus is
 * not whole: until this instance has proven delivery, and until every other live instance has
 * proven it is receiving again after this subscriber (re)connected, a publish goes to the DLQ
 * (`not_delivering`) instead of reaching only part of the instances.
 */
@Injectable()
export class RedisPubSubService implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly stats = new RedisStats();
  readonly connBreaker: CircuitBreaker;
  readonly pubBreaker: CircuitBreaker;
  private readonly options: ResolvedRedisOptions;
  private readonly logger = new Logger('RedisPubSub');
  private readonly dlqWarning = new ThrottledWarning((line) => this.logger.warn(line));
  private readonly evictionWarning = new ThrottledWarning((line) => this.logger.warn(line));
  private readonly dlq: DeadLetterQueue;
  private readonly instanceId = randomBytes(6).toString('hex');
  private readonly prefixBytes: number;
  private readonly pipeline: PublishPipeline;
  /**
   * History of history topics in Redis (CONTRACT section 11): reads for recoveries and positions
   * on the publisher connection; appends travel with the publishes (`publishHistory`).
   */
  readonly history: RedisHistory;

  private url: string | undefined;
  private readonly cluster: ResolvedRedisCluster | undefined;
  private connections: RedisConnections | undefined;
  private globFollowed: GlobFollowed = () => false;
  private onGlobs: GlobAnnouncementHandler = () => undefined;
  private probe: DeliveryProbe | undefined;
  /** The URL the current connections use; undefined while none are open. */
  private startedUrl: string | undefined;
  /** connectRedis() calls and shutdown, one after the other. */
  private lifecycle: Promise<void> = Promise.resolve();
  private onMessage: RedisMessageHandler = () => undefined;
  private onResync: RedisResyncHandler = () => undefined;
  private scriptAllowed = true;
  /** Interest routing: the topics and globs this instance listens to, reference counted. */
  private readonly interest: InterestSubscriptions;
  private readonly escapedPrefix: string;
  /** Barriers waiting for their marker to come back, by marker. */
  private readonly barriers = new Map<string, () => void>();
  private barrierSeq = 0;

  constructor(@InjectWseOptions() wseOptions: ResolvedWseOptions) {
    this.options = wseOptions.redis;
    this.history = new RedisHistory(
      {
        prefix: this.options.prefix,
        size: wseOptions.recovery.size,
        ttlMs: wseOptions.recovery.ttlMs,
        maxReplay: wseOptions.recovery.maxReplay,
        clustered: this.options.cluster !== undefined,
      },
      () => {
        const connections = this.connections;
        if (connections === undefined) return undefined;
        if (connections.shards !== undefined)
          return connections.shards.ready ? connections.shards.publisher : undefined;
        return connections.publisherReady ? connections.publisher : undefined;
      },
    );
    this.url = this.options.url;
    this.cluster = this.options.cluster;
    this.dlq = new DeadLetterQueue(this.options.dlqCapacity);
    const onBreakerChange = (name: string, from: CircuitState, to: CircuitState): void =>
      this.logger.warn(redisMessages.breakerChanged(name, from, to));
    this.connBreaker = new CircuitBreaker('conn_breaker', this.options.breaker, Date.now, onBreakerChange);
    this.pubBreaker = new CircuitBreaker('pub_breaker', this.options.breaker, Date.now, onBreakerChange);
    this.prefixBytes = Buffer.byteLength(this.options.prefix);
    this.escapedPrefix = escapeGlob(this.options.prefix);
    this.interest = new InterestSubscriptions({
      maxPerCommand: MAX_NAMES_PER_COMMAND,
      onCommand: () => this.stats.subscriptionCommands++,
      onRefused: (kind, names, message) =>
        this.logger.error(redisMessages.interestRefused(kind, names.length, message)),
    });
    this.pipeline = new PublishPipeline(this.options, this.pubBreaker, this.sender(), {
      gate: () => this.gate(),
      // In interest routing a PUBLISH reaches only the instances following its topic: any count is whole.
      expectedReceivers: () => (this.interestRouting ? 0 : (this.probe?.expectedReceivers ?? 1)),
      published: () => this.stats.published++,
      deadLetter: (channel, payload, reason, error) => this.deadLetter(channel, payload, reason, error),
      answeringChanged: (notAnswering) => this.logger.warn(redisMessages.answering(notAnswering)),
    });
  }

  // ---- wiring ------------------------------------------------------------------------------

  /** Registers the handler of inbound messages (the local fan-out). Called once, at start. */
  setMessageHandler(handler: RedisMessageHandler): void {
    this.onMessage = handler;
  }

  setResyncHandler(handler: RedisResyncHandler): void {
    this.onResync = handler;
  }

  /** Cluster: tells which topics a glob somewhere follows (their messages go on the classic bus too). */
  setGlobFollowed(followed: GlobFollowed): void {
    this.globFollowed = followed;
  }

  setGlobAnnouncementHandler(handler: GlobAnnouncementHandler): void {
    this.onGlobs = handler;
  }

  /**
   * Cluster: tells every instance which globs this one follows, on the classic bus beside the
   * probes, and resolves once the announcement came back to this instance's own subscriber (so
   * Redis has handed it to every instance's subscriber too). At once while Redis is away.
   */
  async announceGlobs(globs: readonly string[]): Promise<void> {
    const connections = this.connections;
    const probe = this.probe;
    if (connections === undefined || probe === undefined || !connections.publisherReady) return;
    await connections.publisher.publish(probe.channel, GLOBS_MARK + JSON.stringify(globs)).catch(() => undefined);
    await this.barrier();
  }

  /** True when each instance listens only to what its connections follow (`routing: 'interest'`, and a cluster). */
  get interestRouting(): boolean {
    return this.options.routing === 'interest';
  }

  /** True with a Redis Cluster (`redis.cluster`). */
  get clustered(): boolean {
    return this.cluster !== undefined;
  }

  /** `pattern`, `interest` or `cluster`: the health body's `redis_mode`. */
  get mode(): 'pattern' | 'interest' | 'cluster' {
    return this.cluster !== undefined ? 'cluster' : this.options.routing;
  }

  /** Cluster: each master and whether it is reachable; empty otherwise. */
  shards(): ShardState[] {
    return this.connections?.shardStates() ?? [];
  }

  /** Topics and globs held in Redis by interest routing. */
  get subscriptionCount(): number {
    return this.interest.size;
  }

  // ---- interest routing ----------------------------------------------------------------------

  /**
   * One more holder of a topic (or, with `glob`, a glob) on this instance: the first one
   * subscribes it in Redis, in the next tick with the other changes of that tick. Interest
   * routing only; a no-op otherwise.
   */
  retain(name: string, glob: boolean): void {
    if (!this.interestRouting) return;
    this.interest.retain(glob ? 'pattern' : 'channel', this.channelOf(name, glob));
  }

  /** One holder fewer; the last one's release unsubscribes it (in the next tick). */
  release(name: string, glob: boolean): void {
    if (!this.interestRouting) return;
    this.interest.release(glob ? 'pattern' : 'channel', this.channelOf(name, glob));
  }

  /**
   * Resolves once Redis delivers the held topic (or glob) here, or after `probeTimeoutMs` while
   * Redis is away (then it is subscribed when Redis is back and a `resync` follows). Undefined
   * when that is so already, without Redis, and in pattern routing.
   */
  whenListening(name: string, glob: boolean): Promise<void> | undefined {
    if (!this.interestRouting || this.connections === undefined) return undefined;
    return this.interest.whenActive(
      glob ? 'pattern' : 'channel',
      this.channelOf(name, glob),
      this.options.probeTimeoutMs,
    );
  }

  /**
   * Inside the message handler: whether the PUBLISH being handled also reached this instance
   * through the topic's exact subscription (`glob` false) or through `name` as a glob. Exact
   * for the point of the subscriber's stream where the message was (see
   * RedisConnections.listening); where ioredis keeps no record, what Redis last confirmed.
   */
  listening(name: string, glob: boolean): boolean {
    const kind = glob ? 'pattern' : 'channel';
    const channel = this.channelOf(name, glob);
    return this.connections?.listening(kind, channel) ?? this.interest.isActive(kind, channel);
  }

  /** Cluster: whether Redis has answered this instance's SSUBSCRIBE of `topic` (its shard's copies arrive). */
  exactLive(topic: string): boolean {
    return this.interest.isActive('channel', this.options.prefix + topic);
  }

  private channelOf(name: string, glob: boolean): string {
    return (glob ? this.escapedPrefix : this.options.prefix) + name;
  }

  /** True when a Redis URL or a cluster is configured (multi-instance mode), connected or not. */
  get configured(): boolean {
    return this.url !== undefined || this.cluster !== undefined;
  }

  /**
   * True while Redis is connected, answering, and proven to deliver here (a probe came back since
   * the last failure).
   */
  redisConnected(): boolean {
    const connections = this.connections;
    const probe = this.probe;
    return (
      connections !== undefined &&
      probe !== undefined &&
      probe.isDelivering &&
      !probe.notAnswering &&
      !this.pipeline.notAnswering &&
      connections.subscriberReady &&
      connections.publisherReady &&
      (connections.shards === undefined || connections.shards.ready)
    );
  }

  get dlqSize(): number {
    return this.dlq.size;
  }

  get dlqEvicted(): number {
    return this.dlq.evicted;
  }

  /** Publishes between acceptance and outcome, their bytes, and the most there ever were. */
  get inFlight(): { messages: number; bytes: number; peak: number } {
    return { messages: this.pipeline.inFlight, bytes: this.pipeline.inFlightBytes, peak: this.pipeline.peakInFlight };
  }

  /** Other live instances on the same prefix, as the probes tell. */
  get peers(): number {
    return this.probe?.peerCount ?? 0;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Connects in the background: an outage at boot is the same state as one later. */
  onApplicationBootstrap(): void {
    const target = this.cluster ?? this.url;
    if (target !== undefined) this.start(target);
  }

  /**
   * Switches multi-instance mode on at run time, or moves to another Redis. Calls run one after
   * the other: the same URL again changes nothing; another URL stops the current connections
   * (and their timers) completely before opening the new ones. Returns once the new connections
   * are opening; `redisConnected()` tells when delivery is proven.
   */
  connectRedis(url: string): Promise<void> {
    return this.serialised(async () => {
      if (this.startedUrl === url) return;
      await this.stop();
      this.url = url;
      this.start(url);
    });
  }

  /**
   * Stops last, after Nest has closed the HTTP server and the WebSocket endpoint: publishes made
   * while the application shuts down (a request finishing, a destroy hook) still reach Redis.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.serialised(() => this.stop());
    if (this.dlq.size > 0) this.logger.warn(redisMessages.dlqLostAtShutdown(this.dlq.size));
  }

  private serialised(step: () => Promise<void>): Promise<void> {
    const next = this.lifecycle.then(step, step);
    this.lifecycle = next.catch(() => undefined);
    return next;
  }

  // ---- publishing --------------------------------------------------------------------------

  /**
   * Publishes `payload` on `<prefix><topic>`. Never throws and never blocks: a publish that
   * cannot reach every instance ends in the DLQ with the reason.
   */
  publish(topic: string, payload: RedisPayload): void {
    this.pipeline.publish(this.options.prefix + topic, payload);
  }

  /**
   * Publishes a message of a history topic (CONTRACT section 11): Redis gives it the topic's
   * next offset, keeps it and publishes it stamped, in one step (history-scripts.ts), batched
   * and accounted for like any publish. `payload` must be a JSON object's text or bytes.
   */
  publishHistory(topic: string, payload: RedisPayload): void {
    this.pipeline.publish(this.options.prefix + topic, payload, topic);
  }

  /**
   * Resolves once everything Redis published before this call has reached this instance's
   * subscriber: a marker PUBLISHed now on this instance's probe channel comes back behind them
   * (Redis delivers to a subscriber in publish order). Replies on the publisher connection can
   * overtake messages still on their way to the subscriber; a recovery waits for this before
   * it merges a history read with the live messages. Resolves anyway after `probeTimeoutMs`,
   * or at once while Redis is not connected.
   */
  barrier(): Promise<void> {
    const connections = this.connections;
    const probe = this.probe;
    if (connections === undefined || probe === undefined || !connections.publisherReady) return Promise.resolve();
    const marker = `${BARRIER_MARK}${this.instanceId}:${++this.barrierSeq}`;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.barriers.delete(marker);
        resolve();
      };
      const timer = setTimeout(done, this.options.probeTimeoutMs);
      timer.unref();
      this.barriers.set(marker, done);
      connections.publisher.publish(probe.channel, marker).catch(done);
    });
  }

  /**
   * The barrier a recovery of `topic` waits for after its history read: `barrier()`, or in a
   * cluster a marker on the topic's slot, which travels the master and the sharded subscriber
   * connection the topic's messages take.
   */
  historyBarrier(topic: string): Promise<void> {
    const shards = this.connections?.shards;
    if (shards === undefined) return this.barrier();
    return shards.ready ? shards.barrier(this.options.prefix + topic) : Promise.resolve();
  }

  /** Returns and removes every DLQ entry, oldest first. */
  getDlqEntries(): DeadLetter[] {
    return this.dlq.drain();
  }

  /** Returns every DLQ entry, oldest first, leaving them in the queue (for monitoring). */
  peekDlqEntries(): DeadLetter[] {
    return this.dlq.peek();
  }

  /**
   * Re-publishes the DLQ's entries once each (no retries: they already had theirs). Entries that
   * may have been delivered already are left in place unless `unknown` is set; entries that fail
   * again go back with their reason and one more `replays`. Resolves when every entry has an
   * outcome. A replayed message arrives late: the result and the log say how late.
   */
  async replayDlq(options: DlqReplayOptions = {}): Promise<DlqReplayResult> {
    const entries = this.dlq.drain();
    const now = Date.now();
    const outcomes = await Promise.all(
      entries.map((entry) =>
        options.unknown !== true && !neverSent(entry.reason)
          ? SKIPPED
          : this.pipeline.publishOnce(entry.channel, entry.payload),
      ),
    );
    const result: DlqReplayResult = { replayed: 0, failed: 0, skipped: 0, late_ms: 0 };
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      const outcome = outcomes[i];
      if (outcome === SKIPPED) {
        result.skipped++;
        this.dlq.push(entry);
      } else if (outcome === undefined) {
        result.replayed++;
        result.late_ms = Math.max(result.late_ms, now - entry.failedAt);
      } else {
        result.failed++;
        this.dlq.push({ ...entry, reason: outcome.reason, error: outcome.error, replays: entry.replays + 1 });
      }
    }
    this.stats.dlqReplayed += result.replayed;
    if (result.replayed > 0) this.logger.log(redisMessages.replayed(result.replayed, result.late_ms));
    return result;
  }

  /** Why nothing may be published now, as far as the connections and the bus are concerned. */
  private gate(): Refusal | undefined {
    const probe = this.probe;
    if (probe === undefined || this.connections?.publisherReady !== true) return NOT_CONNECTED;
    if (probe.notAnswering) return NOT_ANSWERING;
    if (probe.whole) return undefined;
    return probe.isDelivering
      ? { reason: 'not_delivering', error: redisMessages.peersUnconfirmed(probe.unconfirmedPeers) }
      : NOT_DELIVERING;
  }

  private deadLetter(channel: string, payload: RedisPayload, reason: DeadLetterReason, error: string): void {
    this.stats.publishErrors++;
    if (reason === 'outcome_unknown') this.stats.publishUnknown++;
    else if (reason === 'partial') this.stats.publishPartial++;
    if (this.dlq.push({ channel, payload, error, reason, failedAt: Date.now(), replays: 0 })) {
      this.evictionWarning.record((count) => redisMessages.dlqEvicted(count));
    }
    this.dlqWarning.record((count) => redisMessages.movedToDlq(count, error));
  }

  /** The pipeline's view of the current publisher connection, with the script fallback. */
  private sender(): CommandSender {
    const writable = (): boolean => this.connections?.publisherReady === true;
    const clustered = this.cluster !== undefined;
    return {
      get writable(): boolean {
        return writable();
      },
      batchesOnly: clustered,
      publish: clustered
        ? (channel, payload) => this.publishOneSharded(channel, payload)
        : (channel, payload) => this.connections!.publisher.publish(channel, payload),
      publishBatch: clustered
        ? (_expected, args) => this.publishSharded(args)
        : (expected, args) => this.publishBatch(expected, args),
      publishHistoryBatch: clustered
        ? (_expected, messages) => this.publishShardedHistory(messages)
        : (expected, messages) =>
            this.connections!.publisher.wsePublishHistoryBatch(...this.history.batchArguments(expected, messages)),
    };
  }

  /**
   * A cluster's batch: grouped by the master owning each message's slot, one script call of
   * SPUBLISHes per master (sharded-batch.ts), and the messages whose topic a glob follows
   * somewhere also as one classic batch (the script, on the classic bus). A message its master's
   * script could not publish (its slot is not there: a stale slot map, a migration) goes again
   * alone as an `SPUBLISH`, which ioredis routes and redirects. Each master's command waits at
   * most half the publish timeout (one timer per batch), so a shard that is down delays only its
   * own messages: they are refused (and retried) when it refused them, `partial` when it did not
   * answer in time or their classic copy went out alone, the others succeed.
   */
  private async publishSharded(args: RedisPayload[]): Promise<BatchReply> {
    const shards = this.connections!.shards!;
    const count = args.length / 2;
    const classic: RedisPayload[] = [];
    let classicOf: boolean[] | undefined;
    for (let i = 0; i < count; i++) {
      const channel = args[2 * i] as string;
      if (this.globFollowed(channel.slice(this.options.prefix.length))) {
        classic.push(channel, args[2 * i + 1]);
        (classicOf ??= new Array<boolean>(count).fill(false))[i] = true;
      }
    }
    const sent = publishByMaster(
      count,
      {
        grouped: shards.grouped,
        ownerOf: (i) => shards.ownerOfChannel(args[2 * i] as string),
        group: (indexes) => {
          const part = new Array<RedisPayload>(indexes.length * 2);
          for (let j = 0; j < indexes.length; j++) {
            part[2 * j] = args[2 * indexes[j]];
            part[2 * j + 1] = args[2 * indexes[j] + 1];
          }
          return shards.publishGroup(part);
        },
        alone: (i) => shards.publish(args[2 * i] as string, args[2 * i + 1]).then(PUBLISHED),
        sendAlone: (error) => this.shardScriptRefused(error) || isRedirection(error),
      },
      Math.max(1, Math.floor(this.options.publishTimeoutMs / 2)),
    );
    const classicDone =
      classic.length === 0
        ? Promise.resolve(true)
        : this.publishBatch(0, classic).then(
            (reply) => reply.length === 0,
            () => false,
          );
    const [outcomes, classicOk] = await Promise.all([sent, classicDone]);
    const reply: (number | string)[] = [];
    for (let i = 0; i < count; i++) {
      const outcome = outcomes[i];
      const copied = classicOf?.[i] === true;
      if (outcome === undefined && (classicOk || !copied)) continue;
      if (outcome !== undefined && outcome !== LATE && !(copied && classicOk)) reply.push(i + 1, outcome);
      else reply.push(-(i + 1), 0);
    }
    return reply;
  }

  /**
   * A cluster's batch holding messages on history topics: grouped by master as `publishSharded`,
   * each group one history script call (history-scripts.ts) that numbers, keeps and SPUBLISHes
   * the messages of its master and PUBLISHes the stamped copy on the classic bus of those a glob
   * follows; a message refused inside it (its slot is not there) goes again alone, as a script
   * call of its own routed by ioredis. Outcomes as `publishSharded`'s.
   */
  private async publishShardedHistory(messages: readonly BatchMessage[]): Promise<BatchReply> {
    const shards = this.connections!.shards!;
    const publisher = shards.publisher;
    const count = messages.length;
    const classic = new Array<boolean>(count);
    for (let i = 0; i < count; i++)
      classic[i] = this.globFollowed(messages[i].channel.slice(this.options.prefix.length));
    const outcomes = await publishByMaster(
      count,
      {
        grouped: true,
        ownerOf: (i) => shards.ownerOfChannel(messages[i].channel),
        group: (indexes) =>
          publisher.wseClusterHistoryBatch(...this.history.clusterArguments(messages, indexes, classic)),
        alone: (i) =>
          publisher.wseClusterHistoryBatch(...this.history.clusterArguments(messages, [i], classic)).then(outcomeOfOne),
        sendAlone: isRedirection,
      },
      Math.max(1, Math.floor(this.options.publishTimeoutMs / 2)),
    );
    const reply: (number | string)[] = [];
    for (let i = 0; i < count; i++) {
      const outcome = outcomes[i];
      if (outcome === undefined) continue;
      if (outcome === LATE || outcome === SHORT) reply.push(-(i + 1), 0);
      else reply.push(i + 1, outcome);
    }
    return reply;
  }

  /**
   * True when Redis refused a master's batch script itself (an ACL without EVAL, or without the
   * key its first channel is declared as): from then on each message is its own SPUBLISH.
   */
  private shardScriptRefused(error: unknown): boolean {
    if (!isScriptRefused(error) && !(error instanceof Error && /^NOPERM\b/.test(error.message))) return false;
    const shards = this.connections?.shards;
    if (shards?.grouped === true) {
      this.logger.warn(redisMessages.scriptRefused((error as Error).message));
      shards.grouped = false;
    }
    return true;
  }

  private async publishOneSharded(channel: string, payload: RedisPayload): Promise<number> {
    const reply = await this.publishSharded([channel, payload]);
    if (reply.length === 0) return 1;
    if (reply[0] === 1) throw new Error(String(reply[1]));
    return 0;
  }

  /**
   * One batch command: the script, or pipelined PUBLISHes for a Redis that refuses scripts (an
   * ACL without EVAL), from its first refusal on, with nothing lost or counted as failed in the
   * switch: a refused script ran nothing.
   */
  private async publishBatch(expected: number, args: RedisPayload[]): Promise<BatchReply> {
    const publisher = this.connections!.publisher;
    if (this.scriptAllowed) {
      try {
        return await publisher.wsePublishBatch(expected, ...args);
      } catch (error) {
        if (!isScriptRefused(error)) throw error;
        if (this.scriptAllowed) this.logger.warn(redisMessages.scriptRefused((error as Error).message));
        this.scriptAllowed = false;
      }
    }
    return publishPipelined(publisher, expected, args);
  }

  /** Another instance's glob announcement (its own come back too, and are skipped). */
  private globsArrived(channel: string, payload: string): void {
    const instanceId = channel.slice(REDIS_PROBE_CHANNEL_PREFIX.length);
    if (instanceId === this.instanceId) return;
    let globs: unknown;
    try {
      globs = JSON.parse(payload.slice(GLOBS_MARK.length));
    } catch {
      return;
    }
    if (Array.isArray(globs) && globs.every((glob) => typeof glob === 'string')) this.onGlobs(instanceId, globs);
  }

  // ---- connections and the probe -----------------------------------------------------------

  private start(target: string | ResolvedRedisCluster): void {
    this.startedUrl = typeof target === 'string' ? target : undefined;
    const probe = new DeliveryProbe(
      {
        instanceId: this.instanceId,
        prefix: this.options.prefix,
        intervalMs: this.options.probeIntervalMs,
        timeoutMs: this.options.probeTimeoutMs,
        // A classic PUBLISH on a cluster counts only the subscribers of the node it ran on.
        repliesCountEveryone: this.cluster === undefined,
      },
      {
        publish: (channel, payload) =>
          this.connections!.publisher.publish(channel, payload).then((receivers) => {
            this.pipeline.lastReplyAt = Date.now();
            return receivers;
          }),
        replaceSubscriber: () => this.connections?.replaceSubscriber(),
        onDelivering: (downMs) => {
          if (downMs === undefined) {
            this.logger.log(redisMessages.delivering());
            return;
          }
          this.logger.log(redisMessages.deliveringAgain(downMs));
          this.onResync(downMs);
        },
        onDown: (reason) => this.logger.warn(redisMessages.probeDown(reason, this.options.probeTimeoutMs)),
        // A probe that went round proves the subscriber's connection: a success for conn_breaker,
        // so a half-open breaker closes once delivery is back (one 'ready' alone is not enough).
        onRoundTrip: () => this.connBreaker.recordSuccess(),
        lastAnswerAt: () => this.pipeline.lastReplyAt,
        receivedCount: () => this.stats.received,
      },
    );
    this.probe = probe;
    this.connections = new RedisConnections(
      target,
      this.options,
      this.connBreaker,
      {
        onMessage: (channel, payload, pattern) => {
          this.stats.received++;
          // The prefix is known to be there (every subscription starts with it); only the topic is decoded.
          const glob = pattern === undefined ? undefined : pattern.slice(this.escapedPrefix.length);
          this.onMessage(channel.toString('utf8', this.prefixBytes), payload, glob);
        },
        onProbe: (channel, payload) => {
          // Barriers ride on the probe channels too; the probes of every version ignore them.
          if (payload.startsWith(BARRIER_MARK)) this.barriers.get(payload)?.();
          else if (payload.startsWith(GLOBS_MARK)) this.globsArrived(channel, payload);
          else {
            probe.onMessage(channel, payload);
            if (payload.startsWith(BYE_MARK)) this.globsArrived(channel, `${GLOBS_MARK}[]`);
          }
        },
        onSubscriberConnected: () => probe.subscriberConnected(),
        onSubscriberActive: () => probe.subscriberActive(),
        onSubscriberLost: () => probe.subscriberLost(),
        onPublisherReady: () => {
          this.pipeline.onConnected();
          probe.publisherReady();
        },
        onPublisherLost: () => probe.publisherLost(),
        onSubscribeFailed: (message) => this.logger.error(redisMessages.subscribeFailed(message)),
        onError: (role, message) => this.logger.warn(redisMessages.connectionError(role, message)),
        onReconnectAttempt: () => this.stats.reconnectCount++,
        onShardsMoved: (channels) => {
          const topics = channels.map((channel) => channel.slice(this.options.prefix.length));
          this.logger.warn(redisMessages.shardsMoved(topics.length));
          this.onResync(0, topics);
        },
      },
      this.instanceId,
    );
    if (this.interestRouting) this.interest.attach(this.connections);
    this.pipeline.start();
    probe.start();
  }

  /**
   * Stops probing, says goodbye to the other instances, lets the pipeline end every publish
   * (waiting up to `shutdownTimeoutMs` for those on their way), and quits both connections.
   * Nothing is sent into the void, and no connection or timer is left behind.
   */
  private async stop(): Promise<void> {
    const connections = this.connections;
    const probe = this.probe;
    if (connections === undefined || probe === undefined) return;
    probe.stop();
    this.interest.attach(undefined);
    for (const done of [...this.barriers.values()]) done();
    if (connections.publisherReady) {
      connections.publisher.publish(probe.channel, probe.byePayload()).catch(() => undefined);
    }
    await this.pipeline.stop(this.options.shutdownTimeoutMs);
    this.connections = undefined;
    this.probe = undefined;
    this.startedUrl = undefined;
    await connections.stop();
  }
}

const SKIPPED: unique symbol = Symbol('skipped');

/** Starts a barrier marker: never the probes' `wse1 ` version prefix, so they ignore it. */
const BARRIER_MARK = 'barrier ';
/** Starts a glob announcement (cluster): `globs ["a:*",...]`, ignored by the probes as well. */
const GLOBS_MARK = 'globs ';
/** A probe's goodbye (`wse1 bye ...`): the instance's globs go with it. */
const BYE_MARK = 'wse1 bye ';
const NOT_CONNECTED: Refusal = Object.freeze({ reason: 'not_connected', error: redisMessages.notConnected() });
const NOT_ANSWERING: Refusal = Object.freeze({ reason: 'not_answering', error: redisMessages.notAnswering() });
const NOT_DELIVERING: Refusal = Object.freeze({ reason: 'not_delivering', error: redisMessages.notDelivering() });
