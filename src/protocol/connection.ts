/**
 * What the rest of the library and the application know of a connection: no socket, no queue.
 * The transport's WseConnection is the one implementation.
 */

/** Claims of a verified JSON Web Token. */
export type WseClaims = Readonly<Record<string, unknown>>;

/** What the application sees of a connection in hooks, handlers and the authorizer. */
export interface WseConnectionInfo {
  readonly id: string;
  /** The token's `sub`; `null` in anonymous mode. */
  readonly userId: string | null;
  /** The verified token's claims; `null` in anonymous mode. */
  readonly claims: WseClaims | null;
  readonly connectedAt: Date;
  /** The topics and patterns the connection is subscribed to. */
  readonly topics: ReadonlySet<string>;
}
