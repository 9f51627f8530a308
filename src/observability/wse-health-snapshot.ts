import { Injectable } from '@nestjs/common';
import { InboundQueue } from '../transport/inbound-queue.js';
import { OutboundWriter } from '../transport/outbound-writer.js';
import { RedisPubSubService } from '../broker/redis/redis-pubsub.service.js';
import type { CircuitState } from '../reliability/circuit-breaker.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { ProtocolViolations } from '../transport/protocol-violations.js';

/**
 * The health snapshot (CONTRACT section 8). Key names are the contract's, verbatim: the health
 * endpoint, the server API and metrics all report these. Keys after `uptime_secs` are extras.
 */
export interface WseHealthSnapshot {
  connections: number;
  inbound_queue_depth: number;
  inbound_dropped: number;
  redis_connected: boolean;
  redis_messages_received: number;
  redis_messages_published: number;
  redis_messages_delivered: number;
  redis_messages_dropped: number;
  redis_publish_errors: number;
  redis_reconnect_count: number;
  redis_dlq_size: number;
  uptime_secs: number;
  /** Distinct exact topics and patterns with a local subscriber. */
  topics: number;
  patterns: number;
  /** Deliveries made by the local fan-out (one per connection per message). */
  local_deliveries: number;
  /** Frames dropped because a connection was not reading (`maxBufferedBytes`). */
  outbound_dropped: number;
  conn_breaker: CircuitState;
  pub_breaker: CircuitState;
  /** Publishes accepted and without an outcome yet (queued, sent, or waiting for a retry). */
  redis_publish_in_flight: number;
  /** Their payload bytes (characters for text). */
  redis_publish_in_flight_bytes: number;
  /** The highest `redis_publish_in_flight` since start. */
  redis_publish_in_flight_peak: number;
  /** Publishes dead-lettered as `outcome_unknown` (sent; no reply in time or connection lost). */
  redis_publish_unknown: number;
  /** Publishes dead-lettered as `partial` (fewer subscribers received them than there are instances). */
  redis_publish_partial: number;
  /** Dead letters evicted by newer ones (the DLQ was full). */
  redis_dlq_evicted: number;
  /** Dead letters a replay delivered. */
  redis_dlq_replayed: number;
  /** Other live instances on the same prefix, as their probes tell. */
  redis_peers: number;
  /** Protocol violations from clients (invalid frames, refused origins), all kinds. */
  protocol_violations: number;
  /** How this instance uses Redis: `pattern`, `interest` or `cluster` (CONTRACT section 9). */
  redis_mode: WseRedisMode;
  /** Topics and globs this instance has subscribed in Redis (interest routing; 0 in pattern routing). */
  redis_subscriptions: number;
  /** Subscription commands sent to Redis (interest routing: at most one per kind and tick). */
  redis_subscription_commands: number;
  /** Copies of a message that came through more than one matching subscription, dropped (interest routing). */
  redis_duplicates_dropped: number;
  /** Cluster only: each master (`host:port`) and whether this instance reaches it. */
  redis_shards?: WseShardState[];
}

/** One master of a Redis Cluster in the health body. */
export interface WseShardState {
  readonly node: string;
  readonly connected: boolean;
}

/** What `redis_mode` reports. */
export type WseRedisMode = 'pattern' | 'interest' | 'cluster';

/**
 * Builds the snapshot from the counters the hot path keeps as plain fields: taking one costs
 * the hot path nothing. Redis counters stay at zero while no Redis is configured.
 */
@Injectable()
export class WseHealthSnapshotService {
  private readonly startedAt = process.hrtime.bigint();

  constructor(
    private readonly registry: TopicRegistryService,
    private readonly inbound: InboundQueue,
    private readonly outbound: OutboundWriter,
    private readonly redis: RedisPubSubService,
    private readonly violations: ProtocolViolations,
  ) {}

  snapshot(): WseHealthSnapshot {
    const redis = this.redis.stats;
    const inFlight = this.redis.inFlight;
    return {
      connections: this.registry.connectionCount,
      inbound_queue_depth: this.inbound.depth,
      inbound_dropped: this.inbound.dropped,
      redis_connected: this.redis.redisConnected(),
      redis_messages_received: redis.received,
      redis_messages_published: redis.published,
      redis_messages_delivered: redis.delivered,
      redis_messages_dropped: redis.dropped,
      redis_publish_errors: redis.publishErrors,
      redis_reconnect_count: redis.reconnectCount,
      redis_dlq_size: this.redis.dlqSize,
      uptime_secs: Math.round(Number(process.hrtime.bigint() - this.startedAt) / 1e6) / 1e3,
      topics: this.registry.topicCount,
      patterns: this.registry.patternCount,
      local_deliveries: this.registry.deliveries,
      outbound_dropped: this.outbound.droppedSlow,
      conn_breaker: this.redis.connBreaker.state,
      pub_breaker: this.redis.pubBreaker.state,
      redis_publish_in_flight: inFlight.messages,
      redis_publish_in_flight_bytes: inFlight.bytes,
      redis_publish_in_flight_peak: inFlight.peak,
      redis_publish_unknown: redis.publishUnknown,
      redis_publish_partial: redis.publishPartial,
      redis_dlq_evicted: this.redis.dlqEvicted,
      redis_dlq_replayed: redis.dlqReplayed,
      redis_peers: this.redis.peers,
      redis_mode: this.redis.mode,
      redis_subscriptions: this.redis.subscriptionCount,
      redis_subscription_commands: redis.subscriptionCommands,
      redis_duplicates_dropped: redis.duplicatesDropped,
      ...(this.redis.clustered ? { redis_shards: this.redis.shards() } : {}),
      protocol_violations: this.violations.count,
    };
  }

  /**
   * True when Redis is not configured, or connected, answering, delivering and with both
   * breakers not open (CONTRACT section 7; issue 10: an open breaker sends every publish to the
   * DLQ, so it is down too). The snapshot in the health body carries both breaker states.
   */
  /** Cluster: true when some master is out of reach (its topics go to the DLQ; the others deliver). */
  brokerDegraded(): boolean {
    return this.redis.clustered && this.redis.shards().some((shard) => !shard.connected);
  }

  brokerHealthy(): boolean {
    if (!this.redis.configured) return true;
    return (
      this.redis.redisConnected() && this.redis.connBreaker.state !== 'OPEN' && this.redis.pubBreaker.state !== 'OPEN'
    );
  }
}
