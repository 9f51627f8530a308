/**
 * Tokens, codes and fixed numbers shared across the library. The close and error codes are the
 * contract's (CONTRACT sections 3 and 4); the rest are chosen once here and documented in
 * docs/PROTOCOL.md.
 */

/** DI token of the resolved, frozen options. Inject with `@InjectWseOptions()`. */
export const WSE_OPTIONS = 'WSE:OPTIONS';

/** Wire protocol version carried in every system envelope as `v`. */
export const WSE_PROTOCOL_VERSION = 1;

/** Reported to clients in `server_hello.server_version`. */
export const WSE_SERVER_VERSION = '0.1.0';

/** Envelope category of every system message the server sends. */
export const WSE_SYSTEM_CATEGORY = 'WSE';

/** WebSocket close codes the server uses, in one catalogue. */
export const WseCloseCode = {
  /** Idle timeout (reason `idle timeout`) and orderly closes. */
  NORMAL: 1000,
  /** Server shutting down: clients should reconnect elsewhere. */
  GOING_AWAY: 1001,
  /** Persistent abuse of the inbound rate limit (reason `rate limit exceeded`). */
  POLICY_VIOLATION: 1008,
  /** Inbound frame larger than `maxMessageBytes` (sent by ws itself). */
  MESSAGE_TOO_BIG: 1009,
  /** Over `maxConnections` (reason `server full`), or a slow consumer (reason `slow consumer`). */
  TRY_AGAIN_LATER: 1013,
  /** Authentication failed at the handshake. */
  AUTH_FAILED: 4401,
} as const;
export type WseCloseCode = (typeof WseCloseCode)[keyof typeof WseCloseCode];

/** `p.code` values of `error` frames. */
export const WseErrorCode = {
  AUTH_FAILED: 'AUTH_FAILED',
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  UNKNOWN_EVENT: 'UNKNOWN_EVENT',
  OVERLOADED: 'OVERLOADED',
  HANDLER_ERROR: 'HANDLER_ERROR',
  RATE_LIMITED: 'RATE_LIMITED',
} as const;
export type WseErrorCode = (typeof WseErrorCode)[keyof typeof WseErrorCode];

/**
 * Channels of the Redis delivery probe start with this. It must lie outside the topic space
 * (`<prefix>*`), so the resolver refuses a prefix that would cover it.
 */
export const REDIS_PROBE_CHANNEL_PREFIX = '__wse_probe__:';

/** A topic (or pattern) longer than this many UTF-8 bytes is refused. */
export const MAX_TOPIC_BYTES = 256;

/** Metadata keys of the handler decorators. */
export const WSE_EVENT_HANDLER = 'WSE:EVENT_HANDLER';
export const WSE_CONNECT_HANDLER = 'WSE:CONNECT_HANDLER';
export const WSE_DISCONNECT_HANDLER = 'WSE:DISCONNECT_HANDLER';
