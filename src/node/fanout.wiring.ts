import { Injectable, type OnModuleInit } from '@nestjs/common';
import { RedisPubSubService } from '../broker/redis/redis-pubsub.service.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';

/**
 * The one place that knows both halves: the broker (RedisPubSubService: channels and bytes) and
 * the hub (TopicRegistryService: connections and topics). Each is tested alone; this joins them.
 * Whatever arrives through Redis takes the same `deliver` path as a local publish, with the same
 * once-per-connection guarantee.
 */
@Injectable()
export class WseFanoutWiring implements OnModuleInit {
  constructor(
    private readonly redis: RedisPubSubService,
    private readonly registry: TopicRegistryService,
  ) {}

  onModuleInit(): void {
    const registry = this.registry;
    const stats = this.redis.stats;
    this.redis.setMessageHandler((topic, payload) => {
      const failuresBefore = registry.sendFailures;
      stats.delivered += registry.deliver(topic, payload);
      stats.dropped += registry.sendFailures - failuresBefore;
    });
    this.redis.setResyncHandler((downMs) => registry.sendResync(downMs));
  }
}
