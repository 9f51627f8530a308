import { Injectable, Logger } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { WseNode } from '../node/wse-node.js';
import { echoable, parseInboundFrame, type InboundFrame } from '../protocol/inbound-frame.js';
import { errorFrame, systemFrame, type WireFrame } from '../protocol/outbound-frame.js';
import { WSE_PROTOCOL_VERSION, WSE_SERVER_VERSION, WseErrorCode } from '../wse.constants.js';
import { errorMessages, invalidMessages, logMessages } from '../wse.messages.js';
import { WseEventDispatcher } from './events/event-dispatcher.js';
import { WseRateLimiter } from './rate-limit.js';
import { WseSubscriptionHandler } from './subscription-handler.js';
import { WS_OPEN, type WseConnection } from './wse-connection.js';

/** Control frames one connection may have waiting behind an unanswered subscription. */
export const MAX_PENDING_CONTROL_FRAMES = 64;

/**
 * Every inbound frame of an open connection, in order: the rate limit, the shape check
 * (CONTRACT section 4), then the control frames answered here (`ping`, `pong`, `client_hello`),
 * `subscription` (WseSubscriptionHandler) and everything else as an application event
 * (WseEventDispatcher).
 *
 * Inbound frames are handled in plain code rather than through Nest's message routing: the
 * contract wants an answer to malformed or unknown frames, which Nest's routing drops silently.
 *
 * Control frames of one connection are answered in the order they arrived (issue 10: a subscribe
 * waiting for the authorizer was overtaken by the unsubscribe after it, which could end
 * subscribed, the answers out of order). While one is being worked out, the next ones wait in a
 * per-connection queue of at most MAX_PENDING_CONTROL_FRAMES; past that a frame is answered
 * OVERLOADED and dropped. Application events are not control frames: they go their own way
 * through the bounded inbound queue.
 */
@Injectable()
export class WseInboundRouter {
  private readonly logger = new Logger('WseGateway');

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
      case 'client_hello':
      case 'subscription':
        if (connection.controlBusy) this.enqueue(connection, frame);
        else this.runControl(connection, frame);
        return;
      case 'pong':
        return;
      default:
        this.events.dispatch(connection, frame);
    }
  }

  /** Answers one control frame; a pending answer (an authorizer running) holds the ones after it. */
  private control(connection: WseConnection, frame: InboundFrame): Promise<void> | undefined {
    switch (frame.t.toLowerCase()) {
      case 'ping':
        connection.send(
          systemFrame('PONG', {
            client_timestamp: echoable(frame.p.client_timestamp),
            server_timestamp: Date.now(),
          }),
        );
        return undefined;
      case 'client_hello':
        connection.send(this.serverHello(connection));
        return undefined;
      default:
        return this.subscriptions.handle(connection, frame);
    }
  }

  private enqueue(connection: WseConnection, frame: InboundFrame): void {
    const queue = (connection.controlQueue ??= []);
    if (queue.length >= MAX_PENDING_CONTROL_FRAMES) {
      connection.send(errorFrame(WseErrorCode.OVERLOADED, errorMessages.controlBacklog(MAX_PENDING_CONTROL_FRAMES)));
      return;
    }
    queue.push(() => this.control(connection, frame));
  }

  private runControl(connection: WseConnection, frame: InboundFrame): void {
    this.settle(connection, this.control(connection, frame));
  }

  private settle(connection: WseConnection, pending: Promise<void> | undefined): void {
    if (pending === undefined) return;
    connection.controlBusy = true;
    void pending.finally(() => {
      connection.controlBusy = false;
      this.drain(connection);
    });
  }

  /** Answers the waiting control frames in order, until one is pending again. */
  private drain(connection: WseConnection): void {
    const queue = connection.controlQueue;
    while (queue !== undefined && queue.length > 0 && !connection.controlBusy) {
      if (connection.socket.readyState !== WS_OPEN) {
        queue.length = 0;
        return;
      }
      const next = queue.shift()!;
      try {
        this.settle(connection, next());
      } catch (error) {
        this.logger.error(logMessages.frameFailed(connection.id), error instanceof Error ? error.stack : error);
        connection.send(errorFrame(WseErrorCode.INVALID_MESSAGE, invalidMessages.unanswerable()));
      }
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
