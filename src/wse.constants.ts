/**
 * Tokens, codes and fixed numbers shared across the library. The close and error codes are the
 * contract's (CONTRACT sections 3 and 4); the rest are chosen once here and documented in
 * docs/PROTOCOL.md.
 */

/** DI token of the resolved, frozen options. Inject with `@InjectWseOptions()`. */
export const WSE_OPTIONS = 'WSE:OPTIONS';

export {
  WSE_PROTOCOL_VERSION,
  WSE_SYSTEM_CATEGORY,
  WseCloseCode,
  WseErrorCode,
} from './protocol/protocol.constants.js';

/** Reported to clients in `server_hello.server_version`. */
export const WSE_SERVER_VERSION = '0.1.0';

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
