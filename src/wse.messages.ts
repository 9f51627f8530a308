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
  badAlgorithm: (accepted: readonly string[]) =>
    `Token algorithm is not accepted (${accepted.length === 1 ? `${accepted[0]} only` : accepted.join(', ')})`,
  expired: () => 'Token has expired',
  noExpiry: () => 'Token has no expiry (exp)',
  tooOld: () => 'Token is older than the server accepts (iat)',
  noIssuedAt: () => 'Token has no issue time (iat), which the server needs to check its age',
  unknownKey: () => 'Token key (kid) is not in the key set',
  keysUnavailable: () => 'Token keys could not be fetched: retry later',
  notYetValid: () => 'Token is not valid yet (nbf)',
  wrongIssuer: () => 'Token issuer (iss) does not match',
  wrongAudience: () => 'Token audience (aud) does not match',
  invalid: () => 'Token is invalid',
};

export { invalidMessages, recoveryInputMessages } from './protocol/protocol.messages.js';

/** Why a topic ends up in `failed_topics`. */
export const topicRejections = {
  notString: () => 'topic must be a string',
  empty: () => 'topic is empty',
  tooLong: (maxBytes: number) => `topic is longer than ${maxBytes} bytes`,
  controlCharacter: () => 'topic contains a control character',
  refused: () => 'not authorized',
  notAllowed: () => 'not allowed by the subscription rules',
  denied: () => 'denied by the subscription rules',
  patternTooWide: () => 'pattern reaches topics the subscription rules do not allow',
  patternReachesDenied: () => 'pattern reaches topics the subscription rules deny',
  topicLimit: (max: number) => `topic limit reached (${max} per connection)`,
};

/** `p.message` of the built-in `snapshot_complete` (WSE's own text). */
export const syncCompleteMessage = (): string => 'Initial sync complete';

export const errorMessages = {
  unknownEvent: (type: string) => `No handler for event "${type}"`,
  overloaded: () => 'Server is overloaded: the event was dropped, retry later',
  handlerFailed: (type: string) => `Handler for event "${type}" failed`,
  invalidPayload: (type: string) => `Payload of event "${type}" is invalid`,
  rateLimited: () => 'Too many messages: slow down and retry after retry_after seconds',
  controlBacklog: (max: number) =>
    `Too many control frames waiting for an earlier subscription to be answered (at most ${max}): the frame was dropped`,
};

/** Close reasons (at most 123 bytes each, as the WebSocket protocol requires). */
export const closeReasons = {
  idleTimeout: () => 'idle timeout',
  serverFull: () => 'server full',
  authFailed: () => 'authentication failed',
  tokenExpired: () => 'token expired',
  forbidden: () => 'forbidden',
  connectGuardTimeout: () => 'connect check timed out',
  connectGuardFailed: () => 'connect check failed',
  goingAway: () => 'going away',
  serviceRestart: () => 'service restart',
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
  connectGuardFailed: (peer: string) => `connect guard threw for a handshake from ${peer}; the connection is closed`,
  tokenExpiredClosed: (id: string) => `connection ${id} closed: its token expired`,
  authorizerFailed: (topic: string) => `authorizeSubscription threw for topic "${topic}"; the topic is refused`,
  slowConsumerClosed: (id: string, bufferedBytes: number) =>
    `connection ${id} closed as a slow consumer (${bufferedBytes} bytes unread)`,
  inboundDropped: (count: number) => `${count} client event(s) refused as OVERLOADED: the inbound queue is full`,
  rateLimitClosed: (id: string) => `connection ${id} closed for exceeding the rate limit`,
  protocolViolations: (count: number, kind: string) =>
    `${count} protocol violation(s) from clients since the last report (last: ${kind}); their connections were closed`,
};

/** Log lines of the Redis broker: one per state change, never one per message. */
export const redisMessages = {
  notConnected: () => 'Redis is not connected',
  breakerOpen: (name: string) => `circuit breaker ${name} is open`,
  shutdown: () => 'server shutting down before the publish could be (re)sent',
  shutdownUnanswered: () => 'server shut down before Redis answered: the message may or may not have been published',
  noReply: (timeoutMs: number) =>
    `no reply from Redis within ${timeoutMs} ms: the message may or may not have been published`,
  notAnswering: () => 'Redis is not answering (a publish is past its deadline)',
  notDelivering: () => 'delivery through Redis is not proven on this instance',
  peersUnconfirmed: (count: number) =>
    `${count} other instance(s) not yet confirmed receiving since this subscriber reconnected`,
  backlogFull: () => 'too many publishes in flight (redis.maxInFlightMessages / redis.maxInFlightBytes)',
  partial: (receivers: number, expected: number) =>
    `received by ${receivers} of ${expected} expected subscribers: an instance missed it`,
  answering: (notAnswering: boolean) =>
    notAnswering
      ? 'a publish got no reply in time: Redis marked not answering, publishes go to the DLQ until it answers'
      : 'Redis is answering again',
  probeDown: (reason: string, timeoutMs: number) =>
    reason === 'not_answering'
      ? `delivery probe not answered within ${timeoutMs} ms: Redis not answering, connections kept`
      : reason === 'not_receiving'
        ? `delivery probe published but not received within ${timeoutMs} ms: replacing the subscriber connection`
        : reason === 'refused'
          ? 'Redis refused the delivery probe: delivery not proven'
          : 'a Redis connection closed: delivery not proven until a probe comes back',
  dlqEvicted: (count: number) => `${count} oldest dead letter(s) evicted: the DLQ is full (redis.dlqCapacity)`,
  replayed: (count: number, lateMs: number) =>
    `replayed ${count} dead letter(s), delivered up to ${lateMs} ms after they first failed`,
  scriptRefused: (message: string) =>
    `Redis refused the publish batch script (${message}): publishing pipelined PUBLISH commands from now on`,
  breakerChanged: (name: string, from: string, to: string) => `${name}: ${from} -> ${to}`,
  connectionError: (role: string, message: string) => `Redis ${role} connection: ${message}`,
  subscribeFailed: (message: string) => `subscribing on Redis failed: ${message}`,
  shardsMoved: (count: number) =>
    `the cluster moved the slots of ${count} subscribed topic(s): subscribed again on their new masters; their clients are sent resync`,
  interestRefused: (kind: 'channel' | 'pattern', count: number, message: string) =>
    `Redis refused a ${kind === 'channel' ? '(UN)SUBSCRIBE' : 'P(UN)SUBSCRIBE'} of ${count} ${kind === 'channel' ? 'topic(s)' : 'glob(s)'}: ${message}; their messages do not reach this instance`,
  delivering: () => 'Redis connected: delivery proven by probe',
  deliveringAgain: (downMs: number) =>
    `Redis delivering again after ${downMs} ms: sending resync to subscribed connections`,
  dlqLostAtShutdown: (size: number) =>
    `${size} message(s) still in the dead letter queue at shutdown are lost with this process (drain GET /api/dlq before stopping to keep them)`,
  movedToDlq: (count: number, lastError: string) =>
    `${count} publish(es) moved to the dead letter queue (last error: ${lastError})`,
};

/** The `reason` of a `recovered: false` recovery entry (docs/PROTOCOL.md, "Recovery"). */
export const recoveryReasons = {
  epochChanged: () => 'epoch changed: the history this position belongs to is gone',
  trimmed: () => 'messages after this offset are no longer held (trimmed or expired)',
  overMaxReplay: (max: number) => `more than ${max} messages were missed (maxReplay)`,
  ahead: () => 'offset is past the last message of this epoch',
  notHistoryTopic: () => 'not a history topic',
  pattern: () => 'a pattern is not recoverable as a whole: recover the concrete topics it delivered',
  unavailable: () => 'history could not be read',
  overflow: () => 'too many live messages arrived while the history was read',
};
