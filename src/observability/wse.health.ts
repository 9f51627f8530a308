import { Injectable } from '@nestjs/common';
import { WseGateway } from '../transport/wse.gateway.js';
import { WseHealthSnapshotService, type WseHealthSnapshot } from './wse-health-snapshot.js';

/** The state Terminus reads from an indicator's result. */
export type WseHealthStatus = 'up' | 'degraded' | 'down';

/**
 * One indicator result in Terminus's shape (`HealthIndicatorResult` of `@nestjs/terminus`):
 * `{ [key]: { status, ...snapshot } }`. Declared here so the library needs no Terminus at run
 * time or in its types: Terminus is an optional peer, used only by the application's own
 * health controller.
 */
export type WseHealthIndicatorResult<Key extends string = 'wse'> = Record<
  Key,
  { status: WseHealthStatus } & WseHealthSnapshot
>;

/**
 * Terminus health indicator: `up` while the WebSocket endpoint listens and Redis is either not
 * configured or connected, `degraded` when a Redis Cluster has a master out of reach (the other
 * masters' topics still deliver), `down` otherwise; each carries the health snapshot. Terminus
 * answers 503 for a `down` result, 200 for the others.
 *
 * @example
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.wse.isHealthy()]); }
 * ```
 */
@Injectable()
export class WseHealthIndicator {
  constructor(
    private readonly gateway: WseGateway,
    private readonly snapshots: WseHealthSnapshotService,
  ) {}

  isHealthy<const Key extends string = 'wse'>(key: Key = 'wse' as Key): WseHealthIndicatorResult<Key> {
    const snapshot = this.snapshots.snapshot();
    const healthy = this.gateway.isListening && this.snapshots.brokerHealthy();
    // A cluster with a master out of reach still delivers the topics of the others: degraded
    // (Terminus answers 200 with status "degraded"), not down.
    const status: WseHealthStatus = !healthy ? 'down' : this.snapshots.brokerDegraded() ? 'degraded' : 'up';
    return { [key]: { status, ...snapshot } } as WseHealthIndicatorResult<Key>;
  }
}
