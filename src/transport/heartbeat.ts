import { Injectable } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { SystemFrames } from '../protocol/outbound-frame.js';
import { WseCloseCode } from '../wse.constants.js';
import { closeReasons } from '../wse.messages.js';
import { WseSlowConsumers } from './slow-consumers.js';
import { WS_OPEN, type WseConnection } from './wse-connection.js';

/**
 * One timer for every connection: the server ping every `pingIntervalMs`, the idle timeout
 * (close 1000 `idle timeout`) and the slow-consumer check (WseSlowConsumers). It ticks often enough that an idle
 * connection is closed within a quarter of its timeout late, and never more than once a second.
 */
@Injectable()
export class WseHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private nextPingAt = 0;

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly registry: TopicRegistryService<WseConnection>,
    private readonly slowConsumers: WseSlowConsumers,
    private readonly frames: SystemFrames,
  ) {}

  start(): void {
    this.nextPingAt = Date.now() + this.options.pingIntervalMs;
    const period = Math.min(
      1000,
      Math.max(10, Math.floor(Math.min(this.options.pingIntervalMs, this.options.idleTimeoutMs) / 4)),
    );
    this.timer = setInterval(() => this.sweep(), period);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    const now = Date.now();
    const idleBefore = now - this.options.idleTimeoutMs;
    // Built once per tick and shared by every connection, `id` included when configured.
    const at = new Date(now);
    const ping = now >= this.nextPingAt ? this.frames.frame('ping', { server_time: at.toISOString() }, at) : undefined;
    if (ping !== undefined) this.nextPingAt = now + this.options.pingIntervalMs;
    for (const connection of this.registry.connections()) {
      // Closing already: its close handshake (or the slow-consumer grace) takes it from here.
      if (connection.socket.readyState !== WS_OPEN) continue;
      if (connection.lastActivityMs <= idleBefore) {
        connection.close(WseCloseCode.NORMAL, closeReasons.idleTimeout());
      } else if (!this.slowConsumers.closeIfStuck(connection, now) && ping !== undefined) {
        connection.send(ping);
      }
    }
  }
}
