import type { ArgumentsHost } from '@nestjs/common';
import type { InboundFrame } from '../../protocol/inbound-frame.js';
import type { WseConnectionInfo } from '../../protocol/connection.js';
import type { WseHandlerArgs } from './wse-params.decorators.js';

/**
 * The context type of `@OnWseEvent` handlers: what `context.getType()` returns in a guard,
 * interceptor or exception filter running for a client event. Global enhancers see every
 * context type of the application, so one written for HTTP checks it first.
 */
export const WSE_CONTEXT_TYPE = 'wse';
export type WseContextType = typeof WSE_CONTEXT_TYPE;

/** What a guard, interceptor or filter learns about the client event it runs for. */
export interface WseEventView {
  /** The connection that sent the event. */
  readonly connection: WseConnectionInfo;
  /** The frame's `p` as the client sent it (pipes run later, on the handler's parameters). */
  readonly payload: Readonly<Record<string, unknown>>;
  /** The whole frame: `t`, and the `id` / `cid` a reply is correlated with. */
  readonly frame: InboundFrame;
  /** The event type (`frame.t`). */
  readonly event: string;
}

/**
 * Reads the client event in a guard, an interceptor or an exception filter (Nest's
 * `switchToWs()` works too: `getClient()` is the connection, `getData()` the payload,
 * `getPattern()` the event type).
 *
 * @example
 * ```ts
 * @Injectable()
 * export class AdminsOnly implements CanActivate {
 *   canActivate(context: ExecutionContext): boolean {
 *     const { connection } = WseExecutionContext.of(context);
 *     return connection.claims?.role === 'admin';
 *   }
 * }
 * ```
 */
export const WseExecutionContext = {
  /** True when `host` runs for a client event of nestjs-wse. */
  is(host: ArgumentsHost): boolean {
    return host.getType<string>() === WSE_CONTEXT_TYPE;
  },

  /** The client event `host` runs for; throws a TypeError in any other context (HTTP, say). */
  of(host: ArgumentsHost): WseEventView {
    if (!WseExecutionContext.is(host)) {
      throw new TypeError(
        `WseExecutionContext.of() needs a '${WSE_CONTEXT_TYPE}' context, got '${host.getType<string>()}': check WseExecutionContext.is(context) first`,
      );
    }
    const [connection, payload, context, event] = host.getArgs<WseHandlerArgs>();
    return { connection, payload: payload as Readonly<Record<string, unknown>>, frame: context.frame, event };
  },
};
