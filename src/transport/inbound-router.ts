import { Injectable, Logger } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { WseNode } from '../node/wse-node.js';
import { pongPayload, syncCompletePayload } from '../protocol/control-answers.js';
import {
  inboundControl,
  parseInboundFrame,
  type InboundControl,
  type InboundDecodeOptions,
  type InboundFrame,
} from '../protocol/inbound-frame.js';
import { SystemFrames, type WireFrame } from '../protocol/outbound-frame.js';
import { WSE_PROTOCOL_VERSION, WSE_SERVER_VERSION, WseErrorCode } from '../wse.constants.js';
import { errorMessages, invalidMessages, logMessages, syncCompleteMessage } from '../wse.messages.js';
import { afterAnswer, MAX_PENDING_CONTROL_FRAMES, runInOrder } from './control-order.js';
import { WseEventDispatcher } from './events/event-dispatcher.js';
import { WseRateLimiter } from './rate-limit.js';
import { WseSubscriptionHandler } from './subscription-handler.js';
import type { WseConnection } from './wse-connection.js';

/**
 * Every inbound frame of an open connection, in order: the rate limit, the decoding and shape
 * check (CONTRACT section 4, and WSE's formats: protocol/inbound-frame.ts), then the control
 * frames answered here (`ping`, `pong`, `client_hello`, `sync_request`), `subscription` /
 * `subscription_update` (WseSubscriptionHandler) and everything else as an application event
 * (WseEventDispatcher).
 *
 * Inbound frames are handled in plain code rather than through Nest's message routing: the
 * contract wants an answer to malformed or unknown frames, which Nest's routing drops silently.
 *
 * Control frames of one connection are answered in order (control-order.ts): a subscription
 * waiting for its authorizer holds the ping, unsubscribe or hello behind it. Application events
 * are not control frames: they go their own way through the bounded inbound queue.
 */
@Injectable()
export class WseInboundRouter {
  private readonly logger = new Logger('WseGateway');
  private readonly decoding: InboundDecodeOptions;

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly rateLimiter: WseRateLimiter,
    private readonly subscriptions: WseSubscriptionHandler,
    private readonly events: WseEventDispatcher,
    private readonly node: WseNode,
    private readonly frames: SystemFrames,
  ) {
    this.decoding = Object.freeze({
      msgpack: options.compatibility.msgpack,
      compression: options.compatibility.compression,
      maxInflatedBytes: options.maxMessageBytes,
    });
  }

  handle(connection: WseConnection, data: Buffer, isBinary: boolean): void {
    connection.lastActivityMs = Date.now();
    if (!this.rateLimiter.admit(connection)) return;
    const parsed = parseInboundFrame(data, isBinary, this.decoding);
    if (!parsed.ok) {
      connection.send(this.frames.error(WseErrorCode.INVALID_MESSAGE, parsed.message));
      return;
    }
    const frame = parsed.frame;
    const control = inboundControl(frame.t);
    if (control === undefined) {
      this.events.dispatch(connection, frame);
    } else if (control !== 'pong') {
      if (!connection.controlBusy) afterAnswer(connection, this.control(connection, control, frame), this.failed);
      else this.later(connection, control, frame);
    }
  }

  /** Answers a control frame; a promise while the answer waits for the authorizer. */
  private control(connection: WseConnection, control: InboundControl, frame: InboundFrame): Promise<void> | undefined {
    switch (control) {
      case 'ping':
        connection.send(this.frames.frame('PONG', pongPayload(frame.p, Date.now())));
        return undefined;
      case 'client_hello':
        connection.send(this.serverHello(connection));
        return undefined;
      case 'sync_request':
        this.onSyncRequest(connection, frame);
        return undefined;
      case 'subscription':
        return this.subscriptions.handle(connection, frame);
      case 'pong':
        return undefined;
      default:
        return assertNever(control);
    }
  }

  /** Queues a control frame behind the one being answered (runs it at once when there is none). */
  private later(connection: WseConnection, control: InboundControl, frame: InboundFrame): void {
    runInOrder(
      connection,
      () => this.control(connection, control, frame),
      () =>
        connection.send(
          this.frames.error(WseErrorCode.OVERLOADED, errorMessages.controlBacklog(MAX_PENDING_CONTROL_FRAMES)),
        ),
      this.failed,
    );
  }

  /** A queued control frame threw: answered and logged, as the gateway's guard does for the others. */
  private readonly failed = (connection: WseConnection, error: unknown): void => {
    this.logger.error(logMessages.frameFailed(connection.id), error instanceof Error ? error.stack : error);
    connection.send(this.frames.error(WseErrorCode.INVALID_MESSAGE, invalidMessages.unanswerable()));
  };

  /**
   * WSE's SDKs ask for the initial state after subscribing. An application that has state to
   * send registers `@OnWseEvent('sync_request')` and answers itself; otherwise the server gives
   * WSE's generic answer, `snapshot_complete` with no snapshots, so the client stops waiting.
   */
  private onSyncRequest(connection: WseConnection, frame: InboundFrame): void {
    if (this.events.hasHandler(frame.t)) {
      this.events.dispatch(connection, frame);
      return;
    }
    connection.send(
      this.frames.frame(
        'snapshot_complete',
        syncCompletePayload(
          frame.p,
          connection.id,
          new Date(),
          this.options.maxTopicsPerSubscription,
          syncCompleteMessage(),
        ),
      ),
    );
  }

  private serverHello(connection: WseConnection): WireFrame {
    return this.frames.frame('server_hello', {
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

function assertNever(value: never): never {
  throw new Error(`unexpected control frame ${String(value)}`);
}
