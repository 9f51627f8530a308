/**
 * `nestjs-wse/client`: the WSE client for browsers and Node (CONTRACT section 12). An ES module
 * with no dependencies and nothing from the rest of the package: it runs on the global
 * `WebSocket`, or on a class passed in as `options.WebSocket` (for example `ws` in Node 20).
 */
export { WseClient, WSE_CLIENT_VERSION } from './wse-client.js';
export { reconnectDelay, WSE_BACKOFF_DEFAULTS } from './backoff.js';
export type { WseBackoffOptions } from './backoff.js';
export { closeAction, WSE_CLOSE_CODES } from './close-codes.js';
export type { WseCloseAction } from './close-codes.js';
export type { WseRecoveryState } from './stamp.js';
export type {
  WseClientError,
  WseClientErrorCode,
  WseClientEvents,
  WseClientOptions,
  WseClientState,
  WseMessage,
  WseReadyDetails,
  WseResyncEvent,
  WseServerHello,
  WseSocket,
  WseStateInfo,
  WseSubscriptionResult,
  WseToken,
  WseWebSocketConstructor,
} from './types.js';
