import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { WseGateway } from '../transport/wse.gateway.js';
import { WseHealthSnapshotService } from './wse-health-snapshot.js';

/**
 * Terminus health indicator: `up` while the WebSocket endpoint listens and Redis is either not
 * configured or connected, `down` otherwise; both carry the health snapshot.
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
    private readonly indicators: HealthIndicatorService,
    private readonly gateway: WseGateway,
    private readonly snapshots: WseHealthSnapshotService,
  ) {}

  isHealthy<const Key extends string = 'wse'>(key: Key = 'wse' as Key): HealthIndicatorResult<Key> {
    const indicator = this.indicators.check(key);
    const snapshot = this.snapshots.snapshot();
    const healthy = this.gateway.isListening && this.snapshots.brokerHealthy();
    return healthy ? indicator.up({ ...snapshot }) : indicator.down({ ...snapshot });
  }
}
