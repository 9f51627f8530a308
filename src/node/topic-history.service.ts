import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { RedisPubSubService } from '../broker/redis/redis-pubsub.service.js';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { HistoryTopics } from '../hub/history/history-topics.js';
import { MemoryHistory } from '../hub/history/memory-history.js';
import type { HistoryPosition, HistoryRead } from '../protocol/history.js';

/** Where history is kept: answers may come at once (memory) or later (Redis). */
export interface HistoryStore {
  position(topic: string): HistoryPosition | Promise<HistoryPosition>;
  read(topic: string, epoch: string, offset: number): HistoryRead | Promise<HistoryRead>;
}

/** Counters of recoveries, plain fields read on scrape. */
export class RecoveryStats {
  /** Topic recoveries answered `recovered: true`. */
  recovered = 0;
  /** Topic recoveries answered `recovered: false` (epoch changed, trimmed, expired, too many, bad input). */
  notRecovered = 0;
  /** Messages sent by recoveries. */
  replayed = 0;
}

/** How often idle topics are swept from the in-memory history, at most. */
const MAX_SWEEP_INTERVAL_MS = 60_000;
const MIN_SWEEP_INTERVAL_MS = 1000;

/**
 * History and recovery settings at run time (CONTRACT section 11): which topics keep history
 * (compiled once, here, at start) and the store that keeps it: Redis (RedisPubSubService's
 * RedisHistory, shared by every instance) while Redis is configured, this process's
 * MemoryHistory otherwise, swept for idle topics in the background.
 */
@Injectable()
export class TopicHistoryService implements OnModuleInit, OnApplicationShutdown {
  readonly stats = new RecoveryStats();
  readonly topics: HistoryTopics;
  /** The in-memory store (used while Redis is not configured); undefined without history topics. */
  readonly memory: MemoryHistory | undefined;
  readonly maxReplay: number;
  /** True when history topics are configured: the one check plain topics pay. */
  private readonly anyTopics: boolean;
  private readonly ttlMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    @InjectWseOptions() options: ResolvedWseOptions,
    private readonly redis: RedisPubSubService,
  ) {
    const recovery = options.recovery;
    this.topics = new HistoryTopics(recovery.topics);
    this.anyTopics = this.topics.enabled;
    this.maxReplay = recovery.maxReplay;
    this.ttlMs = recovery.ttlMs;
    if (this.anyTopics) {
      this.memory = new MemoryHistory({
        size: recovery.size,
        ttlMs: recovery.ttlMs,
        maxReplay: recovery.maxReplay,
        maxMemoryBytes: recovery.maxMemoryBytes,
      });
    }
  }

  onModuleInit(): void {
    const memory = this.memory;
    if (memory === undefined) return;
    const interval = Math.min(MAX_SWEEP_INTERVAL_MS, Math.max(MIN_SWEEP_INTERVAL_MS, this.ttlMs));
    this.sweepTimer = setInterval(() => memory.sweep(), interval);
    this.sweepTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.memory?.clear();
  }

  /** True when history topics are configured (advertised as `features.recovery`). */
  get enabled(): boolean {
    return this.anyTopics;
  }

  /** True while the history is kept in Redis (Redis configured), false while in memory. */
  get inRedis(): boolean {
    return this.redis.configured;
  }

  /**
   * True when messages on the concrete topic `topic` keep history. One field check while no
   * history topics are configured: plain topics pay nothing for the feature.
   */
  isHistoryTopic(topic: string): boolean {
    return this.anyTopics && this.topics.matches(topic);
  }

  /** The store recoveries and positions are read from; only while `enabled`. */
  store(): HistoryStore {
    return this.redis.configured ? this.redisStore : (this.memory as MemoryHistory);
  }

  /**
   * Redis's history, read so that a recovery can merge it with the live messages: the read's
   * reply comes on the publisher connection and can overtake messages it already counts that
   * are still on their way to the subscriber, so the read is followed by a barrier through
   * Pub/Sub (RedisPubSubService.historyBarrier; in a cluster on the topic's slot); after it, every message up to the read's offset has
   * arrived here and the hold has it. Positions need no barrier: a live message at or before a
   * reported position is no loss.
   */
  private readonly redisStore: HistoryStore = {
    position: (topic) => this.redis.history.position(topic),
    read: async (topic, epoch, offset) => {
      const read = await this.redis.history.read(topic, epoch, offset);
      await this.redis.historyBarrier(topic);
      return read;
    },
  };
}
