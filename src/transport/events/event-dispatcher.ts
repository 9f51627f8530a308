import { Injectable, Logger } from '@nestjs/common';
import { encodePayload } from '../../node/payload.js';
import type { InboundFrame } from '../../protocol/inbound-frame.js';
import { replyErrorFrame, textFrame } from '../../protocol/outbound-frame.js';
import { ThrottledWarning } from '../../reliability/throttled-warning.js';
import { WseErrorCode } from '../../wse.constants.js';
import { errorMessages, logMessages } from '../../wse.messages.js';
import { InboundQueue } from '../inbound-queue.js';
import type { WseConnection } from '../wse-connection.js';
import { eventErrorAnswer } from './event-errors.js';
import { WseHooksExplorer } from './wse-hooks.explorer.js';

/**
 * Application events: hands a frame whose `t` is not a control type to its `@OnWseEvent`
 * handler (wrapped in Nest's pipeline by WseEventPipeline) through the bounded inbound queue,
 * and answers what the handler returns, throws or the queue refuses. Every `error` answer
 * carries the frame's `cid` / `id`; the connection stays open. Only inbound application events
 * pass here; fan-out never does.
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
      connection.send(replyErrorFrame(frame, WseErrorCode.UNKNOWN_EVENT, errorMessages.unknownEvent(frame.t)));
      return;
    }
    const accepted = this.inbound.offer(async () => {
      let result: unknown;
      try {
        result = await handler(frame.p, { connection, frame });
      } catch (error) {
        const answer = eventErrorAnswer(error, frame.t);
        if (answer.internal) {
          this.logger.error(
            logMessages.handlerFailed(frame.t, connection.id),
            error instanceof Error ? error.stack : error,
          );
        }
        connection.send(replyErrorFrame(frame, answer.code, answer.message, answer.extra));
        return;
      }
      if (result !== undefined) connection.send(textFrame(encodePayload(result)));
    });
    if (!accepted) {
      this.overloadWarning.record((count) => logMessages.inboundDropped(count));
      connection.send(replyErrorFrame(frame, WseErrorCode.OVERLOADED, errorMessages.overloaded()));
    }
  }
}
