import { Controller, Get, Header } from '@nestjs/common';
import { WseAdmin } from 'nestjs-wse';

/** What the demo page's figures panel shows: counts and booleans only. */
export interface DemoStats {
  /** WebSocket connections open on this instance. */
  connections: number;
  /** Deliveries made by this instance's fan-out (one per connection per message). */
  local_deliveries: number;
  /** True while Redis is connected and proven to deliver; false without Redis. */
  redis_connected: boolean;
  /** Messages held in the dead letter queue because Redis could not take them. */
  redis_dlq_size: number;
  /** True when a Redis URL is configured, connected or not. */
  multi_instance: boolean;
}

/**
 * `GET /stats`: live figures for the demo page, polled every second. Public on purpose (no API
 * key): it picks five figures out of the health snapshot and nothing else, so no connection id,
 * user id, topic name, Redis URL or error text can leak through it. The full snapshot stays
 * behind `/health` and the API key (`GET /api/snapshot`).
 */
@Controller('stats')
export class StatsController {
  constructor(private readonly wse: WseAdmin) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  stats(): DemoStats {
    const snapshot = this.wse.healthSnapshot();
    return {
      connections: snapshot.connections,
      local_deliveries: snapshot.local_deliveries,
      redis_connected: snapshot.redis_connected,
      redis_dlq_size: snapshot.redis_dlq_size,
      multi_instance: this.wse.multiInstance,
    };
  }
}
