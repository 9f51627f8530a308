import { Inject, Injectable, Optional } from '@nestjs/common';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { BucketHistogram } from '../reliability/bucket-histogram.js';
import { textFrame } from '../protocol/outbound-frame.js';
import type { WseConnectionInfo } from '../protocol/connection.js';
import type { TopicSubscriber } from '../protocol/topic-subscriber.js';
import { WSE_OPTIONS } from '../wse.constants.js';
import { topicRejections } from '../wse.messages.js';
import { PatternIndex, type PatternEntry } from './pattern-index.js';
import { compileTopicPattern, isTopicPattern } from './topic-pattern.js';
import { topicRejection } from './topic-validation.js';

const FANOUT_SIZE_BOUNDS = [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10_000, 50_000];

/** A topic that could not be subscribed, and why. */
export interface FailedTopic {
  readonly topic: string;
  readonly reason: string;
}

/**
 * Told when a topic (or, with `glob`, a glob) gets its first local subscriber (`present` true)
 * or loses its last one: what this instance follows, for interest routing.
 */
export type InterestListener = (name: string, glob: boolean, present: boolean) => void;

/** Outcome of a subscribe or unsubscribe call for one connection. */
export interface SubscriptionChange {
  /** Topics now subscribed (subscribe) or no longer subscribed (unsubscribe), in request order. */
  readonly succeeded: string[];
  readonly failed: FailedTopic[];
}

/**
 * The hub: every local connection, the topics and patterns each holds, and the local fan-out.
 * It knows nothing of Redis: whatever reaches this instance (a local publish, a Redis message)
 * ends in `deliver()`, which is why a connection gets a message once whichever way it came.
 *
 * Fan-out guarantees:
 * - once per connection per message, however many of its subscriptions match: each delivery
 *   takes a new sequence number and a connection that already has it is skipped (no set is
 *   built per message);
 * - per-connection order is publish order (frames are queued in order, see WseConnection);
 * - the payload is framed once per message, lazily, only if someone receives it.
 */
@Injectable()
export class TopicRegistryService<S extends TopicSubscriber = TopicSubscriber & WseConnectionInfo> {
  private readonly maxTopicsPerConnection: number;
  private readonly connectionsById = new Map<string, S>();
  private readonly exact = new Map<string, Set<S>>();
  private readonly patterns = new PatternIndex<S>();
  private deliverySeq = 0;
  private onInterest: InterestListener | undefined;
  /** Deliveries made by `deliver` and `broadcast` since start (a plain field, read on scrape). */
  deliveries = 0;
  /** Sends `deliver` attempted that the connection did not accept (closed, or not reading). */
  sendFailures = 0;
  /** Connections reached per delivered message (wse_fanout_size). */
  readonly fanoutSize = new BucketHistogram(FANOUT_SIZE_BOUNDS);

  /** Options are optional so the registry can be built bare in unit tests (no topic cap then). */
  constructor(@Optional() @Inject(WSE_OPTIONS) options?: ResolvedWseOptions) {
    this.maxTopicsPerConnection = options?.maxTopicsPerConnection ?? Number.POSITIVE_INFINITY;
  }

  // ---- connections -------------------------------------------------------------------------

  get connectionCount(): number {
    return this.connectionsById.size;
  }

  /** Number of distinct exact topics and patterns with at least one local subscriber. */
  get topicCount(): number {
    return this.exact.size + this.patterns.size;
  }

  get patternCount(): number {
    return this.patterns.size;
  }

  /** Registers the one listener told about what this instance follows (see InterestListener). */
  setInterestListener(listener: InterestListener): void {
    this.onInterest = listener;
  }

  /** Every glob some local connection holds. */
  heldGlobs(): string[] {
    return this.patterns.sources();
  }

  /** The globs held locally that match `topic` (the pattern index's cached answer: no allocation). */
  globsMatching(topic: string): readonly PatternEntry<S>[] {
    return this.patterns.matching(topic);
  }

  register(connection: S): void {
    this.connectionsById.set(connection.id, connection);
  }

  /** Forgets a connection and every subscription it held. Returns false if it was unknown. */
  unregister(connectionId: string): boolean {
    const connection = this.connectionsById.get(connectionId);
    if (connection === undefined) return false;
    this.removeSubscriptions(connection, [...connection.topics]);
    this.connectionsById.delete(connectionId);
    return true;
  }

  get(connectionId: string): S | undefined {
    return this.connectionsById.get(connectionId);
  }

  connections(): IterableIterator<S> {
    return this.connectionsById.values();
  }

  // ---- subscriptions -----------------------------------------------------------------------

  /**
   * Subscribes a connection to exact topics and/or patterns. Invalid ones (CONTRACT section 4)
   * land in `failed`; subscribing twice is not an error. `undefined` for an unknown connection.
   * Authorization is the caller's: by the time topics arrive here they are allowed.
   */
  subscribeConnection(connectionId: string, topics: readonly string[]): SubscriptionChange | undefined {
    const connection = this.connectionsById.get(connectionId);
    if (connection === undefined) return undefined;
    const change: SubscriptionChange = { succeeded: [], failed: [] };
    for (const topic of topics) {
      const rejection = topicRejection(topic) ?? this.addSubscription(connection, topic);
      if (rejection === undefined) change.succeeded.push(topic);
      else change.failed.push({ topic, reason: rejection });
    }
    return change;
  }

  /**
   * Unsubscribes a connection from the given topics, or from all of them when `topics` is
   * omitted. Topics it did not hold are ignored. `undefined` for an unknown connection.
   */
  unsubscribeConnection(connectionId: string, topics?: readonly string[]): SubscriptionChange | undefined {
    const connection = this.connectionsById.get(connectionId);
    if (connection === undefined) return undefined;
    return { succeeded: this.removeSubscriptions(connection, topics ?? [...connection.topics]), failed: [] };
  }

  /** Local connections a message on `topic` reaches: exact subscribers plus pattern matches, each once. */
  getTopicSubscriberCount(topic: string): number {
    const seq = ++this.deliverySeq;
    let count = 0;
    const exact = this.exact.get(topic);
    if (exact !== undefined) {
      for (const subscriber of exact) {
        subscriber.lastDeliverySeq = seq;
        count++;
      }
    }
    const entries = this.patterns.matching(topic);
    for (let i = 0; i < entries.length; i++) {
      for (const subscriber of entries[i].subscribers) {
        if (subscriber.lastDeliverySeq !== seq) {
          subscriber.lastDeliverySeq = seq;
          count++;
        }
      }
    }
    return count;
  }

  // ---- fan-out (the hot path) ----------------------------------------------------------------

  /**
   * Delivers `payload` (the bytes exactly as published) to every local connection subscribed
   * to `topic`, once each. Returns how many connections accepted it.
   */
  deliver(topic: string, payload: Buffer): number {
    const exact = this.exact.get(topic);
    const entries = this.patterns.matching(topic);
    if (exact === undefined && entries.length === 0) return 0;

    const frame = textFrame(payload);
    const seq = ++this.deliverySeq;
    let delivered = 0;
    let attempted = 0;
    if (exact !== undefined) {
      for (const subscriber of exact) {
        subscriber.lastDeliverySeq = seq;
        attempted++;
        if (subscriber.send(frame)) delivered++;
      }
    }
    for (let i = 0; i < entries.length; i++) {
      for (const subscriber of entries[i].subscribers) {
        if (subscriber.lastDeliverySeq === seq) continue;
        subscriber.lastDeliverySeq = seq;
        attempted++;
        if (subscriber.send(frame)) delivered++;
      }
    }
    this.deliveries += delivered;
    this.sendFailures += attempted - delivered;
    this.fanoutSize.observe(delivered);
    return delivered;
  }

  /**
   * The cluster's two lanes (CONTRACT section 9): a topic's message comes once through its shard,
   * for the connections holding the topic itself, and once more through the classic bus when a
   * glob follows it, for the connections holding a matching glob. `deliverExact` serves the
   * first, `deliverGlobs` the second, skipping the connections that also hold the topic itself
   * when `exactLaneLive` (they get the shard's copy), so each connection gets it once.
   */
  deliverExact(topic: string, payload: Buffer): number {
    const exact = this.exact.get(topic);
    if (exact === undefined) return 0;
    const frame = textFrame(payload);
    let delivered = 0;
    for (const subscriber of exact) if (subscriber.send(frame)) delivered++;
    this.deliveries += delivered;
    this.sendFailures += exact.size - delivered;
    this.fanoutSize.observe(delivered);
    return delivered;
  }

  /** See `deliverExact`. */
  deliverGlobs(topic: string, payload: Buffer, exactLaneLive: boolean): number {
    const entries = this.patterns.matching(topic);
    if (entries.length === 0) return 0;
    const skipExact = exactLaneLive && this.exact.has(topic);
    const frame = textFrame(payload);
    const seq = ++this.deliverySeq;
    let delivered = 0;
    let attempted = 0;
    for (let i = 0; i < entries.length; i++) {
      for (const subscriber of entries[i].subscribers) {
        if (subscriber.lastDeliverySeq === seq) continue;
        subscriber.lastDeliverySeq = seq;
        if (skipExact && subscriber.topics.has(topic)) continue;
        attempted++;
        if (subscriber.send(frame)) delivered++;
      }
    }
    this.deliveries += delivered;
    this.sendFailures += attempted - delivered;
    this.fanoutSize.observe(delivered);
    return delivered;
  }

  /** Sends `payload` to every local connection, subscribed or not. */
  broadcast(payload: Buffer): number {
    if (this.connectionsById.size === 0) return 0;
    const frame = textFrame(payload);
    let delivered = 0;
    for (const connection of this.connectionsById.values()) {
      if (connection.send(frame)) delivered++;
    }
    this.deliveries += delivered;
    return delivered;
  }

  // ---- internals ---------------------------------------------------------------------------

  /** Returns why the topic was refused, or undefined once it is subscribed. */
  private addSubscription(connection: S, topic: string): string | undefined {
    if (connection.topics.has(topic)) return undefined;
    if (connection.topics.size >= this.maxTopicsPerConnection)
      return topicRejections.topicLimit(this.maxTopicsPerConnection);
    if (isTopicPattern(topic)) {
      let entry: PatternEntry<S> | undefined = this.patterns.get(topic);
      // Every glob means something to Redis, and so here: compiling never refuses one.
      if (entry === undefined) {
        entry = this.patterns.add(compileTopicPattern(topic));
        this.onInterest?.(topic, true, true);
      }
      entry.subscribers.add(connection);
    } else {
      let subscribers = this.exact.get(topic);
      if (subscribers === undefined) {
        subscribers = new Set();
        this.exact.set(topic, subscribers);
        this.onInterest?.(topic, false, true);
      }
      subscribers.add(connection);
    }
    connection.topics.add(topic);
    return undefined;
  }

  /** Removes the listed subscriptions a connection holds; returns those it actually held. */
  private removeSubscriptions(connection: S, topics: readonly string[]): string[] {
    const removed: string[] = [];
    for (const topic of topics) {
      if (!connection.topics.delete(topic)) continue;
      removed.push(topic);
      const entry = this.patterns.get(topic);
      if (entry !== undefined) {
        entry.subscribers.delete(connection);
        if (entry.subscribers.size === 0) {
          this.patterns.remove(entry);
          this.onInterest?.(topic, true, false);
        }
        continue;
      }
      const subscribers = this.exact.get(topic);
      if (subscribers !== undefined) {
        subscribers.delete(connection);
        if (subscribers.size === 0) {
          this.exact.delete(topic);
          this.onInterest?.(topic, false, false);
        }
      }
    }
    return removed;
  }
}
