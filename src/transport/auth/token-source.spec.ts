import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from '@jest/globals';
import { findHandshakeToken } from './token-source.js';

/** An upgrade request as far as the token lookup reads it. */
function request(headers: Record<string, string> = {}, url = '/wse'): IncomingMessage {
  return { headers, url } as unknown as IncomingMessage;
}

describe('findHandshakeToken', () => {
  it('finds nothing in a request without a token', () => {
    expect(findHandshakeToken(request(), 'access_token')).toBeUndefined();
  });

  it('tolerates a request without a url', () => {
    expect(findHandshakeToken({ headers: {} } as unknown as IncomingMessage, 'access_token')).toBeUndefined();
  });

  describe('each source alone', () => {
    it('reads the cookie', () => {
      expect(findHandshakeToken(request({ cookie: 'theme=dark; access_token=from-cookie; x=1' }), 'access_token')).toBe(
        'from-cookie',
      );
    });

    it('reads an Authorization: Bearer header', () => {
      expect(findHandshakeToken(request({ authorization: 'Bearer from-header' }), 'access_token')).toBe('from-header');
    });

    it('reads the token query parameter', () => {
      expect(findHandshakeToken(request({}, '/wse?x=1&token=from-query'), 'access_token')).toBe('from-query');
    });

    it('decodes a percent-encoded query token', () => {
      expect(findHandshakeToken(request({}, '/wse?token=a%2Eb%2Ec'), 'access_token')).toBe('a.b.c');
    });
  });

  describe('order: cookie, then Bearer header, then ?token=', () => {
    const all = request({ cookie: 'access_token=C', authorization: 'Bearer H' }, '/wse?token=Q');

    it('prefers the cookie over the header and the query', () => {
      expect(findHandshakeToken(all, 'access_token')).toBe('C');
    });

    it('prefers the header over the query', () => {
      expect(findHandshakeToken(request({ authorization: 'Bearer H' }, '/wse?token=Q'), 'access_token')).toBe('H');
    });

    it('falls back to the query when the cookie and header are absent', () => {
      expect(findHandshakeToken(request({ cookie: 'other=1' }, '/wse?token=Q'), 'access_token')).toBe('Q');
    });
  });

  describe('empty values count as absent', () => {
    it('skips an empty cookie', () => {
      expect(findHandshakeToken(request({ cookie: 'access_token=', authorization: 'Bearer H' }), 'access_token')).toBe(
        'H',
      );
    });

    it('skips an empty Bearer header', () => {
      expect(findHandshakeToken(request({ authorization: 'Bearer ' }, '/wse?token=Q'), 'access_token')).toBe('Q');
      expect(findHandshakeToken(request({ authorization: 'Bearer' }, '/wse?token=Q'), 'access_token')).toBe('Q');
      expect(findHandshakeToken(request({ authorization: '' }, '/wse?token=Q'), 'access_token')).toBe('Q');
    });

    it('skips an empty query token', () => {
      expect(findHandshakeToken(request({}, '/wse?token='), 'access_token')).toBeUndefined();
      expect(findHandshakeToken(request({}, '/wse?token'), 'access_token')).toBeUndefined();
    });

    it('finds nothing when every source is empty', () => {
      expect(
        findHandshakeToken(
          request({ cookie: 'access_token=', authorization: 'Bearer ' }, '/wse?token='),
          'access_token',
        ),
      ).toBeUndefined();
    });
  });

  describe('the cookie name', () => {
    it('reads the configured cookie', () => {
      expect(findHandshakeToken(request({ cookie: 'access_token=default; jwt=custom' }), 'jwt')).toBe('custom');
    });

    it('ignores the default cookie when another name is configured', () => {
      expect(findHandshakeToken(request({ cookie: 'access_token=default' }, '/wse?token=Q'), 'jwt')).toBe('Q');
    });
  });

  describe('the Authorization header', () => {
    it.each(['bearer', 'BEARER', 'Bearer', 'bEaReR'])('accepts the scheme written %j', (scheme) => {
      expect(findHandshakeToken(request({ authorization: `${scheme} tok` }), 'access_token')).toBe('tok');
    });

    it('accepts tabs and trailing blanks around the token', () => {
      expect(findHandshakeToken(request({ authorization: 'Bearer\ttok  ' }), 'access_token')).toBe('tok');
    });

    it.each(['Basic dXNlcjpwYXNz', 'Token tok', 'Bearertok', 'Bearer a b'])('ignores %j', (authorization) => {
      expect(findHandshakeToken(request({ authorization }, '/wse?token=Q'), 'access_token')).toBe('Q');
    });
  });
});
