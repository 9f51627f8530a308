/**
 * Every human sentence the library sends or logs, as small builders. Tests assert these texts,
 * so a change here is a change of the documented behaviour (docs/PROTOCOL.md).
 */

/** `p.message` of `server_ready`, fixed by the contract (section 3). */
export const readyMessage = (): string => 'Connection established';

/** `p.message` of `AUTH_FAILED` errors, one per failure reason (CONTRACT section 3). */
export const authFailures = {
  missing: () => 'No token: send it in the cookie, an Authorization: Bearer header or ?token=',
  malformed: () => 'Token is malformed',
  badSignature: () => 'Token signature is invalid',
  badAlgorithm: () => 'Token algorithm is not accepted (HS256 only)',
  expired: () => 'Token has expired',
  notYetValid: () => 'Token is not valid yet (nbf)',
  wrongIssuer: () => 'Token issuer (iss) does not match',
  wrongAudience: () => 'Token audience (aud) does not match',
  invalid: () => 'Token is invalid',
};

export { invalidMessages } from './protocol/protocol.messages.js';

/** Why a topic ends up in `failed_topics`. */
export const topicRejections = {
  notString: () => 'topic must be a string',
  empty: () => 'topic is empty',
  tooLong: (maxBytes: number) => `topic is longer than ${maxBytes} bytes`,
  controlCharacter: () => 'topic contains a control character',
  badPattern: (detail: string) => `invalid pattern: ${detail}`,
  refused: () => 'not authorized',
  topicLimit: (max: number) => `topic limit reached (${max} per connection)`,
};

export const errorMessages = {
  unknownEvent: (type: string) => `No handler for event "${type}"`,
  overloaded: () => 'Server is overloaded: the event was dropped, retry later',
  handlerFailed: (type: string) => `Handler for event "${type}" failed`,
  rateLimited: () => 'Too many messages: slow down and retry after retry_after seconds',
};

/** Close reasons (at most 123 bytes each, as the WebSocket protocol requires). */
export const closeReasons = {
  idleTimeout: () => 'idle timeout',
  serverFull: () => 'server full',
  authFailed: () => 'authentication failed',
  goingAway: () => 'going away',
  slowConsumer: () => 'slow consumer',
  rateLimitExceeded: () => 'rate limit exceeded',
};

/** Log lines. Never one per message: per connection at most, at debug level. */
export const logMessages = {
  anonymousMode: () =>
    'No JWT secret configured (WSE_JWT_SECRET / auth.jwtSecret): running in anonymous mode, every connection is accepted without a token',
  listening: (path: string) => `WebSocket endpoint ready at ${path}`,
  connected: (id: string, userId: string | null) => `connection ${id} opened (user ${userId ?? 'anonymous'})`,
  disconnected: (id: string, code: number) => `connection ${id} closed (${code})`,
  authRejected: (reason: string) => `handshake refused: ${reason}`,
  hookFailed: (hook: string, id: string) => `${hook} hook failed for connection ${id}`,
  handlerFailed: (type: string, id: string) => `handler for "${type}" failed on connection ${id}`,
  frameFailed: (id: string) => `handling a frame failed on connection ${id}`,
  authorizerFailed: (topic: string) => `authorizeSubscription threw for topic "${topic}"; the topic is refused`,
  slowConsumerClosed: (id: string, bufferedBytes: number) =>
    `connection ${id} closed as a slow consumer (${bufferedBytes} bytes unread)`,
  inboundDropped: (count: number) => `${count} client event(s) refused as OVERLOADED: the inbound queue is full`,
  rateLimitClosed: (id: string) => `connection ${id} closed for exceeding the rate limit`,
  originRefused: (origin: string) => `WebSocket upgrade refused for origin ${JSON.stringify(origin)}`,
};

/** Log lines of the Redis broker: one per state change, never one per message. */
export const redisMessages = {
  notConnected: () => 'Redis is not connected',
  breakerOpen: (name: string) => `circuit breaker ${name} is open`,
  shutdown: () => 'server shutting down before the publish could be retried',
  scriptRefused: (message: string) =>
    `Redis refused the publish batch script (${message}): publishing pipelined PUBLISH commands from now on`,
  breakerChanged: (name: string, from: string, to: string) => `${name}: ${from} -> ${to}`,
  connectionError: (role: string, message: string) => `Redis ${role} connection: ${message}`,
  subscribeFailed: (message: string) => `subscribing on Redis failed: ${message}`,
  delivering: () => 'Redis connected: delivery proven by probe',
  deliveringAgain: (downMs: number) =>
    `Redis delivering again after ${downMs} ms: sending resync to subscribed connections`,
  dlqLostAtShutdown: (size: number) =>
    `${size} message(s) still in the dead letter queue at shutdown are lost with this process (drain GET /api/dlq before stopping to keep them)`,
  movedToDlq: (count: number, lastError: string) =>
    `${count} publish(es) moved to the dead letter queue (last error: ${lastError})`,
  probeLost: (timeoutMs: number) =>
    `delivery probe not back within ${timeoutMs} ms: Redis marked down, subscriber reconnecting`,
};
