import { Injectable } from '@nestjs/common';
import {
  RedisPubSubService,
  type DlqReplayOptions,
  type DlqReplayResult,
} from '../broker/redis/redis-pubsub.service.js';
import { resolveWseOptions } from '../config/resolve-wse-options.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import type { WseConnectionInfo } from '../protocol/connection.js';
import type { DeadLetter } from '../reliability/dead-letter-queue.js';
import type { WseConnection } from '../transport/wse-connection.js';
import { WseHealthSnapshotService, type WseHealthSnapshot } from './wse-health-snapshot.js';

/**
 * Operations on the engine, for the server API, dashboards and scripts: the connections of this
 * instance, the health snapshot, the dead letter queue and switching Redis on at run time.
 * Domain code publishes through `WsePublisher`; this is what operators reach for.
 *
 * @example
 * ```ts
 * @Injectable()
 * export class OpsService {
 *   constructor(private readonly admin: WseAdmin) {}
 *   report() {
 *     const { connections, redis_dlq_size } = this.admin.healthSnapshot();
 *     return { connections, redis_dlq_size };
 *   }
 * }
 * ```
 */
@Injectable()
export class WseAdmin {
  constructor(
    private readonly registry: TopicRegistryService<WseConnection>,
    private readonly health: WseHealthSnapshotService,
    private readonly redis: RedisPubSubService,
  ) {}

  /** True in multi-instance mode (a Redis URL is configured), connected or not. */
  get multiInstance(): boolean {
    return this.redis.configured;
  }

  /** True while Redis is connected and proven to deliver. */
  redisConnected(): boolean {
    return this.redis.redisConnected();
  }

  /** Local connections a message on `topic` would reach (exact plus patterns, deduplicated). */
  getTopicSubscriberCount(topic: string): number {
    return this.registry.getTopicSubscriberCount(topic);
  }

  /** One connection of this instance, or `undefined`. */
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

  /** Returns and removes the dead letter queue's entries, oldest first. */
  getDlqEntries(): DeadLetter[] {
    return this.redis.getDlqEntries();
  }

  /** Returns the dead letter queue's entries, oldest first, leaving them there (for monitoring). */
  peekDlqEntries(): DeadLetter[] {
    return this.redis.peekDlqEntries();
  }

  /**
   * Re-publishes the dead letter queue; what fails again stays in it, and so do the entries that
   * may have been delivered already unless `{ unknown: true }` (see DlqReplayOptions).
   */
  replayDlq(options?: DlqReplayOptions): Promise<DlqReplayResult> {
    return this.redis.replayDlq(options);
  }

  /** Switches multi-instance mode on at run time. Throws WseConfigError for a URL that is not redis. */
  connectRedis(url: string): Promise<void> {
    // Only the URL is checked here; the auth choice the resolver insists on is the module's, not
    // this call's (without it every call failed once fail-closed auth came).
    return this.redis.connectRedis(resolveWseOptions({ auth: { anonymous: true }, redis: { url } }).redis.url!);
  }
}
