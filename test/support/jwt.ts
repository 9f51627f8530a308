import jwt from 'jsonwebtoken';

export const TEST_SECRET = 'integration-test-secret-0123456789';

/** An HS256 token for `sub`, valid for a minute unless `options` say otherwise. */
export function signToken(
  claims: Record<string, unknown> = { sub: 'user-1' },
  options: jwt.SignOptions = {},
  secret: string = TEST_SECRET,
): string {
  return jwt.sign(claims, secret, { algorithm: 'HS256', expiresIn: 60, ...options });
}
