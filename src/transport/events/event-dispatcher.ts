import { Injectable, Logger } from '@nestjs/common';
import { InjectWseOptions } from '../../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../../config/wse-module-options.interface.js';
import { encodePayload } from '../../node/payload.js';
import type { InboundFrame } from '../../protocol/inbound-frame.js';
import { SystemFrames, textFrame } from '../../protocol/outbound-frame.js';
import { ThrottledWarning } from '../../reliability/throttled-warning.js';
import { WseErrorCode } from '../../wse.constants.js';
import { errorMessages, logMessages } from '../../wse.messages.js';
import { InboundQueue } from '../inbound-queue.js';
import type { WseConnection } from '../wse-connection.js';
import { eventErrorAnswer } from './event-errors.js';
import { WSE_ANY_EVENT, WseHooksExplorer } from './wse-hooks.explorer.js';

/**
 * Application events: hands a frame whose `t` is not a control type to its `@OnWseEvent`
 * handler (or the catch-all `@OnWseEvent('*')`), wrapped in Nest's pipeline by
 * WseEventPipeline, through the bounded inbound queue, and answers what the handler returns,
 * throws or the queue refuses. Every `error` answer carries the frame's `cid` / `id`; the
 * connection stays open. An event nobody handles is answered `UNKNOWN_EVENT`, or dropped and
 * counted with `unknownEvents: 'ignore'`. Only inbound application events pass here; fan-out
 * never does.
 */
@Injectable()
export class WseEventDispatcher {
  private readonly logger = new Logger('WseGateway');
  private readonly overloadWarning = new ThrottledWarning((line) => this.logger.warn(line));
  /** Events dropped with `unknownEvents: 'ignore'` (a plain field, read on scrape). */
  unknownIgnored = 0;

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly hooks: WseHooksExplorer,
    private readonly inbound: InboundQueue,
    private readonly frames: SystemFrames,
  ) {}

  /** True when the application registered a handler for exactly this event type. */
  hasHandler(type: string): boolean {
    return this.hooks.eventHandlers.has(type);
  }

  dispatch(connection: WseConnection, frame: InboundFrame): void {
    const handler = this.hooks.eventHandlers.get(frame.t) ?? this.hooks.eventHandlers.get(WSE_ANY_EVENT);
    if (handler === undefined) {
      if (this.options.unknownEvents === 'ignore') this.unknownIgnored++;
      else
        connection.send(this.frames.replyError(frame, WseErrorCode.UNKNOWN_EVENT, errorMessages.unknownEvent(frame.t)));
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
        connection.send(this.frames.replyError(frame, answer.code, answer.message, answer.extra));
        return;
      }
      if (result !== undefined) connection.send(textFrame(encodePayload(result)));
    });
    if (!accepted) {
      this.overloadWarning.record((count) => logMessages.inboundDropped(count));
      connection.send(this.frames.replyError(frame, WseErrorCode.OVERLOADED, errorMessages.overloaded()));
    }
  }
}
