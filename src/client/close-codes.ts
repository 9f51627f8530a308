/**
 * What the client does when a connection closes with a code: `retry` (reconnect with backoff),
 * `stop` (the state becomes `closed`, an `error` event says why), or `auth` (ask `token` once
 * more, see WseClientOptions.token).
 */
export type WseCloseAction = 'retry' | 'stop' | 'auth';

/**
 * The one table of close codes. A code not listed is retried: a close the client does not
 * understand is more likely a proxy or a network event than a verdict on the client.
 */
export const WSE_CLOSE_CODES: Readonly<Record<number, WseCloseAction>> = Object.freeze({
  /** Normal closure, e.g. the server's idle timeout. */
  1000: 'retry',
  /** Going away: a server or proxy shutting down (WSE's own servers on stop()). */
  1001: 'retry',
  /** Abnormal closure: no close frame (network lost, process killed, connection refused). */
  1006: 'retry',
  /** Policy violation (the server's rate limit): the same client would be closed again. */
  1008: 'stop',
  /** Message too big: the same frame would be refused again. */
  1009: 'stop',
  /** Internal server error. */
  1011: 'retry',
  /** Service restart: a nestjs-wse server's graceful shutdown (`shutdownCloseCode`). */
  1012: 'retry',
  /** Try again later: server full, or closed as a slow consumer. */
  1013: 'retry',
  /** Closed by this client: no server ping within interval + margin, or no server_ready in time. */
  4000: 'retry',
  /** WSE's drain: the server asks its clients to reconnect (to another instance). */
  4300: 'retry',
  /** Authentication failed: asked once more for a token, then stopped. */
  4401: 'auth',
});

/** The action for `code` from {@link WSE_CLOSE_CODES}; `retry` for a code not listed. */
export function closeAction(code: number): WseCloseAction {
  return WSE_CLOSE_CODES[code] ?? 'retry';
}
