import { SetMetadata } from '@nestjs/common';
import { WSE_CONNECT_HANDLER, WSE_DISCONNECT_HANDLER, WSE_EVENT_HANDLER } from '../../wse.constants.js';

/**
 * Marks a provider method as the handler of client events whose `t` is `type`. It is called as
 * `method(payload, context)` with the frame's `p` and a `WseEventContext`. What it returns (or
 * resolves to), unless `undefined`, is sent back to that client exactly like `sendEvent` would:
 * a string as-is, anything else as JSON. One handler per event type.
 *
 * `@OnWseEvent('*')` is the catch-all: it receives every event that has no handler of its own
 * (its type is `context.frame.t`), which is what WSE's server does with unknown types (hands
 * them to the application). Without it, such events get `UNKNOWN_EVENT`, or are dropped with
 * the module option `unknownEvents: 'ignore'`.
 *
 * @example
 * ```ts
 * @Injectable()
 * export class ChatHandlers {
 *   @OnWseEvent('chat_message')
 *   onChat(payload: Record<string, unknown>, { connection }: WseEventContext) { ... }
 * }
 * ```
 */
export const OnWseEvent = (type: string): MethodDecorator => SetMetadata(WSE_EVENT_HANDLER, type);

/**
 * Marks a provider method to be called as `method(connection)` when a connection has passed
 * authentication and received `server_ready`: the place to subscribe it to its own topics.
 */
export const OnWseConnect = (): MethodDecorator => SetMetadata(WSE_CONNECT_HANDLER, true);

/** Marks a provider method to be called as `method(connection, closeCode)` after a connection closed. */
export const OnWseDisconnect = (): MethodDecorator => SetMetadata(WSE_DISCONNECT_HANDLER, true);
