import { Injectable, Logger } from '@nestjs/common';
import { WseEventError } from '../../errors/wse-event.error.js';
import { encodePayload } from '../../node/payload.js';
import type { InboundFrame } from '../../protocol/inbound-frame.js';
import { errorFrame, textFrame } from '../../protocol/outbound-frame.js';
import { ThrottledWarning } from '../../reliability/throttled-warning.js';
import { WseErrorCode } from '../../wse.constants.js';
import { errorMessages, logMessages } from '../../wse.messages.js';
import { InboundQueue } from '../inbound-queue.js';
import type { WseConnection } from '../wse-connection.js';
import { WseHooksExplorer } from './wse-hooks.explorer.js';

/**
 * Application events: hands a frame whose `t` is not a control type to its `@OnWseEvent`
 * handler through the bounded inbound queue, and answers what the handler returns, throws or
 * the queue refuses. Only inbound application events pass here; fan-out never does.
 */
@Injectable()
export class WseEventDispatcher {
  private readonly logger = new Logger('WseGateway');
  private readonly overloadWarning = new ThrottledWarning((line) => this.logger.warn(line));

  constructor(
    private readonly hooks: WseHooksExplorer,
    private readonly inbound: InboundQueue,
  ) {}

  dispatch(connection: WseConnection, frame: InboundFrame): void {
    const handler = this.hooks.eventHandlers.get(frame.t);
    if (handler === undefined) {
      connection.send(errorFrame(WseErrorCode.UNKNOWN_EVENT, errorMessages.unknownEvent(frame.t)));
      return;
    }
    const accepted = this.inbound.offer(async () => {
      let result: unknown;
      try {
        result = await handler(frame.p, { connection, frame });
      } catch (error) {
        if (error instanceof WseEventError) {
          connection.send(errorFrame(error.code, error.message));
          return;
        }
        this.logger.error(
          logMessages.handlerFailed(frame.t, connection.id),
          error instanceof Error ? error.stack : error,
        );
        connection.send(errorFrame(WseErrorCode.HANDLER_ERROR, errorMessages.handlerFailed(frame.t)));
        return;
      }
      if (result !== undefined) connection.send(textFrame(encodePayload(result)));
    });
    if (!accepted) {
      this.overloadWarning.record((count) => logMessages.inboundDropped(count));
      connection.send(errorFrame(WseErrorCode.OVERLOADED, errorMessages.overloaded()));
    }
  }
}
