import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { ResolvedAuthOptions, ResolvedWseOptions } from '../../config/wse-module-options.interface.js';
import { InjectWseOptions } from '../../config/inject-wse-options.decorator.js';
import type { WseClaims } from '../../protocol/connection.js';
import { authFailures, logMessages } from '../../wse.messages.js';

/** Who a handshake authenticated as. */
export type HandshakeIdentity =
  | {
      readonly ok: true;
      readonly userId: string | null;
      readonly claims: WseClaims | null;
      /**
       * When the token stops being acceptable (`exp`, or `iat` + `maxTokenAgeSec`, plus the clock
       * tolerance), in epoch ms: the connection is closed then (4401 `token expired`).
       */
      readonly expiresAtMs: number | undefined;
    }
  | { readonly ok: false; readonly reason: string };

const ANONYMOUS: HandshakeIdentity = Object.freeze({ ok: true, userId: null, claims: null, expiresAtMs: undefined });

/**
 * Verifies handshake tokens: only the configured algorithms (so `alg: none` and HS/RS
 * confusion never pass), `exp` (required unless `requireExp` is off), `nbf`, `iat` against
 * `maxTokenAgeSec`, and `iss` / `aud` when configured. Without a key every handshake is
 * anonymous.
 *
 * A secret or a public key is verified synchronously with jsonwebtoken, in the upgrade's own
 * turn, which is what keeps the 101 response and `server_ready` in one write. The key becomes a
 * `KeyObject` once, here: handed a string, jsonwebtoken first tries to parse it as a PEM key on
 * every call (about 350 us); with a KeyObject an HS256 verify costs about 8 us. A JWKS needs
 * the network now and then, so those handshakes are verified asynchronously by `jose`, which
 * fetches, caches and refetches the key set.
 */
@Injectable()
export class WseAuthenticator {
  private readonly jwt: JwtService | undefined;
  private readonly jwks: JWTVerifyGetKey | undefined;
  private readonly auth: ResolvedAuthOptions;

  constructor(@InjectWseOptions() options: ResolvedWseOptions) {
    this.auth = options.auth;
    const { jwtSecret, publicKey, jwksUrl, algorithms, issuer, audience, clockToleranceSec, maxTokenAgeSec } =
      this.auth;
    if (jwksUrl !== undefined) {
      this.jwks = createRemoteJWKSet(new URL(jwksUrl), {
        cacheMaxAge: this.auth.jwksCacheMaxAgeMs,
        cooldownDuration: this.auth.jwksCooldownMs,
        timeoutDuration: this.auth.jwksTimeoutMs,
      });
      return;
    }
    let key: KeyObject;
    if (jwtSecret !== undefined) key = createSecretKey(Buffer.from(jwtSecret, 'utf8'));
    else if (publicKey !== undefined) key = createPublicKey(publicKey);
    else {
      new Logger('WseModule').warn(logMessages.anonymousMode());
      return;
    }
    this.jwt = new JwtService({
      secret: key,
      publicKey: key,
      verifyOptions: {
        algorithms: [...algorithms],
        issuer,
        audience,
        clockTolerance: clockToleranceSec,
        maxAge: maxTokenAgeSec,
      },
    });
  }

  /** True when handshakes need a token. */
  get required(): boolean {
    return this.jwt !== undefined || this.jwks !== undefined;
  }

  /** True when `authenticate` answers with a promise (a JWKS), so the handshake cannot finish in its turn. */
  get isAsync(): boolean {
    return this.jwks !== undefined;
  }

  /**
   * Checks a token found by `findHandshakeToken`. Never throws or rejects: a failure is a
   * result. Synchronous unless `isAsync`.
   */
  authenticate(token: string | undefined): HandshakeIdentity | Promise<HandshakeIdentity> {
    if (!this.required) return ANONYMOUS;
    if (token === undefined) return { ok: false, reason: authFailures.missing() };
    if (this.jwks !== undefined) return this.verifyWithJwks(token, this.jwks);
    let claims: Record<string, unknown>;
    try {
      claims = (this.jwt as JwtService).verify<Record<string, unknown>>(token);
    } catch (error) {
      return { ok: false, reason: this.describeJsonWebTokenFailure(error) };
    }
    return this.identityOf(claims);
  }

  private async verifyWithJwks(token: string, jwks: JWTVerifyGetKey): Promise<HandshakeIdentity> {
    const { algorithms, issuer, audience, clockToleranceSec, maxTokenAgeSec, requireExp } = this.auth;
    try {
      const { payload } = await jwtVerify(token, jwks, {
        algorithms: [...algorithms],
        issuer,
        audience,
        clockTolerance: clockToleranceSec,
        maxTokenAge: maxTokenAgeSec,
        requiredClaims: requireExp ? ['exp'] : [],
      });
      return this.identityOf(payload as Record<string, unknown>);
    } catch (error) {
      return { ok: false, reason: this.describeJoseFailure(error) };
    }
  }

  private identityOf(claims: Record<string, unknown>): HandshakeIdentity {
    const { requireExp, maxTokenAgeSec, clockToleranceSec } = this.auth;
    const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
    if (requireExp && exp === undefined) return { ok: false, reason: authFailures.noExpiry() };
    const iat = typeof claims.iat === 'number' ? claims.iat : undefined;
    const limits: number[] = [];
    if (exp !== undefined) limits.push(exp);
    if (maxTokenAgeSec !== undefined && iat !== undefined) limits.push(iat + maxTokenAgeSec);
    const expiresAtMs = limits.length === 0 ? undefined : (Math.min(...limits) + clockToleranceSec) * 1000;
    const sub = claims.sub;
    const userId = typeof sub === 'string' ? sub : typeof sub === 'number' ? String(sub) : null;
    return { ok: true, userId, claims: Object.freeze(claims), expiresAtMs };
  }

  /** Maps jsonwebtoken's errors to the contract's failure reasons; never echoes the token. */
  private describeJsonWebTokenFailure(error: unknown): string {
    const name = error instanceof Error ? error.name : '';
    const message = error instanceof Error ? error.message : '';
    if (message === 'maxAge exceeded') return authFailures.tooOld();
    if (message === 'iat required when maxAge is specified') return authFailures.noIssuedAt();
    if (name === 'TokenExpiredError') return authFailures.expired();
    if (name === 'NotBeforeError') return authFailures.notYetValid();
    if (message.startsWith('jwt issuer invalid')) return authFailures.wrongIssuer();
    if (message.startsWith('jwt audience invalid')) return authFailures.wrongAudience();
    if (message === 'invalid signature') return authFailures.badSignature();
    if (
      message === 'invalid algorithm' ||
      message === 'jwt signature is required' ||
      message.startsWith('secretOrPublicKey must')
    ) {
      return authFailures.badAlgorithm(this.auth.algorithms);
    }
    if (message === 'jwt malformed' || message.startsWith('invalid token') || message.startsWith('Unexpected token')) {
      return authFailures.malformed();
    }
    return authFailures.invalid();
  }

  /** The same reasons for jose's errors. */
  private describeJoseFailure(error: unknown): string {
    if (error instanceof joseErrors.JWTExpired) {
      return error.claim === 'iat' ? authFailures.tooOld() : authFailures.expired();
    }
    if (error instanceof joseErrors.JWTClaimValidationFailed) {
      if (error.claim === 'exp' && error.reason === 'missing') return authFailures.noExpiry();
      if (error.claim === 'iat' && error.reason === 'missing') return authFailures.noIssuedAt();
      if (error.claim === 'nbf') return authFailures.notYetValid();
      if (error.claim === 'iss') return authFailures.wrongIssuer();
      if (error.claim === 'aud') return authFailures.wrongAudience();
      return authFailures.invalid();
    }
    if (error instanceof joseErrors.JWSSignatureVerificationFailed) return authFailures.badSignature();
    if (error instanceof joseErrors.JOSEAlgNotAllowed) return authFailures.badAlgorithm(this.auth.algorithms);
    if (error instanceof joseErrors.JWKSNoMatchingKey) return authFailures.unknownKey();
    if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid)
      return authFailures.malformed();
    if (
      error instanceof joseErrors.JWKSTimeout ||
      error instanceof joseErrors.JWKSInvalid ||
      // fetch() fails with a TypeError, recognised by name: it may come from another realm.
      (typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'TypeError')
    ) {
      return authFailures.keysUnavailable();
    }
    return authFailures.invalid();
  }
}
