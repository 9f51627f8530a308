import type { InboundFrame } from '../../protocol/inbound-frame.js';
import type { WseConnectionInfo } from '../../protocol/connection.js';

/** The second argument of an `@OnWseEvent` handler. */
export interface WseEventContext {
  readonly connection: WseConnectionInfo;
  /** The whole frame: its `t` (what a catch-all handler branches on) and its `id` / `cid` correlation fields. */
  readonly frame: InboundFrame;
}

/** An event handler as the dispatcher calls it: the application's method inside Nest's pipeline. */
export type WseEventHandler = (
  payload: Readonly<Record<string, unknown>>,
  context: WseEventContext,
) => Promise<unknown>;
