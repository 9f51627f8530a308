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
 * configured or connected, `down` otherwise; both carry the health snapshot. Terminus answers
 * 503 for a `down` result.
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
    const status: WseHealthStatus = healthy ? 'up' : 'down';
    return { [key]: { status, ...snapshot } } as WseHealthIndicatorResult<Key>;
  }
}
