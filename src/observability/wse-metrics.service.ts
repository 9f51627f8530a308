import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import { OutboundWriter } from '../transport/outbound-writer.js';
import { WseRateLimiter } from '../transport/rate-limit.js';
import { WseEventDispatcher } from '../transport/events/event-dispatcher.js';
import { WseGateway } from '../transport/wse.gateway.js';
import { InboundQueue } from '../transport/inbound-queue.js';
import { WseHealthSnapshotService, type WseHealthSnapshot } from './wse-health-snapshot.js';
import { RedisPubSubService } from '../broker/redis/redis-pubsub.service.js';
import type { CircuitState } from '../reliability/circuit-breaker.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { PROTOCOL_VIOLATION_KINDS, ProtocolViolations } from '../transport/protocol-violations.js';
import type { BucketHistogram } from '../reliability/bucket-histogram.js';
import { TopicHistoryService } from '../node/topic-history.service.js';

/** Snapshot keys that only grow: exported as Prometheus counters; the rest are gauges. */
const COUNTER_KEYS = new Set<keyof WseHealthSnapshot>([
  'inbound_dropped',
  'redis_messages_received',
  'redis_messages_published',
  'redis_messages_delivered',
  'redis_messages_dropped',
  'redis_publish_errors',
  'redis_reconnect_count',
  'local_deliveries',
  'outbound_dropped',
  'redis_publish_unknown',
  'redis_publish_partial',
  'redis_dlq_evicted',
  'redis_dlq_replayed',
  'protocol_violations',
  'redis_subscription_commands',
  'redis_duplicates_dropped',
]);

const BREAKER_STATES: readonly CircuitState[] = ['CLOSED', 'OPEN', 'HALF_OPEN'];

/**
 * Prometheus metrics in a registry of their own (`registry`), which the application serves and
 * may add its own metrics to. Everything is read when scraped: counters are the plain fields the
 * hot path already keeps, histograms are BucketHistograms filled without calling prom-client, so
 * metrics cost a publish nothing.
 *
 * Names: every key of the health snapshot as `wse_<key>`, plus `wse_deliveries_total`,
 * `wse_messages_dropped_total{cause}`, `wse_connections_closed_total{code}`,
 * `wse_circuit_breaker_state{breaker,state}`, `wse_protocol_violations_total{kind}`, `wse_fanout_size` and
 * `wse_publish_to_write_seconds` histograms, the history metrics (`wse_history_appends_total`,
 * `wse_history_evicted_total`, `wse_history_memory_bytes`, `wse_history_topics`,
 * `wse_recoveries_total{result}`, `wse_recovery_replayed_messages_total`), and Node's default
 * process metrics.
 */
@Injectable()
export class WseMetricsService {
  readonly registry = new Registry();

  constructor(
    snapshots: WseHealthSnapshotService,
    registry: TopicRegistryService,
    gateway: WseGateway,
    rateLimiter: WseRateLimiter,
    events: WseEventDispatcher,
    writer: OutboundWriter,
    inbound: InboundQueue,
    redis: RedisPubSubService,
    violations: ProtocolViolations,
    history: TopicHistoryService,
  ) {
    const register = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    const sample: WseHealthSnapshot = snapshots.snapshot();
    for (const key of Object.keys(sample) as Array<keyof WseHealthSnapshot>) {
      if (typeof sample[key] !== 'number' && typeof sample[key] !== 'boolean') continue;
      const name = `wse_${key}`;
      const help = `Health snapshot ${key} (see CONTRACT section 8)`;
      const read = (): number => Number(snapshots.snapshot()[key]);
      if (COUNTER_KEYS.has(key)) {
        new Counter({ name, help, registers: register, collect: setCounter(read) });
      } else {
        new Gauge({
          name,
          help,
          registers: register,
          collect() {
            this.set(read());
          },
        });
      }
    }

    new Counter({
      name: 'wse_deliveries_total',
      help: 'Messages handed to connections by the local fan-out (one per connection per message)',
      registers: register,
      collect: setCounter(() => registry.deliveries),
    });
    new Counter({
      name: 'wse_messages_dropped_total',
      help: 'Messages not delivered, by cause',
      labelNames: ['cause'],
      registers: register,
      collect() {
        this.reset();
        this.inc({ cause: 'slow_consumer' }, writer.droppedSlow);
        this.inc({ cause: 'connection_closed' }, writer.droppedClosed);
        this.inc({ cause: 'inbound_queue_full' }, inbound.dropped);
        this.inc({ cause: 'rate_limited' }, rateLimiter.rateLimited);
        this.inc({ cause: 'unknown_event' }, events.unknownIgnored);
        this.inc({ cause: 'redis_publish_failed' }, redis.stats.publishErrors);
      },
    });
    new Counter({
      name: 'wse_slow_consumers_closed_total',
      help: 'Connections closed with 1013 slow consumer',
      registers: register,
      collect: setCounter(() => writer.slowConsumersClosed),
    });
    new Counter({
      name: 'wse_connections_closed_total',
      help: "Closed connections, by WebSocket close code (the server's own code when it started the close)",
      labelNames: ['code'],
      registers: register,
      collect() {
        this.reset();
        for (const [code, count] of gateway.closeCodes) this.inc({ code: String(code) }, count);
      },
    });
    new Counter({
      name: 'wse_protocol_violations_total',
      help: 'Protocol violations from clients (the connection was closed, or the upgrade refused), by kind',
      labelNames: ['kind'],
      registers: register,
      collect() {
        this.reset();
        for (const kind of PROTOCOL_VIOLATION_KINDS) this.inc({ kind }, violations.of(kind));
      },
    });
    new Gauge({
      name: 'wse_circuit_breaker_state',
      help: 'Circuit breaker state: 1 for the current state of each breaker, 0 for the others',
      labelNames: ['breaker', 'state'],
      registers: register,
      collect() {
        for (const breaker of [redis.connBreaker, redis.pubBreaker]) {
          const current = breaker.state;
          for (const state of BREAKER_STATES) this.set({ breaker: breaker.name, state }, current === state ? 1 : 0);
        }
      },
    });
    new Counter({
      name: 'wse_history_appends_total',
      help: 'Messages recorded in the history of history topics (in-memory mode)',
      registers: register,
      collect: setCounter(() => history.memory?.stats.appends ?? 0),
    });
    new Counter({
      name: 'wse_history_evicted_total',
      help: 'History messages dropped before their time to stay under recovery.maxMemoryBytes',
      registers: register,
      collect: setCounter(() => history.memory?.stats.evicted ?? 0),
    });
    new Gauge({
      name: 'wse_history_memory_bytes',
      help: 'Bytes the in-memory history holds (payloads plus bookkeeping), at most recovery.maxMemoryBytes',
      registers: register,
      collect() {
        this.set(history.memory?.memoryBytes ?? 0);
      },
    });
    new Gauge({
      name: 'wse_history_topics',
      help: 'Topics with a history in memory',
      registers: register,
      collect() {
        this.set(history.memory?.topicCount ?? 0);
      },
    });
    new Counter({
      name: 'wse_recoveries_total',
      help: 'Topic recoveries asked for by subscribers, by result (recovered, not_recovered)',
      labelNames: ['result'],
      registers: register,
      collect() {
        this.reset();
        this.inc({ result: 'recovered' }, history.stats.recovered);
        this.inc({ result: 'not_recovered' }, history.stats.notRecovered);
      },
    });
    new Counter({
      name: 'wse_recovery_replayed_messages_total',
      help: 'Messages sent to subscribers by recoveries',
      registers: register,
      collect: setCounter(() => history.stats.replayed),
    });
    this.registry.registerMetric(
      histogramMetric('wse_fanout_size', 'Connections reached per delivered message', registry.fanoutSize),
    );
    this.registry.registerMetric(
      histogramMetric(
        'wse_publish_to_write_seconds',
        'From the first frame queued for a write round to the end of that round of socket writes',
        writer.latency,
      ),
    );
  }

  /** The Prometheus text exposition of every metric. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A counter's collect that mirrors a plain field (which only grows). */
function setCounter(read: () => number): (this: Counter) => void {
  return function (this: Counter) {
    this.reset();
    this.inc(read());
  };
}

/** Exposes a BucketHistogram as a Prometheus histogram, read at scrape time. */
function histogramMetric(name: string, help: string, histogram: BucketHistogram): Metric {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: () => {
      const cumulative = histogram.cumulative();
      const values = histogram.bounds.map((bound, i) => ({
        labels: { le: bound },
        value: cumulative[i],
        metricName: `${name}_bucket`,
      }));
      values.push({
        labels: { le: '+Inf' as unknown as number },
        value: cumulative[cumulative.length - 1],
        metricName: `${name}_bucket`,
      });
      return Promise.resolve({
        name,
        help,
        type: 'histogram',
        aggregator: 'sum',
        values: [
          ...values,
          { labels: {}, value: histogram.sum, metricName: `${name}_sum` },
          { labels: {}, value: histogram.count, metricName: `${name}_count` },
        ],
      });
    },
    reset: () => undefined,
  };
  return metric as unknown as Metric;
}
