/**
 * The wire protocol's fixed numbers (CONTRACT sections 3 and 4): version, envelope category,
 * close codes and error codes, in one catalogue. The protocol layer imports nothing of ours, so
 * these live here; `wse.constants.ts` re-exports them for the rest of the library.
 */

/** Wire protocol version carried in every system envelope as `v`. */
export const WSE_PROTOCOL_VERSION = 1;

/** Envelope category of every system message the server sends. */
export const WSE_SYSTEM_CATEGORY = 'WSE';

/** WebSocket close codes the server uses, in one catalogue. */
export const WseCloseCode = {
  /** Idle timeout (reason `idle timeout`) and orderly closes. */
  NORMAL: 1000,
  /** Going away: not used by the server (WSE's clients treat it as final); see SERVICE_RESTART. */
  GOING_AWAY: 1001,
  /** Persistent abuse of the inbound rate limit (reason `rate limit exceeded`). */
  POLICY_VIOLATION: 1008,
  /** Inbound frame larger than `maxMessageBytes` (sent by ws itself). */
  MESSAGE_TOO_BIG: 1009,
  /** The application's connect guard threw (reason `connect check failed`). */
  INTERNAL_ERROR: 1011,
  /**
   * Graceful shutdown (reason `service restart`), the default of `shutdownCloseCode`: the code
   * WSE's SDKs, WSE's Python client and generic clients all reconnect on (docs/PROTOCOL.md).
   */
  SERVICE_RESTART: 1012,
  /**
   * Over `maxConnections` (reason `server full`), a slow consumer (reason `slow consumer`), or a
   * connect guard that did not answer in time (reason `connect check timed out`).
   */
  TRY_AGAIN_LATER: 1013,
  /**
   * Authentication failed at the handshake, or the connection's token expired (reason
   * `token expired`).
   */
  AUTH_FAILED: 4401,
  /** The application's connect guard refused the connection (reason `forbidden`). */
  FORBIDDEN: 4403,
} as const;
export type WseCloseCode = (typeof WseCloseCode)[keyof typeof WseCloseCode];

/** `p.code` values of `error` frames. */
export const WseErrorCode = {
  AUTH_FAILED: 'AUTH_FAILED',
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  UNKNOWN_EVENT: 'UNKNOWN_EVENT',
  OVERLOADED: 'OVERLOADED',
  /** A guard refused an application event. */
  FORBIDDEN: 'FORBIDDEN',
  /** A pipe (a `ValidationPipe`, say) refused an application event's payload. */
  INVALID_PAYLOAD: 'INVALID_PAYLOAD',
  /** An event handler failed; the details are logged on the server, never sent. */
  INTERNAL_ERROR: 'INTERNAL_ERROR',
  RATE_LIMITED: 'RATE_LIMITED',
} as const;
export type WseErrorCode = (typeof WseErrorCode)[keyof typeof WseErrorCode];
