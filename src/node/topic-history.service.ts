import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { RedisPubSubService } from '../broker/redis/redis-pubsub.service.js';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { HistoryTopics } from '../hub/history/history-topics.js';
import { MemoryHistory } from '../hub/history/memory-history.js';
import type { HistoryPosition, HistoryRead } from '../protocol/history.js';
import { historyMessages } from '../wse.messages.js';

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
 * (compiled once, here, at start) and the store that keeps it.
 *
 * Without Redis the store is this process's MemoryHistory, swept for idle topics in the
 * background. With Redis configured the history must be shared by every instance; until the
 * Redis store exists, history topics are delivered as plain topics (unstamped) and a warning
 * says so at start, rather than giving each instance offsets of its own that would disagree.
 */
@Injectable()
export class TopicHistoryService implements OnModuleInit, OnApplicationShutdown {
  readonly stats = new RecoveryStats();
  readonly topics: HistoryTopics;
  /** The in-memory store; undefined when no history topics are configured or Redis is. */
  readonly memory: MemoryHistory | undefined;
  readonly maxReplay: number;
  private readonly ttlMs: number;
  private readonly logger = new Logger('WseHistory');
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    @InjectWseOptions() options: ResolvedWseOptions,
    private readonly redis: RedisPubSubService,
  ) {
    const recovery = options.recovery;
    this.topics = new HistoryTopics(recovery.topics);
    this.maxReplay = recovery.maxReplay;
    this.ttlMs = recovery.ttlMs;
    if (this.topics.enabled && !redis.configured) {
      this.memory = new MemoryHistory({
        size: recovery.size,
        ttlMs: recovery.ttlMs,
        maxReplay: recovery.maxReplay,
        maxMemoryBytes: recovery.maxMemoryBytes,
      });
    }
  }

  onModuleInit(): void {
    if (this.topics.enabled && this.redis.configured) this.logger.warn(historyMessages.redisHistoryUnavailable());
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

  /** True when history topics are configured and kept (advertised as `features.recovery`). */
  get enabled(): boolean {
    return this.memory !== undefined && !this.redis.configured;
  }

  /**
   * True when messages on the concrete topic `topic` keep history. One field check while no
   * history topics are configured: plain topics pay nothing for the feature.
   */
  isHistoryTopic(topic: string): boolean {
    return this.memory !== undefined && !this.redis.configured && this.topics.matches(topic);
  }

  /** The store recoveries and positions are read from; only while `enabled`. */
  store(): HistoryStore {
    return this.memory as MemoryHistory;
  }
}
