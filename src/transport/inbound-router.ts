import { Injectable } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { WseNode } from '../node/wse-node.js';
import { parseInboundFrame } from '../protocol/inbound-frame.js';
import { errorFrame, systemFrame, type WireFrame } from '../protocol/outbound-frame.js';
import { WSE_PROTOCOL_VERSION, WSE_SERVER_VERSION, WseErrorCode } from '../wse.constants.js';
import { WseEventDispatcher } from './events/event-dispatcher.js';
import { WseRateLimiter } from './rate-limit.js';
import { WseSubscriptionHandler } from './subscription-handler.js';
import type { WseConnection } from './wse-connection.js';

/**
 * Every inbound frame of an open connection, in order: the rate limit, the shape check
 * (CONTRACT section 4), then the control frames answered here (`ping`, `pong`, `client_hello`),
 * `subscription` (WseSubscriptionHandler) and everything else as an application event
 * (WseEventDispatcher).
 *
 * Inbound frames are handled in plain code rather than through Nest's message routing: the
 * contract wants an answer to malformed or unknown frames, which Nest's routing drops silently.
 */
@Injectable()
export class WseInboundRouter {
  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly rateLimiter: WseRateLimiter,
    private readonly subscriptions: WseSubscriptionHandler,
    private readonly events: WseEventDispatcher,
    private readonly node: WseNode,
  ) {}

  handle(connection: WseConnection, data: Buffer, isBinary: boolean): void {
    connection.lastActivityMs = Date.now();
    if (!this.rateLimiter.admit(connection)) return;
    const parsed = parseInboundFrame(data, isBinary);
    if (!parsed.ok) {
      connection.send(errorFrame(WseErrorCode.INVALID_MESSAGE, parsed.message));
      return;
    }
    const frame = parsed.frame;
    switch (frame.t.toLowerCase()) {
      case 'ping':
        connection.send(
          systemFrame('PONG', {
            client_timestamp: frame.p.client_timestamp ?? null,
            server_timestamp: Date.now(),
          }),
        );
        return;
      case 'pong':
        return;
      case 'client_hello':
        connection.send(this.serverHello(connection));
        return;
      case 'subscription':
        this.subscriptions.handle(connection, frame);
        return;
      default:
        this.events.dispatch(connection, frame);
    }
  }

  private serverHello(connection: WseConnection): WireFrame {
    return systemFrame('server_hello', {
      server_version: WSE_SERVER_VERSION,
      protocol_version: WSE_PROTOCOL_VERSION,
      features: this.node.features(),
      limits: { max_message_size: this.options.maxMessageBytes },
      ping_interval: this.options.pingIntervalMs,
      connection_id: connection.id,
      server_time: new Date().toISOString(),
    });
  }
}
