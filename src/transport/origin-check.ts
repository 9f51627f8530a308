import type { IncomingMessage } from 'node:http';
import type { ProtocolViolations } from './protocol-violations.js';

type VerifyClient = (
  info: { origin: string; secure: boolean; req: IncomingMessage },
  callback: (result: boolean, code?: number, message?: string) => void,
) => void;

/**
 * The ws `verifyClient` hook that refuses upgrades from origins not listed, with HTTP 403 before
 * any WebSocket exists. Against cross-site WebSocket hijacking: with cookie authentication, a
 * page on another site could otherwise open a socket carrying the user's cookie. Requests
 * without an Origin header come from non-browser clients, which carry no ambient cookie, and
 * are allowed.
 */
export function originVerifier(allowedOrigins: readonly string[], violations: ProtocolViolations): VerifyClient {
  const allowed = new Set(allowedOrigins);
  return ({ origin }, callback) => {
    if (!origin || allowed.has(origin)) {
      callback(true);
      return;
    }
    // Counted and logged throttled like every other client violation: a script hammering the
    // endpoint from a foreign page must not write one log line per attempt.
    violations.record('origin_refused');
    callback(false, 403, 'Forbidden');
  };
}
