import { Get, Header, Injectable } from '@nestjs/common';
import { WseAdmin } from '../../observability/wse-admin.service.js';

/** The body of the stats endpoint. */
export interface WseStats {
  connections: number;
  local_deliveries: number;
  redis_connected: boolean;
  redis_dlq_size: number;
  multi_instance: boolean;
}

/**
 * `GET <path>`: live figures for a status page. Public on purpose (no API key): it picks five
 * figures out of the health snapshot and nothing else, so no connection id, user id, topic
 * name, Redis URL or error text can leak through it. The full snapshot stays behind the server
 * API's key (`GET <api>/snapshot`). Mounted by `WseHttpModule.forRoot({ stats: ... })`.
 */
@Injectable()
export class WseStatsController {
  constructor(private readonly admin: WseAdmin) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  stats(): WseStats {
    const snapshot = this.admin.healthSnapshot();
    return {
      connections: snapshot.connections,
      local_deliveries: snapshot.local_deliveries,
      redis_connected: snapshot.redis_connected,
      redis_dlq_size: snapshot.redis_dlq_size,
      multi_instance: this.admin.multiInstance,
    };
  }
}
