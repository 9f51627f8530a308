import { Injectable } from '@nestjs/common';
import { WseTopicError } from '../errors/wse-topic.error.js';
import { TopicRegistryService, type SubscriptionChange } from '../hub/topic-registry.service.js';
import { topicRejection } from '../hub/topic-validation.js';
import { textFrame } from '../protocol/outbound-frame.js';
import { encodePayload } from './payload.js';
import { WseNode } from './wse-node.js';

/**
 * The one thing domain code injects: publish, deliver locally, broadcast, send to one connection,
 * subscribe and unsubscribe connections. Operations (listing connections, the health snapshot,
 * the dead letter queue, switching Redis on) are `WseAdmin`'s. Payloads go out exactly as published: a string as-is, a
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
    private readonly node: WseNode,
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
    this.node.publish(topic, data);
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
}

function assertPublishableTopic(topic: string): void {
  const rejection = topicRejection(topic);
  if (rejection !== undefined) throw new WseTopicError(topic, rejection);
}
