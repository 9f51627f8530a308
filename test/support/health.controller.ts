import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { WseHealthIndicator } from '../../src/index.js';

/** `GET /health` as the README wires it: Terminus with the `wse` indicator. */
@Controller('health')
export class TestHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly wse: WseHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.wse.isHealthy('wse')]);
  }
}
