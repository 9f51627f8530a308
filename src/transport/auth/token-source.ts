import type { IncomingMessage } from 'node:http';
import { parseCookie } from 'cookie';

/**
 * Finds the token of a WebSocket handshake. Sources in the contract's order, first found wins
 * (CONTRACT section 3): the cookie `cookieName`, then `Authorization: Bearer <jwt>`, then the
 * `token` query parameter. An empty value counts as absent.
 */
export function findHandshakeToken(request: IncomingMessage, cookieName: string): string | undefined {
  const cookieHeader = request.headers.cookie;
  if (cookieHeader) {
    const fromCookie = parseCookie(cookieHeader)[cookieName];
    if (fromCookie) return fromCookie;
  }
  const authorization = request.headers.authorization;
  if (authorization) {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match) return match[1];
  }
  const url = request.url ?? '';
  const queryStart = url.indexOf('?');
  if (queryStart >= 0) {
    const fromQuery = new URLSearchParams(url.slice(queryStart + 1)).get('token');
    if (fromQuery) return fromQuery;
  }
  return undefined;
}
