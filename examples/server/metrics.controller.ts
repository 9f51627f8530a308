import { Controller, Get, Header, Headers, Inject, Res, UnauthorizedException } from '@nestjs/common';
import type { Response } from 'express';
import { WseApiKey, WseMetricsService } from 'nestjs-wse';
import { APP_ENVIRONMENT } from './app.constants.js';
import type { AppEnvironment } from './env.config.js';

/**
 * `GET /metrics` in the Prometheus text format: the engine's metrics and Node's process
 * metrics. Open by default, as scrapers usually sit on a private network; with
 * `WSE_METRICS_REQUIRE_KEY=true` it needs `Authorization: Bearer <WSE_API_KEY>` like the API.
 */
@Controller('metrics')
export class MetricsController {
  private readonly key: WseApiKey | undefined;

  constructor(
    private readonly metrics: WseMetricsService,
    @Inject(APP_ENVIRONMENT) env: AppEnvironment,
  ) {
    const apiKey = env.wse.apiKey;
    this.key = env.metricsRequireKey && apiKey !== undefined ? new WseApiKey(apiKey) : undefined;
  }

  @Get()
  @Header('Cache-Control', 'no-store')
  async scrape(@Headers('authorization') authorization: string | undefined, @Res() response: Response): Promise<void> {
    if (this.key !== undefined && !this.key.matches(authorization)) {
      throw new UnauthorizedException({ error: 'Missing or wrong API key: send Authorization: Bearer <WSE_API_KEY>' });
    }
    response.type(this.metrics.contentType).send(await this.metrics.metrics());
  }
}
