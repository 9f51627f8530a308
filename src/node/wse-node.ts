import { Injectable, type OnModuleInit } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { RedisPubSubService } from '../broker/redis/redis-pubsub.service.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { SystemFrames } from '../protocol/outbound-frame.js';
import { encodePayload, serializePayload } from './payload.js';

/** What `server_ready` and `server_hello` advertise in `features`. */
export type WseFeatures = Readonly<Record<string, boolean>>;

/**
 * The node: the one place that knows both halves, the hub (TopicRegistryService: connections
 * and topics) and the broker (RedisPubSubService: channels and bytes). It decides where a
 * publish goes (Redis when configured, else straight to the local fan-out), hands whatever
 * arrives through Redis to the same `deliver` path as a local publish (so the once-per-
 * connection guarantee holds whichever way a message came), tells connections after a bus gap
 * (`resync`), and says which features this node offers. Each half is tested alone; this joins
 * them.
 */
@Injectable()
export class WseNode implements OnModuleInit {
  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly registry: TopicRegistryService,
    private readonly redis: RedisPubSubService,
    private readonly frames: SystemFrames,
  ) {}

  onModuleInit(): void {
    const registry = this.registry;
    const stats = this.redis.stats;
    this.redis.setMessageHandler((topic, payload) => {
      const failuresBefore = registry.sendFailures;
      stats.delivered += registry.deliver(topic, payload);
      stats.dropped += registry.sendFailures - failuresBefore;
    });
    this.redis.setResyncHandler((downMs) => this.sendResync(downMs));
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
    if (this.redis.configured) this.redis.publish(topic, serializePayload(data));
    else this.registry.deliver(topic, encodePayload(data));
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
    };
  }

  /**
   * Tells every connection holding subscriptions that messages may have been missed (the Redis
   * subscriber was not receiving for `downMs`), listing its topics so the application can
   * refetch their state. Returns how many connections were told.
   */
  sendResync(downMs: number): number {
    let told = 0;
    for (const connection of this.registry.connections()) {
      if (connection.topics.size === 0) continue;
      const frame = this.frames.frame('resync', {
        reason: 'redis_reconnected',
        topics: [...connection.topics],
        down_ms: downMs,
      });
      if (connection.send(frame)) told++;
    }
    return told;
  }
}
