import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { resolveWseOptions } from 'nestjs-wse';
import { WseConfigError } from 'nestjs-wse';
import { readEnvironment } from './env.config.js';

/** Runs `readEnvironment` on variables it must refuse and returns the error. */
function envErrorOf(env: NodeJS.ProcessEnv): WseConfigError {
  try {
    readEnvironment(env);
  } catch (error) {
    expect(error).toBeInstanceOf(WseConfigError);
    return error as WseConfigError;
  }
  throw new Error(`readEnvironment accepted ${Object.keys(env).join(', ')}`);
}

describe('readEnvironment', () => {
  describe('with no variables set', () => {
    it('listens on 0.0.0.0:5006 without Redis and leaves the engine options to their defaults', () => {
      expect(readEnvironment({})).toEqual({
        port: 5006,
        host: '0.0.0.0',
        apiPath: '/api',
        metricsRequireKey: false,
        logFormat: 'text',
        logLevel: 'log',
        shutdownTimeoutMs: 10_000,
        wse: {
          allowedOrigins: undefined,
          path: undefined,
          maxConnections: undefined,
          maxMessageBytes: undefined,
          pingIntervalMs: undefined,
          idleTimeoutMs: undefined,
          apiKey: undefined,
          auth: {
            jwtSecret: undefined,
            publicKey: undefined,
            jwksUrl: undefined,
            algorithms: undefined,
            anonymous: true,
            issuer: undefined,
            audience: undefined,
            cookieName: undefined,
            requireExp: undefined,
            maxTokenAgeSec: undefined,
            clockToleranceSec: undefined,
          },
          subscriptions: { allow: ['user:{sub}:*', 'chat:*'], deny: undefined, claim: undefined },
          redis: { url: undefined, prefix: undefined },
          recovery: {
            topics: undefined,
            size: undefined,
            ttlMs: undefined,
            maxReplay: undefined,
            maxMemoryBytes: undefined,
          },
        },
      });
    });

    it('resolves to the defaults of CONTRACT section 2 once the module applies its own', () => {
      expect(resolveWseOptions(readEnvironment({}).wse)).toMatchObject({
        path: '/wse',
        maxConnections: 10_000,
        maxMessageBytes: 1_048_576,
        pingIntervalMs: 25_000,
        idleTimeoutMs: 60_000,
        apiKey: undefined,
        auth: {
          jwtSecret: undefined,
          issuer: undefined,
          audience: undefined,
          cookieName: 'access_token',
          algorithms: [],
          requireExp: true,
          maxTokenAgeSec: undefined,
          clockToleranceSec: 0,
        },
        subscriptions: { allow: ['user:{sub}:*', 'chat:*'], deny: [], claim: undefined },
        redis: { url: undefined, prefix: 'wse:' },
      });
    });

    it('treats blank values as unset', () => {
      expect(readEnvironment({ PORT: '', HOST: '  ', WSE_JWT_SECRET: ' ', REDIS_URL: '' })).toEqual(
        readEnvironment({}),
      );
    });
  });

  describe('reads each variable of CONTRACT section 2 into its option', () => {
    it.each([
      ['PORT', '8080', { port: 8080 }],
      ['PORT', '0', { port: 0 }],
      ['PORT', '65535', { port: 65_535 }],
      ['HOST', '127.0.0.1', { host: '127.0.0.1' }],
      ['WSE_PATH', '/ws/v1', { wse: { path: '/ws/v1' } }],
      ['WSE_MAX_CONNECTIONS', '250', { wse: { maxConnections: 250 } }],
      ['WSE_JWT_SECRET', 'top-secret', { wse: { auth: { jwtSecret: 'top-secret' } } }],
      ['WSE_JWT_ISSUER', 'issuer-x', { wse: { auth: { issuer: 'issuer-x' } } }],
      ['WSE_JWT_AUDIENCE', 'aud-y', { wse: { auth: { audience: 'aud-y' } } }],
      ['WSE_JWT_COOKIE', 'jwt', { wse: { auth: { cookieName: 'jwt' } } }],
      ['REDIS_URL', 'redis://127.0.0.1:6379/0', { wse: { redis: { url: 'redis://127.0.0.1:6379/0' } } }],
      ['REDIS_URL', 'rediss://:pw@cache.example:6380', { wse: { redis: { url: 'rediss://:pw@cache.example:6380' } } }],
      ['WSE_REDIS_PREFIX', 'app1:', { wse: { redis: { prefix: 'app1:' } } }],
      ['WSE_REDIS_ROUTING', 'interest', { wse: { redis: { routing: 'interest' } } }],
      ['WSE_API_KEY', 'api-key-1', { wse: { apiKey: 'api-key-1' } }],
      ['WSE_PING_INTERVAL_MS', '1000', { wse: { pingIntervalMs: 1000 } }],
      ['WSE_IDLE_TIMEOUT_MS', '3000', { wse: { idleTimeoutMs: 3000 } }],
      ['WSE_MAX_MESSAGE_BYTES', '65536', { wse: { maxMessageBytes: 65_536 } }],
      ['WSE_RECOVERY_TOPICS', 'chat:*, orders', { wse: { recovery: { topics: ['chat:*', 'orders'] } } }],
      ['WSE_RECOVERY_SIZE', '64', { wse: { recovery: { size: 64 } } }],
      ['WSE_RECOVERY_TTL_MS', '60000', { wse: { recovery: { ttlMs: 60_000 } } }],
      ['WSE_RECOVERY_MAX_REPLAY', '100', { wse: { recovery: { maxReplay: 100 } } }],
      ['WSE_RECOVERY_MAX_MEMORY_BYTES', '1048576', { wse: { recovery: { maxMemoryBytes: 1_048_576 } } }],
      [
        'WSE_JWT_JWKS_URL',
        'https://id.example/jwks.json',
        { wse: { auth: { jwksUrl: 'https://id.example/jwks.json' } } },
      ],
      ['WSE_JWT_ALGORITHMS', 'HS256, HS512', { wse: { auth: { algorithms: ['HS256', 'HS512'] } } }],
      ['WSE_JWT_REQUIRE_EXP', 'false', { wse: { auth: { requireExp: false } } }],
      ['WSE_JWT_MAX_AGE_SEC', '3600', { wse: { auth: { maxTokenAgeSec: 3600 } } }],
      ['WSE_JWT_CLOCK_TOLERANCE_SEC', '5', { wse: { auth: { clockToleranceSec: 5 } } }],
      ['WSE_SUBSCRIBE_ALLOW', '*', { wse: { subscriptions: { allow: ['*'] } } }],
      [
        'WSE_SUBSCRIBE_ALLOW',
        'user:{sub}:*, chat:{lobby,help} ,prices:\\,x',
        { wse: { subscriptions: { allow: ['user:{sub}:*', 'chat:{lobby,help}', 'prices:\\,x'] } } },
      ],
      ['WSE_SUBSCRIBE_DENY', 'chat:admin,secret:*', { wse: { subscriptions: { deny: ['chat:admin', 'secret:*'] } } }],
      ['WSE_SUBSCRIBE_CLAIM', 'channels', { wse: { subscriptions: { claim: 'channels' } } }],
    ])('%s=%s', (name, value, expected) => {
      expect(readEnvironment({ [name]: value })).toMatchObject(expected);
    });

    it('reads them all at once', () => {
      const env = readEnvironment({
        PORT: '7000',
        HOST: '::1',
        WSE_PATH: '/live',
        WSE_MAX_CONNECTIONS: '3',
        WSE_JWT_SECRET: 's',
        WSE_JWT_ISSUER: 'i',
        WSE_JWT_AUDIENCE: 'a',
        WSE_JWT_COOKIE: 'c',
        REDIS_URL: 'redis://r:6379',
        WSE_REDIS_PREFIX: 'p:',
        WSE_API_KEY: 'k',
        WSE_PING_INTERVAL_MS: '10',
        WSE_IDLE_TIMEOUT_MS: '20',
        WSE_MAX_MESSAGE_BYTES: '30',
        WSE_RECOVERY_TOPICS: 'room:*',
        WSE_RECOVERY_SIZE: '8',
        WSE_RECOVERY_TTL_MS: '1000',
        WSE_RECOVERY_MAX_REPLAY: '4',
        WSE_RECOVERY_MAX_MEMORY_BYTES: '4096',
        WSE_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
        WSE_METRICS_REQUIRE_KEY: 'true',
        WSE_LOG_FORMAT: 'json',
        WSE_LOG_LEVEL: 'debug',
        WSE_SHUTDOWN_TIMEOUT_MS: '500',
      });
      expect(env).toEqual({
        port: 7000,
        host: '::1',
        apiPath: '/api',
        metricsRequireKey: true,
        logFormat: 'json',
        logLevel: 'debug',
        shutdownTimeoutMs: 500,
        wse: {
          allowedOrigins: ['https://a.example', 'https://b.example'],
          path: '/live',
          maxConnections: 3,
          maxMessageBytes: 30,
          pingIntervalMs: 10,
          idleTimeoutMs: 20,
          apiKey: 'k',
          auth: {
            jwtSecret: 's',
            publicKey: undefined,
            jwksUrl: undefined,
            algorithms: undefined,
            anonymous: undefined,
            issuer: 'i',
            audience: 'a',
            cookieName: 'c',
            requireExp: undefined,
            maxTokenAgeSec: undefined,
            clockToleranceSec: undefined,
          },
          subscriptions: { allow: ['user:{sub}:*', 'chat:*'], deny: undefined, claim: undefined },
          redis: { url: 'redis://r:6379', prefix: 'p:' },
          recovery: { topics: ['room:*'], size: 8, ttlMs: 1000, maxReplay: 4, maxMemoryBytes: 4096 },
        },
      });
    });

    it('ignores variables it does not know', () => {
      expect(readEnvironment({ SOMETHING_ELSE: 'x', NODE_ENV: 'production' })).toEqual(readEnvironment({}));
    });
  });

  describe('with a malformed value', () => {
    it.each([
      ['WSE_LOG_FORMAT', 'xml', 'must be one of text, json (got "xml")'],
      ['WSE_METRICS_REQUIRE_KEY', 'yes', 'must be one of true, false (got "yes")'],
      [
        'WSE_ALLOWED_ORIGINS',
        'https://a.example/path',
        'each origin must be scheme://host[:port] with no path, e.g. "https://app.example.com" (got "https://a.example/path")',
      ],
      ['PORT', 'abc', 'must be a whole number from 0 to 65535 (got "abc")'],
      ['PORT', '70000', 'must be a whole number from 0 to 65535 (got "70000")'],
      ['PORT', '-1', 'must be a whole number from 0 to 65535 (got "-1")'],
      ['PORT', '80.5', 'must be a whole number from 0 to 65535 (got "80.5")'],
      ['PORT', '0x50', 'must be a whole number from 0 to 65535 (got "0x50")'],
      ['WSE_MAX_CONNECTIONS', '-1', 'must be a whole number >= 1 (got "-1")'],
      ['WSE_MAX_CONNECTIONS', '0', 'must be a whole number >= 1 (got "0")'],
      ['WSE_MAX_CONNECTIONS', '1e3', 'must be a whole number >= 1 (got "1e3")'],
      ['WSE_MAX_CONNECTIONS', '99999999999999999999', 'must be a whole number >= 1 (got "99999999999999999999")'],
      ['WSE_PING_INTERVAL_MS', '1.5', 'must be a whole number >= 1 (got "1.5")'],
      ['WSE_IDLE_TIMEOUT_MS', 'soon', 'must be a whole number >= 1 (got "soon")'],
      ['WSE_MAX_MESSAGE_BYTES', '1MB', 'must be a whole number >= 1 (got "1MB")'],
      ['REDIS_URL', 'http://x', 'must be a redis:// or rediss:// URL (got "<hidden>")'],
      ['REDIS_URL', 'localhost:6379', 'must be a redis:// or rediss:// URL (got "<hidden>")'],
      ['REDIS_URL', 'not a url', 'must be a redis:// or rediss:// URL (got "<hidden>")'],
      ['WSE_PATH', 'wse', 'must be a URL path starting with "/" (got "wse")'],
      ['WSE_RECOVERY_SIZE', '0', 'must be a whole number >= 1 (got "0")'],
      ['WSE_RECOVERY_TTL_MS', '5m', 'must be a whole number >= 1 (got "5m")'],
      ['WSE_RECOVERY_MAX_REPLAY', '-3', 'must be a whole number >= 1 (got "-3")'],
      ['WSE_RECOVERY_MAX_MEMORY_BYTES', '64MiB', 'must be a whole number >= 1 (got "64MiB")'],
      ['WSE_JWT_REQUIRE_EXP', 'no', 'must be one of true, false (got "no")'],
      ['WSE_REDIS_ROUTING', 'sharded', 'must be one of "pattern", "interest" (got "sharded")'],
      ['WSE_JWT_MAX_AGE_SEC', '0', 'must be a whole number >= 1 (got "0")'],
      ['WSE_JWT_CLOCK_TOLERANCE_SEC', '-5', 'must be a whole number >= 0 (got "-5")'],
      [
        'WSE_JWT_ALGORITHMS',
        'HS256,none',
        'must list only HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 (got "HS256,none")',
      ],
      ['WSE_JWT_JWKS_URL', 'ftp://x', 'must be an https:// or http:// URL (got "ftp://x")'],
      [
        'WSE_JWT_PUBLIC_KEY',
        'not a key',
        'must be a PEM public key ("-----BEGIN PUBLIC KEY-----...") (got "<string>")',
      ],
    ])('%s=%j stops start-up with an error naming the variable', (name, value, rule) => {
      const error = envErrorOf({ [name]: value });
      expect(error.message).toBe(`Invalid environment:\n  - ${name}: ${rule}`);
      expect(error.problems.map((p) => p.path)).toEqual([name]);
    });

    it('reports every malformed variable in one error', () => {
      const error = envErrorOf({ PORT: 'abc', WSE_MAX_CONNECTIONS: '-1', WSE_PATH: 'wse', REDIS_URL: 'http://x' });
      expect(error.message).toBe(
        [
          'Invalid environment:',
          '  - PORT: must be a whole number from 0 to 65535 (got "abc")',
          '  - WSE_PATH: must be a URL path starting with "/" (got "wse")',
          '  - WSE_MAX_CONNECTIONS: must be a whole number >= 1 (got "-1")',
          '  - REDIS_URL: must be a redis:// or rediss:// URL (got "<hidden>")',
        ].join('\n'),
      );
    });

    it('never echoes a REDIS_URL, which may hold a password', () => {
      const error = envErrorOf({ REDIS_URL: 'http://admin:hunter2@cache.example:6379' });
      expect(error.message).toBe(
        'Invalid environment:\n  - REDIS_URL: must be a redis:// or rediss:// URL (got "<hidden>")',
      );
      expect(error.message).not.toContain('hunter2');
      expect(JSON.stringify(error.problems)).not.toContain('hunter2');
    });

    // CONTRACT section 2: a malformed value stops the process "with a message that names the
    // variable". These values pass the env layer and are only refused later by the module,
    // whose message names the option (`path`, `auth.cookieName`), not the variable.
    it.each([
      ['WSE_PATH', '/ws e'],
      ['WSE_JWT_COOKIE', 'access token'],
      ['WSE_SUBSCRIBE_ALLOW', 'chat:['],
      ['WSE_SUBSCRIBE_DENY', 'x,user:{s b}'],
    ])('%s=%j is refused naming the variable', (name, value) => {
      const error = envErrorOf({ [name]: value });
      expect(error.problems.map((p) => p.path)).toEqual([name]);
      expect(error.message).toContain(`  - ${name}: `);
    });
  });

  describe('key sources', () => {
    it('reads a PEM public key written on one line with \\n for its line breaks', () => {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const oneLine = pem.trim().split('\n').join('\\n');
      const env = readEnvironment({ WSE_JWT_PUBLIC_KEY: oneLine, WSE_JWT_ALGORITHMS: 'ES256' });
      expect(env.wse.auth).toMatchObject({ publicKey: pem.trim(), algorithms: ['ES256'] });
    });

    it('refuses two key sources at once, naming the secret', () => {
      const error = envErrorOf({ WSE_JWT_SECRET: 's', WSE_JWT_JWKS_URL: 'https://id.example/jwks.json' });
      expect(error.message).toBe(
        'Invalid environment:\n  - WSE_JWT_SECRET: set one of jwtSecret, publicKey and jwksUrl (got "<several key sources>")',
      );
    });

    it('refuses an RS256 algorithm with an HMAC secret', () => {
      const error = envErrorOf({ WSE_JWT_SECRET: 's', WSE_JWT_ALGORITHMS: 'RS256' });
      expect(error.problems).toEqual([
        {
          path: 'WSE_JWT_ALGORITHMS',
          rule: 'RS256 needs auth.publicKey or auth.jwksUrl, not auth.jwtSecret',
          value: 'RS256',
        },
      ]);
    });
  });
});
