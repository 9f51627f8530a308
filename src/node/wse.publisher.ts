import { Injectable } from '@nestjs/common';
import { textFrame } from '../protocol/outbound-frame.js';
import type { WseConnectionInfo } from '../transport/wse-connection.js';
import { WseHealthSnapshotService, type WseHealthSnapshot } from '../observability/wse-health-snapshot.js';
import { TopicRegistryService, type SubscriptionChange } from '../hub/topic-registry.service.js';
import { topicRejection } from '../hub/topic-validation.js';
import { WseTopicError } from '../errors/wse-topic.error.js';
import { resolveWseOptions } from '../config/resolve-wse-options.js';
import { RedisPubSubService, type DlqReplayResult } from '../broker/redis/redis-pubsub.service.js';
import type { DeadLetter } from '../reliability/dead-letter-queue.js';
import { encodePayload, serializePayload } from './payload.js';

/**
 * The one thing domain code injects. Payloads go out exactly as published: a string as-is, a
 * Buffer as its bytes, anything else as JSON serialized once per call.
 *
 * @example
 * ```ts
 * @Injectable()
 * export class OrdersService {
 *   constructor(private readonly wse: WsePublisher) {}
 *   filled(order: Order) {
 *     this.wse.publish(`user:${order.userId}:events`, { t: 'order_filled', p: order });
 *   }
 * }
 * ```
 */
@Injectable()
export class WsePublisher {
  constructor(
    private readonly registry: TopicRegistryService,
    private readonly health: WseHealthSnapshotService,
    private readonly redis: RedisPubSubService,
  ) {}

  /**
   * Publishes to every subscriber of `topic` on every instance, through Redis (this instance's
   * subscribers get it through Redis too, once). Never blocks and never throws for Redis
   * trouble: what cannot be published goes to the dead letter queue. Without Redis configured
   * this delivers locally, like `publishLocal`. Throws `WseTopicError` for an invalid topic and
   * `WsePayloadError` for a payload with no JSON form.
   */
  publish(topic: string, data: unknown): void {
    assertPublishableTopic(topic);
    if (this.redis.configured) this.redis.publish(topic, serializePayload(data));
    else this.registry.deliver(topic, encodePayload(data));
  }

  /** True in multi-instance mode (a Redis URL is configured), connected or not. */
  get multiInstance(): boolean {
    return this.redis.configured;
  }

  /** True while Redis is connected and proven to deliver. */
  redisConnected(): boolean {
    return this.redis.redisConnected();
  }

  /** Returns and removes the dead letter queue's entries, oldest first. */
  getDlqEntries(): DeadLetter[] {
    return this.redis.getDlqEntries();
  }

  /** Re-publishes the dead letter queue; what fails again stays in it. */
  replayDlq(): Promise<DlqReplayResult> {
    return this.redis.replayDlq();
  }

  /** Switches multi-instance mode on at run time. Throws WseConfigError for a URL that is not redis. */
  connectRedis(url: string): Promise<void> {
    return this.redis.connectRedis(resolveWseOptions({ redis: { url } }).redis.url!);
  }

  /**
   * Delivers to the subscribers of `topic` connected to this instance only (exact topics and
   * matching patterns, each connection once). Returns how many connections got it.
   */
  publishLocal(topic: string, data: unknown): number {
    assertPublishableTopic(topic);
    return this.registry.deliver(topic, encodePayload(data));
  }

  /** Sends to every connection on this instance, subscribed or not. Returns how many got it. */
  broadcast(data: unknown): number {
    return this.registry.broadcast(encodePayload(data));
  }

  /** Sends to one connection of this instance. False when it is unknown, closed or not reading. */
  sendEvent(connectionId: string, data: unknown): boolean {
    const connection = this.registry.get(connectionId);
    return connection !== undefined && connection.send(textFrame(encodePayload(data)));
  }

  /** Subscribes a connection on this instance; `undefined` when the connection is unknown. */
  subscribe(connectionId: string, topics: readonly string[]): SubscriptionChange | undefined {
    return this.registry.subscribeConnection(connectionId, topics);
  }

  /** Unsubscribes from `topics`, or from everything when omitted; `undefined` when unknown. */
  unsubscribe(connectionId: string, topics?: readonly string[]): SubscriptionChange | undefined {
    return this.registry.unsubscribeConnection(connectionId, topics);
  }

  /** Local connections a message on `topic` would reach (exact plus patterns, deduplicated). */
  getTopicSubscriberCount(topic: string): number {
    return this.registry.getTopicSubscriberCount(topic);
  }

  getConnection(connectionId: string): WseConnectionInfo | undefined {
    return this.registry.get(connectionId);
  }

  /** Every connection on this instance. */
  connections(): WseConnectionInfo[] {
    return [...this.registry.connections()];
  }

  /** The counters of CONTRACT section 8, and a few more. */
  healthSnapshot(): WseHealthSnapshot {
    return this.health.snapshot();
  }
}

function assertPublishableTopic(topic: string): void {
  const rejection = topicRejection(topic);
  if (rejection !== undefined) throw new WseTopicError(topic, rejection);
}
