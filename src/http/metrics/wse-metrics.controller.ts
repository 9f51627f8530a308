import { Get, Headers, Inject, Injectable, Res, UnauthorizedException } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { WseMetricsService } from '../../observability/wse-metrics.service.js';
import { apiErrors } from '../api/api-errors.js';
import type { WseApiKey } from '../api/api-key.js';
import { WSE_METRICS_KEY } from '../wse-http.constants.js';

/**
 * `GET <path>`: the Prometheus text exposition, read at scrape time. Mounted by
 * `WseHttpModule.forRoot({ metrics: ... })`; `key` is there when scrapes need the API key.
 */
@Injectable()
export class WseMetricsController {
  constructor(
    private readonly metrics: WseMetricsService,
    private readonly adapterHost: HttpAdapterHost,
    @Inject(WSE_METRICS_KEY) private readonly key: WseApiKey | undefined,
  ) {}

  @Get()
  async scrape(@Headers('authorization') authorization: string | undefined, @Res() response: unknown): Promise<void> {
    if (this.key !== undefined && !this.key.matches(authorization)) {
      throw new UnauthorizedException(apiErrors.unauthorized());
    }
    const adapter = this.adapterHost.httpAdapter;
    adapter.setHeader(response, 'Content-Type', this.metrics.contentType);
    adapter.setHeader(response, 'Cache-Control', 'no-store');
    adapter.reply(response, await this.metrics.metrics(), 200);
  }
}
