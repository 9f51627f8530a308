import { Injectable, type OnModuleInit } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { RedisPubSubService } from '../broker/redis/redis-pubsub.service.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { isTopicPattern } from '../hub/topic-pattern.js';
import type { HistoryPosition, HistoryRead } from '../protocol/history.js';
import { SystemFrames, textFrame } from '../protocol/outbound-frame.js';
import type { RecoveryPosition } from '../protocol/recovery-request.js';
import { isStampable, isStampableText, readStamp } from '../protocol/stamp.js';
import type { TopicSubscriber } from '../protocol/topic-subscriber.js';
import { GlobDirectory } from './glob-directory.js';
import { InterestRouting } from './interest-routing.js';
import { encodePayload, serializePayload } from './payload.js';
import { TopicHistoryService } from './topic-history.service.js';

/** What `server_ready` and `server_hello` advertise in `features`. */
export type WseFeatures = Readonly<Record<string, boolean>>;

/** A topic to recover, from the position the client saw last. */
export interface TopicRecovery extends RecoveryPosition {
  readonly topic: string;
}

/** What `recover()` found, handed to its caller once every read is back. */
export interface RecoveryOutcome {
  /** The history read of a recovered topic; undefined when it could not be read. */
  read(topic: string): HistoryRead | undefined;
  /** The position of a position-only topic; undefined when it could not be read. */
  position(topic: string): HistoryPosition | undefined;
  /** True when more live messages arrived during the read than a hold keeps (see HOLD_LIMIT). */
  overflowed(topic: string): boolean;
  /** True when the connection unsubscribed from the topic while its history was read. */
  cancelled(topic: string): boolean;
  /**
   * Sends the topic's missed messages (when its read recovered) and then the live messages held
   * while the history was read, skipping those the replay already covered. Call it once the
   * connection is subscribed to the topic again, in the same synchronous step. Returns how many
   * messages the replay sent.
   */
  replay(topic: string): number;
}

/** Live messages of one topic held for one connection while its history is read. */
interface Hold {
  readonly connection: TopicSubscriber;
  readonly buffered: Buffer[];
  overflowed: boolean;
  cancelled: boolean;
}

/**
 * A hold keeps at most this many live messages. More arriving within one history read means a
 * topic far busier than its history (`size`) can cover anyway: that topic is answered
 * `recovered: false` instead of growing memory without bound.
 */
const HOLD_LIMIT = 10_000;

/**
 * The node: the one place that knows both halves, the hub (TopicRegistryService: connections
 * and topics) and the broker (RedisPubSubService: channels and bytes). It decides where a
 * publish goes (Redis when configured, else straight to the local fan-out), hands whatever
 * arrives through Redis to the same `deliver` path as a local publish (so the once-per-
 * connection guarantee holds whichever way a message came), tells connections after a bus gap
 * (`resync`), and says which features this node offers. Each half is tested alone; this joins
 * them.
 *
 * History topics (CONTRACT section 11) take one more step on their way: with Redis the publish
 * goes through the history script (offset, history and PUBLISH of the stamped payload in one
 * step, so every instance delivers the same stamped bytes); without Redis the message is
 * recorded in the in-memory history, which stamps it (`tp`, `e`, `o`) once. Plain topics pay
 * one field check for it.
 *
 * Routing (CONTRACT section 9): in interest routing InterestRouting tells the broker what this
 * instance follows and lets one copy of a message through however many of its subscriptions it
 * came by; with a Redis Cluster a message comes by the topic's shard (for the connections
 * holding the topic) or by the classic bus (for those holding a matching glob, which
 * GlobDirectory makes the publishers send), and `deliverClustered` keeps the two apart.
 *
 * Recovery (`recover()`): the connection's live messages on the topic are held from before the
 * history is read until the caller has subscribed it again and sent the replay, then released
 * behind it, minus what the replay already covered (by offset). Whatever the store's latency,
 * a recovered connection sees the missed messages, in order, then the live ones, with nothing
 * missing and nothing twice at the seam.
 */
@Injectable()
export class WseNode implements OnModuleInit {
  /** Holds by topic; empty except while recoveries wait for their history reads. */
  private readonly holds = new Map<string, Hold[]>();
  /** Interest routing's half in the node; undefined in pattern routing. */
  private readonly interest: InterestRouting | undefined;
  /** Cluster: the globs followed anywhere (their topics' messages also go on the classic bus). */
  private readonly globs: GlobDirectory | undefined;

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly registry: TopicRegistryService,
    private readonly redis: RedisPubSubService,
    private readonly frames: SystemFrames,
    private readonly history: TopicHistoryService,
  ) {
    this.interest = redis.interestRouting ? new InterestRouting(registry, redis) : undefined;
    this.globs = redis.clustered ? new GlobDirectory(registry, redis, 5 * options.redis.probeIntervalMs) : undefined;
  }

  onModuleInit(): void {
    const registry = this.registry;
    const stats = this.redis.stats;
    const interest = this.interest;
    interest?.start(() => this.globs?.changed());
    this.globs?.start();
    const clustered = this.globs !== undefined;
    this.redis.setMessageHandler((topic, payload, glob) => {
      // Interest routing: one PUBLISH may come once per matching subscription; one copy leads.
      if (glob !== undefined && interest !== undefined && !interest.leads(topic, glob)) {
        stats.duplicatesDropped++;
        return;
      }
      const failuresBefore = registry.sendFailures;
      if (!clustered) stats.delivered += this.deliver(topic, payload);
      else stats.delivered += this.deliverClustered(topic, payload, glob);
      stats.dropped += registry.sendFailures - failuresBefore;
    });
    this.redis.setResyncHandler((downMs, topics) =>
      topics === undefined ? this.sendResync(downMs) : this.tellMoved(topics),
    );
  }

  /** True when messages travel through Redis (multi-instance mode), connected or not. */
  get multiInstance(): boolean {
    return this.redis.configured;
  }

  /**
   * Publishes to every subscriber of `topic` on every instance: through Redis when configured
   * (each instance, this one included, delivers what Redis hands it), otherwise locally.
   * The topic must already be valid (callers check it).
   */
  publish(topic: string, data: unknown): void {
    if (!this.redis.configured) {
      this.deliverLocal(topic, encodePayload(data));
      return;
    }
    const payload = serializePayload(data);
    // On a history topic Redis numbers, keeps and stamps the message as it publishes it.
    if (this.history.isHistoryTopic(topic) && isStampableText(payload)) this.redis.publishHistory(topic, payload);
    else this.redis.publish(topic, payload);
  }

  /**
   * Resolves once Redis delivers each of `topics` (topics and globs just subscribed) to this
   * instance: in interest routing a `subscription_update` waits for it, so a message published
   * after the client read its success reaches it. Undefined when nothing needs waiting for.
   */
  whenRouted(topics: readonly string[]): Promise<void> | undefined {
    if (topics.length === 0) return undefined;
    const listening = this.interest?.whenListening(topics);
    // Cluster: a new glob must also be known to the publishers before its answer.
    const globs = this.globs;
    if (globs === undefined || !topics.some(isTopicPattern)) return listening;
    return Promise.all([listening, globs.announced()]).then(() => undefined);
  }

  /**
   * Delivers to this instance's subscribers only. On a history topic without Redis the message
   * is stamped and recorded first, exactly as a `publish` would be. With Redis it is delivered
   * as published, unstamped and not kept: the shared history holds what every instance got,
   * and a local message reached only this one. Returns how many connections got it.
   */
  publishLocal(topic: string, data: unknown): number {
    return this.deliverLocal(topic, encodePayload(data));
  }

  /**
   * The engine's own features, then which of WSE's client formats are accepted
   * (docs/PROTOCOL.md, "Compatibility with WSE clients"): `category_prefix` (`WSE{…}`, `S{…}`,
   * `U{…}`), `sync_request`, `msgpack` (`M:` frames), `compression` (`C:` frames), `url_topics`
   * (`?topics=`), and `encryption` (`E:` frames, never).
   */
  features(): WseFeatures {
    const compatibility = this.options.compatibility;
    return {
      subscriptions: true,
      patterns: true,
      server_ping: true,
      redis: this.redis.configured,
      category_prefix: true,
      sync_request: true,
      msgpack: compatibility.msgpack,
      compression: compatibility.compression,
      url_topics: compatibility.urlTopics,
      encryption: false,
      recovery: this.history.enabled,
    };
  }

  /**
   * Tells every connection holding subscriptions that messages may have been missed (the Redis
   * subscriber was not receiving for `downMs`), listing its topics so the application can
   * refetch their state, and, for its history topics, their current positions under
   * `recovery`, so the client can recover just what it missed. Returns how many connections
   * were told (0 when positions are still being read; the frames follow).
   */
  sendResync(downMs: number): number {
    if (!this.history.enabled) return this.tellResync(downMs, undefined);
    const topics = new Set<string>();
    for (const connection of this.registry.connections()) {
      for (const topic of connection.topics) {
        if (!isTopicPattern(topic) && this.history.isHistoryTopic(topic)) topics.add(topic);
      }
    }
    const list = [...topics];
    const store = this.history.store();
    const positions = list.map((topic) => store.position(topic));
    if (!positions.some(isPromise)) return this.tellResync(downMs, zip(list, positions as HistoryPosition[]));
    void Promise.allSettled(positions).then((results) => {
      const known = new Map<string, HistoryPosition>();
      results.forEach((result, i) => {
        if (result.status === 'fulfilled') known.set(list[i], result.value);
      });
      this.tellResync(downMs, known);
    });
    return 0;
  }

  /**
   * Reads history for `recoveries` and positions for `positionTopics`, holding the connection's
   * live messages on the recovered topics meanwhile (a topic it holds already is dropped from
   * the registry for that time; the caller subscribes it again). `then` runs once everything
   * is back: synchronously when the store answers at once (in memory; `undefined` is returned),
   * later otherwise (the returned promise settles once `then` has run). It must subscribe,
   * answer and call `outcome.replay` for each recovered topic before it returns; the holds are
   * released right after.
   */
  recover(
    connection: TopicSubscriber,
    recoveries: readonly TopicRecovery[],
    positionTopics: readonly string[],
    then: (outcome: RecoveryOutcome) => void,
  ): Promise<void> | undefined {
    const holds = new Map<string, Hold>();
    for (const { topic } of recoveries) {
      if (holds.has(topic)) continue;
      // Interest routing: the hold keeps Redis delivering the topic here while it is read.
      this.interest?.retain(topic);
      if (connection.topics.has(topic)) this.registry.unsubscribeConnection(connection.id, [topic]);
      const hold: Hold = { connection, buffered: [], overflowed: false, cancelled: false };
      holds.set(topic, hold);
      const list = this.holds.get(topic);
      if (list === undefined) this.holds.set(topic, [hold]);
      else list.push(hold);
    }
    // The live messages must be arriving before the history is read, or those published in
    // between would be in neither.
    const listening = this.interest?.whenListening([...holds.keys()]);
    if (listening !== undefined) {
      return listening.then(() => this.readAndAnswer(connection, recoveries, positionTopics, holds, then));
    }
    return this.readAndAnswer(connection, recoveries, positionTopics, holds, then);
  }

  /** The reads of `recover()` and its answer, once the live messages are arriving. */
  private readAndAnswer(
    connection: TopicSubscriber,
    recoveries: readonly TopicRecovery[],
    positionTopics: readonly string[],
    holds: Map<string, Hold>,
    then: (outcome: RecoveryOutcome) => void,
  ): Promise<void> | undefined {
    const store = this.history.store();
    const pending: (HistoryRead | HistoryPosition | Promise<HistoryRead | HistoryPosition>)[] = [];
    for (const { topic, epoch, offset } of recoveries) pending.push(store.read(topic, epoch, offset));
    for (const topic of positionTopics) pending.push(store.position(topic));

    const finish = (values: readonly (HistoryRead | HistoryPosition | undefined)[]): void => {
      const reads = new Map<string, HistoryRead>();
      const positions = new Map<string, HistoryPosition>();
      recoveries.forEach(({ topic }, i) => {
        const read = values[i] as HistoryRead | undefined;
        if (read !== undefined) reads.set(topic, read);
      });
      positionTopics.forEach((topic, i) => {
        const position = values[recoveries.length + i] as HistoryPosition | undefined;
        if (position !== undefined) positions.set(topic, position);
      });
      try {
        then(this.outcome(connection, reads, positions, holds));
      } finally {
        this.release(holds);
      }
    };
    if (!pending.some(isPromise)) {
      finish(pending as (HistoryRead | HistoryPosition)[]);
      return undefined;
    }
    return Promise.allSettled(pending).then((results) =>
      finish(results.map((result) => (result.status === 'fulfilled' ? result.value : undefined))),
    );
  }

  /** The connection unsubscribed from `topics`: recoveries of them still reading end unsubscribed. */
  cancelRecovery(connection: TopicSubscriber, topics: readonly string[]): void {
    if (this.holds.size === 0) return;
    for (const topic of topics) {
      for (const hold of this.holds.get(topic) ?? []) if (hold.connection === connection) hold.cancelled = true;
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  /** Records and stamps a history topic's message (without Redis), then fans it out. */
  private deliverLocal(topic: string, payload: Buffer): number {
    if (this.history.isHistoryTopic(topic) && !this.redis.configured && isStampable(payload)) {
      payload = (this.history.memory as NonNullable<TopicHistoryService['memory']>).append(topic, payload);
    }
    return this.deliver(topic, payload);
  }

  /**
   * Cluster: a message from the topic's shard (`glob` undefined) goes to the connections holding
   * the topic itself; one from the classic bus (through `glob`) to those holding a matching glob,
   * except the ones that get the shard's copy (see TopicRegistryService.deliverExact).
   */
  private deliverClustered(topic: string, payload: Buffer, glob: string | undefined): number {
    if (this.holds.size !== 0 && glob === undefined) this.holdLive(topic, payload);
    if (glob === undefined) return this.registry.deliverExact(topic, payload);
    return this.registry.deliverGlobs(topic, payload, this.redis.exactLive(topic));
  }

  /** The local fan-out, after copying the message into any hold waiting on its topic. */
  private deliver(topic: string, payload: Buffer): number {
    if (this.holds.size !== 0) this.holdLive(topic, payload);
    return this.registry.deliver(topic, payload);
  }

  private holdLive(topic: string, payload: Buffer): void {
    const holds = this.holds.get(topic);
    if (holds === undefined) return;
    // A copy: the Buffer Redis handed over may be a view of ioredis's parser buffer, which it
    // reuses for later replies (the fan-out copies it into a frame at once; a hold keeps it).
    const kept = Buffer.from(payload);
    for (const hold of holds) {
      if (hold.buffered.length < HOLD_LIMIT) hold.buffered.push(kept);
      else hold.overflowed = true;
    }
  }

  private release(holds: ReadonlyMap<string, Hold>): void {
    for (const [topic, hold] of holds) {
      this.interest?.release(topic);
      const list = this.holds.get(topic);
      if (list === undefined) continue;
      const index = list.indexOf(hold);
      if (index >= 0) list.splice(index, 1);
      if (list.length === 0) this.holds.delete(topic);
    }
  }

  private outcome(
    connection: TopicSubscriber,
    reads: ReadonlyMap<string, HistoryRead>,
    positions: ReadonlyMap<string, HistoryPosition>,
    holds: ReadonlyMap<string, Hold>,
  ): RecoveryOutcome {
    const stats = this.history.stats;
    return {
      read: (topic) => reads.get(topic),
      position: (topic) => positions.get(topic),
      overflowed: (topic) => holds.get(topic)?.overflowed === true,
      cancelled: (topic) => holds.get(topic)?.cancelled === true,
      replay: (topic) => {
        const hold = holds.get(topic);
        if (hold === undefined) return 0;
        const read = reads.get(topic);
        let replayed = 0;
        if (read?.recovered === true && !hold.overflowed) {
          for (const entry of read.entries) if (connection.send(textFrame(entry))) replayed++;
          stats.replayed += replayed;
        }
        // More arrived than a hold keeps: some are gone, so none are sent (the answer says
        // recovered: false and the client reloads); live delivery resumes after this.
        if (hold.overflowed) {
          hold.buffered.length = 0;
          return 0;
        }
        // Held live messages the read already covered (same epoch, offset not past its end) go
        // no further; newer ones, other epochs and unstamped messages follow the replay.
        const position = read?.position;
        const topicJson = Buffer.from(JSON.stringify(topic));
        for (const payload of hold.buffered) {
          const stamp = position === undefined ? undefined : readStamp(payload, topicJson);
          if (stamp !== undefined && stamp.epoch === position?.epoch && stamp.offset <= position.offset) continue;
          connection.send(textFrame(payload));
        }
        hold.buffered.length = 0;
        return replayed;
      },
    };
  }

  /**
   * Cluster: the slots of `topics` moved to another master; their messages published in the
   * move reached no one here. Each connection holding one of them is told which, with the
   * current positions of those that are history topics under `recovery` (read first; the
   * frames then follow and 0 is returned), so the client recovers just what it missed.
   */
  private tellMoved(topics: readonly string[]): number {
    const list = this.history.enabled ? topics.filter((topic) => this.history.isHistoryTopic(topic)) : [];
    if (list.length === 0) return this.sendMoved(topics, undefined);
    const store = this.history.store();
    void Promise.allSettled(list.map((topic) => store.position(topic))).then((results) => {
      const known = new Map<string, HistoryPosition>();
      results.forEach((result, i) => {
        if (result.status === 'fulfilled') known.set(list[i], result.value);
      });
      this.sendMoved(topics, known);
    });
    return 0;
  }

  private sendMoved(topics: readonly string[], positions: ReadonlyMap<string, HistoryPosition> | undefined): number {
    const moved = new Set(topics);
    let told = 0;
    for (const connection of this.registry.connections()) {
      const affected = [...connection.topics].filter((topic) => moved.has(topic));
      if (affected.length === 0) continue;
      const payload: Record<string, unknown> = { reason: 'shard_moved', topics: affected, down_ms: 0 };
      if (positions !== undefined) {
        const recovery: Record<string, HistoryPosition> = {};
        for (const topic of affected) {
          const position = positions.get(topic);
          if (position !== undefined) recovery[topic] = { epoch: position.epoch, offset: position.offset };
        }
        payload.recovery = recovery;
      }
      if (connection.send(this.frames.frame('resync', payload))) told++;
    }
    return told;
  }

  private tellResync(downMs: number, positions: ReadonlyMap<string, HistoryPosition> | undefined): number {
    let told = 0;
    for (const connection of this.registry.connections()) {
      if (connection.topics.size === 0) continue;
      const payload: Record<string, unknown> = {
        reason: 'redis_reconnected',
        topics: [...connection.topics],
        down_ms: downMs,
      };
      if (positions !== undefined) {
        const recovery: Record<string, HistoryPosition> = {};
        for (const topic of connection.topics) {
          const position = positions.get(topic);
          if (position !== undefined) recovery[topic] = { epoch: position.epoch, offset: position.offset };
        }
        payload.recovery = recovery;
      }
      if (connection.send(this.frames.frame('resync', payload))) told++;
    }
    return told;
  }
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return value instanceof Promise;
}

function zip<T>(keys: readonly string[], values: readonly T[]): Map<string, T> {
  const map = new Map<string, T>();
  keys.forEach((key, i) => map.set(key, values[i]));
  return map;
}
