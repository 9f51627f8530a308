import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { resolveWseOptions, WSE_DEFAULTS } from './resolve-wse-options.js';
import { WseConfigError } from '../errors/wse-config.error.js';
import type { WseModuleOptions } from './wse-module-options.interface.js';

/** Runs the resolver on input it must refuse and returns the error. */
/** The options with an auth mode chosen (anonymous) where the input leaves it open. */
function withAuthMode(input: unknown): WseModuleOptions {
  if (typeof input !== 'object' || input === null) return input as WseModuleOptions;
  const options = input as WseModuleOptions;
  const auth = options.auth;
  if (auth !== undefined && (typeof auth !== 'object' || auth === null)) return options;
  const keyed = auth?.jwtSecret !== undefined || auth?.publicKey !== undefined || auth?.jwksUrl !== undefined;
  if (keyed || auth?.anonymous !== undefined) return options;
  return { ...options, auth: { ...auth, anonymous: true } };
}

function configErrorOf(input: unknown): WseConfigError {
  return rawConfigErrorOf(withAuthMode(input));
}

/** As configErrorOf, with the input exactly as given (no auth mode added). */
function rawConfigErrorOf(input: unknown): WseConfigError {
  try {
    resolveWseOptions(input as WseModuleOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(WseConfigError);
    return error as WseConfigError;
  }
  throw new Error('resolveWseOptions accepted input it should refuse');
}

describe('resolveWseOptions', () => {
  describe('with no options', () => {
    it('applies the documented defaults', () => {
      // toMatchObject: the Redis section (CONTRACT section 10) has its own defaults, not checked here.
      expect(resolveWseOptions(withAuthMode({}))).toMatchObject({
        path: '/wse',
        maxConnections: 10_000,
        maxMessageBytes: 1_048_576,
        pingIntervalMs: 25_000,
        idleTimeoutMs: 60_000,
        auth: { jwtSecret: undefined, issuer: undefined, audience: undefined, cookieName: 'access_token' },
        apiKey: undefined,
        inboundQueueSize: 10_000,
        inboundConcurrency: 64,
        maxBufferedBytes: 4_194_304,
        authorizeSubscription: undefined,
      });
    });

    it('gives the same result for an empty object', () => {
      expect(resolveWseOptions(withAuthMode({}))).toEqual(resolveWseOptions({ auth: { anonymous: true } }));
    });

    it('exposes the defaults it applies, frozen', () => {
      expect(WSE_DEFAULTS.path).toBe('/wse');
      expect(WSE_DEFAULTS.cookieName).toBe('access_token');
      expect(Object.isFrozen(WSE_DEFAULTS)).toBe(true);
    });
  });

  it('returns a frozen result, auth included', () => {
    const resolved = resolveWseOptions({ auth: { jwtSecret: 's3cret' } });
    expect(Object.isFrozen(resolved)).toBe(true);
    expect(Object.isFrozen(resolved.auth)).toBe(true);
    expect(() => {
      (resolved as { maxConnections: number }).maxConnections = 1;
    }).toThrow(TypeError);
    expect(resolved.maxConnections).toBe(10_000);
  });

  it('keeps every valid option it is given', () => {
    const authorizeSubscription = (): boolean => true;
    expect(
      resolveWseOptions({
        path: '/ws/v1',
        maxConnections: 5,
        maxMessageBytes: 2048,
        pingIntervalMs: 1000,
        idleTimeoutMs: 3000,
        auth: { jwtSecret: 'k', issuer: 'iss', audience: 'aud', cookieName: 'jwt' },
        apiKey: 'api',
        inboundQueueSize: 7,
        inboundConcurrency: 2,
        maxBufferedBytes: 1024,
        authorizeSubscription,
      }),
    ).toMatchObject({
      path: '/ws/v1',
      maxConnections: 5,
      maxMessageBytes: 2048,
      pingIntervalMs: 1000,
      idleTimeoutMs: 3000,
      auth: { jwtSecret: 'k', issuer: 'iss', audience: 'aud', cookieName: 'jwt' },
      apiKey: 'api',
      inboundQueueSize: 7,
      inboundConcurrency: 2,
      maxBufferedBytes: 1024,
      authorizeSubscription,
    });
  });

  describe('with one bad option', () => {
    const positiveInt = 'must be a positive integer';
    const urlPath = 'must be a URL path starting with "/"';
    const nonEmpty = 'must be a non-empty string when set';
    const cookie = "must be a cookie name (letters, digits, and !#$%&'*+.^_`|~-)";
    const rows: ReadonlyArray<readonly [input: Record<string, unknown>, line: string]> = [
      [{ path: 'wse' }, `path: ${urlPath} (got "wse")`],
      [{ path: '' }, `path: ${urlPath} (got "")`],
      [{ path: '/w se' }, `path: ${urlPath} (got "/w se")`],
      [{ path: 42 }, `path: ${urlPath} (got 42)`],
      [{ maxConnections: 0 }, `maxConnections: ${positiveInt} (got 0)`],
      [{ maxConnections: -1 }, `maxConnections: ${positiveInt} (got -1)`],
      [{ maxConnections: 1.5 }, `maxConnections: ${positiveInt} (got 1.5)`],
      [{ maxConnections: '100' }, `maxConnections: ${positiveInt} (got "100")`],
      [{ maxConnections: Number.NaN }, `maxConnections: ${positiveInt} (got null)`],
      [{ maxConnections: Number.POSITIVE_INFINITY }, `maxConnections: ${positiveInt} (got null)`],
      [{ maxMessageBytes: 0 }, `maxMessageBytes: ${positiveInt} (got 0)`],
      [{ pingIntervalMs: -25 }, `pingIntervalMs: ${positiveInt} (got -25)`],
      [{ idleTimeoutMs: 0.5 }, `idleTimeoutMs: ${positiveInt} (got 0.5)`],
      [{ inboundQueueSize: 0 }, `inboundQueueSize: ${positiveInt} (got 0)`],
      [{ inboundConcurrency: 0 }, `inboundConcurrency: ${positiveInt} (got 0)`],
      [{ maxBufferedBytes: -1 }, `maxBufferedBytes: ${positiveInt} (got -1)`],
      [{ auth: { issuer: '' } }, `auth.issuer: ${nonEmpty} (got "")`],
      [{ auth: { issuer: 7 } }, `auth.issuer: ${nonEmpty} (got 7)`],
      [{ auth: { audience: '' } }, `auth.audience: ${nonEmpty} (got "")`],
      [{ auth: { cookieName: 'access token' } }, `auth.cookieName: ${cookie} (got "access token")`],
      [{ auth: { cookieName: '' } }, `auth.cookieName: ${cookie} (got "")`],
      [{ auth: { cookieName: 'a;b' } }, `auth.cookieName: ${cookie} (got "a;b")`],
      [{ authorizeSubscription: 'yes' }, `authorizeSubscription: must be a function when set (got "yes")`],
      [{ authorizeSubscription: true }, `authorizeSubscription: must be a function when set (got true)`],
      [{ recovery: { size: 0 } }, `recovery.size: ${positiveInt} (got 0)`],
      [{ recovery: { ttlMs: -1 } }, `recovery.ttlMs: ${positiveInt} (got -1)`],
      [{ recovery: { maxReplay: 2.5 } }, `recovery.maxReplay: ${positiveInt} (got 2.5)`],
      [{ recovery: { maxMemoryBytes: '64mb' } }, `recovery.maxMemoryBytes: ${positiveInt} (got "64mb")`],
      [{ recovery: 'chat:*' }, `recovery: must be an object (got "<string>")`],
      [
        { recovery: { topics: 'chat:*' } },
        `recovery.topics: must be an array of topics or globs such as "chat:*" (got "chat:*")`,
      ],
      [
        { recovery: { topics: ['ok', ''] } },
        `recovery.topics: each entry must be a non-empty topic or glob of at most 256 bytes without control characters (got "")`,
      ],
      [
        { recovery: { topics: [7] } },
        `recovery.topics: each entry must be a non-empty topic or glob of at most 256 bytes without control characters (got 7)`,
      ],
    ];

    it.each(rows)('refuses %j, naming the option and the rule', (input, line) => {
      const error = configErrorOf(input);
      expect(error.name).toBe('WseConfigError');
      expect(error.message).toBe(`Invalid WseModule options:\n  - ${line}`);
      expect(error.problems).toHaveLength(1);
    });

    it('carries the path, rule and value of the problem for callers', () => {
      expect(configErrorOf({ maxConnections: -1 }).problems).toEqual([
        { path: 'maxConnections', rule: 'must be a positive integer', value: -1 },
      ]);
    });

    it('refuses options that are not an object', () => {
      expect(configErrorOf(null).message).toBe(
        'Invalid WseModule options:\n  - (options): must be an object (got null)',
      );
      expect(configErrorOf('fast').message).toBe(
        'Invalid WseModule options:\n  - (options): must be an object (got "fast")',
      );
    });

    it('refuses auth that is not an object, without echoing it', () => {
      // `auth: '<the secret>'` must not silently start the server in anonymous mode.
      const error = configErrorOf({ auth: 'hunter2-jwt-secret' });
      expect(error.problems.map((p) => p.path)).toEqual(['auth', 'auth.jwtSecret']);
      expect(error.message).toContain('auth:');
      expect(error.message).not.toContain('hunter2');
    });
  });

  it('reports several bad options together, in one error', () => {
    const error = configErrorOf({
      path: 'wse',
      maxConnections: 0,
      pingIntervalMs: 1.5,
      auth: { cookieName: 'bad name' },
    });
    expect(error.message).toBe(
      [
        'Invalid WseModule options:',
        '  - path: must be a URL path starting with "/" (got "wse")',
        '  - maxConnections: must be a positive integer (got 0)',
        '  - pingIntervalMs: must be a positive integer (got 1.5)',
        '  - auth.cookieName: must be a cookie name (letters, digits, and !#$%&\'*+.^_`|~-) (got "bad name")',
      ].join('\n'),
    );
    expect(error.problems.map((p) => p.path)).toEqual(['path', 'maxConnections', 'pingIntervalMs', 'auth.cookieName']);
  });

  describe('secrets of the wrong type', () => {
    it.each([
      ['auth.jwtSecret', { auth: { jwtSecret: 987_654_321 } }, '987654321', '<number>'],
      ['auth.jwtSecret', { auth: { jwtSecret: { key: 'hunter2-jwt' } } }, 'hunter2', '<object>'],
      ['auth.jwtSecret', { auth: { jwtSecret: ['hunter2-jwt'] } }, 'hunter2', '<object>'],
      ['apiKey', { apiKey: 123_456_789 }, '123456789', '<number>'],
      ['apiKey', { apiKey: { key: 'hunter2-api' } }, 'hunter2', '<object>'],
    ] as const)('never echoes %s, only its type (%j)', (path, input, secret, shown) => {
      const error = configErrorOf(input);
      expect(error.message).toBe(
        `Invalid WseModule options:\n  - ${path}: must be a non-empty string when set (got "${shown}")`,
      );
      expect(error.message).not.toContain(secret);
      expect(JSON.stringify(error.problems)).not.toContain(secret);
    });

    it('never echoes a redis.url that is not a Redis URL, since it may hold a password', () => {
      const error = configErrorOf({ redis: { url: 'http://admin:hunter2@cache.example:6379' } });
      expect(error.message).toBe(
        'Invalid WseModule options:\n  - redis.url: must be a redis:// or rediss:// URL (got "<hidden>")',
      );
      expect(JSON.stringify(error.problems)).not.toContain('hunter2');
    });

    it('names an empty secret without echoing anything', () => {
      expect(configErrorOf({ apiKey: '' }).message).toBe(
        'Invalid WseModule options:\n  - apiKey: must be a non-empty string when set (got "<string>")',
      );
    });

    it('keeps secrets out of the message when another option is the bad one', () => {
      const error = configErrorOf({ apiKey: 'hunter2-api', auth: { jwtSecret: 'hunter2-jwt' }, maxConnections: 0 });
      expect(error.problems.map((p) => p.path)).toEqual(['maxConnections']);
      expect(error.message).not.toContain('hunter2');
    });
  });

  describe('auth (issue 16)', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

    it('defaults to HS256 with a secret, exp required, no age limit, no tolerance', () => {
      expect(resolveWseOptions({ auth: { jwtSecret: 's' } }).auth).toEqual({
        jwtSecret: 's',
        anonymous: false,
        publicKey: undefined,
        jwksUrl: undefined,
        algorithms: ['HS256'],
        issuer: undefined,
        audience: undefined,
        cookieName: 'access_token',
        requireExp: true,
        maxTokenAgeSec: undefined,
        clockToleranceSec: 0,
        jwksCacheMaxAgeMs: 600_000,
        jwksCooldownMs: 30_000,
        jwksTimeoutMs: 5000,
      });
    });

    it('defaults to RS256 with a public key or a JWKS, and accepts no algorithm in anonymous mode', () => {
      expect(resolveWseOptions({ auth: { publicKey: pem, algorithms: ['ES256'] } }).auth.algorithms).toEqual(['ES256']);
      expect(resolveWseOptions({ auth: { jwksUrl: 'https://id.example/jwks' } }).auth.algorithms).toEqual(['RS256']);
      expect(resolveWseOptions({ auth: { anonymous: true } }).auth.algorithms).toEqual([]);
    });

    it.each([
      [
        { jwtSecret: 's', algorithms: ['RS256'] },
        'auth.algorithms',
        'RS256 needs auth.publicKey or auth.jwksUrl, not auth.jwtSecret',
      ],
      [{ publicKey: pem, algorithms: ['HS256'] }, 'auth.algorithms', 'HS256 needs auth.jwtSecret, not a public key'],
      [
        { jwtSecret: 's', algorithms: ['none'] },
        'auth.algorithms',
        'must list only HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512',
      ],
      [
        { jwtSecret: 's', algorithms: [] },
        'auth.algorithms',
        'must be a non-empty array of algorithm names such as "HS256"',
      ],
      [{ jwtSecret: 's', jwksUrl: 'https://id.example/jwks' }, 'auth', 'set one of jwtSecret, publicKey and jwksUrl'],
      [{ publicKey: 'not a key' }, 'auth.publicKey', 'must be a PEM public key ("-----BEGIN PUBLIC KEY-----...")'],
      [{ jwksUrl: 'file:///etc/keys' }, 'auth.jwksUrl', 'must be an https:// or http:// URL'],
      [{ jwtSecret: 's', requireExp: 'yes' }, 'auth.requireExp', 'must be true or false'],
      [{ jwtSecret: 's', maxTokenAgeSec: 0 }, 'auth.maxTokenAgeSec', 'must be a positive integer'],
      [{ jwtSecret: 's', clockToleranceSec: -1 }, 'auth.clockToleranceSec', 'must be a whole number >= 0'],
    ])('refuses %j at %s: %s', (auth, path, rule) => {
      expect(configErrorOf({ auth }).problems.map((p) => [p.path, p.rule])).toEqual([[path, rule]]);
    });
  });

  describe('subscriptions and connectGuard (issue 16)', () => {
    it('resolves the rules, with empty lists by default', () => {
      expect(resolveWseOptions(withAuthMode({ subscriptions: { allow: ['chat:*'] } })).subscriptions).toEqual({
        allow: ['chat:*'],
        deny: [],
        claim: undefined,
      });
      expect(resolveWseOptions(withAuthMode({})).subscriptions).toBeUndefined();
    });

    it.each([
      [
        { subscriptions: { allow: 'chat:*' } },
        'subscriptions.allow',
        'must be an array of topic rules such as "chat:*"',
      ],
      [{ subscriptions: { allow: ['ok', ''] } }, 'subscriptions.allow[1]', 'must be a non-empty string'],
      [{ subscriptions: { deny: ['a\u0007'] } }, 'subscriptions.deny[0]', 'must not contain control characters'],
      [{ subscriptions: { claim: '' } }, 'subscriptions.claim', 'must be a non-empty string when set'],
      [
        { connectGuard: { check: () => true } },
        'connectGuard',
        'must be a class or an object with a canConnect(request, claims) method',
      ],
      [{ connectGuardTimeoutMs: 0 }, 'connectGuardTimeoutMs', 'must be a positive integer'],
    ])('refuses %j at %s: %s', (input, path, rule) => {
      expect(configErrorOf(input).problems.map((p) => [p.path, p.rule])).toEqual([[path, rule]]);
    });

    it('accepts a connect guard class or object', () => {
      class Guard {
        canConnect(): boolean {
          return true;
        }
      }
      expect(resolveWseOptions(withAuthMode({ connectGuard: Guard })).connectGuard).toBe(Guard);
      const guard = { canConnect: () => false };
      expect(resolveWseOptions(withAuthMode({ connectGuard: guard })).connectGuard).toBe(guard);
    });
  });

  describe('authentication mode (fail closed)', () => {
    it('refuses to start with neither a secret nor anonymous: true, saying how to choose', () => {
      expect(rawConfigErrorOf({}).message).toBe(
        'Invalid WseModule options:\n  - auth.jwtSecret: is required: set auth.jwtSecret (or auth.publicKey or auth.jwksUrl) to verify tokens, or auth.anonymous: true to accept every connection without one (got undefined)',
      );
    });

    it('treats an unset secret from the environment like no secret at all', () => {
      expect(
        rawConfigErrorOf({ auth: { jwtSecret: undefined, anonymous: false } }).problems.map((p) => p.path),
      ).toEqual(['auth.jwtSecret']);
    });

    it('refuses a secret together with anonymous: true', () => {
      expect(rawConfigErrorOf({ auth: { jwtSecret: 's', anonymous: true } }).problems).toEqual([
        { path: 'auth.anonymous', rule: 'cannot be true together with auth.jwtSecret: choose one', value: true },
      ]);
    });

    it('refuses an anonymous flag that is not a boolean', () => {
      expect(rawConfigErrorOf({ auth: { anonymous: 'yes' } }).problems.map((p) => p.path)).toEqual(['auth.anonymous']);
    });

    it('resolves anonymous: true and a secret to their modes', () => {
      expect(resolveWseOptions({ auth: { anonymous: true } }).auth.anonymous).toBe(true);
      expect(resolveWseOptions({ auth: { jwtSecret: 's' } }).auth.anonymous).toBe(false);
    });
  });

  describe('recovery', () => {
    it('defaults to no history topics, 128 messages for 5 minutes, 500 per replay, 64 MiB in memory', () => {
      expect(resolveWseOptions(withAuthMode({})).recovery).toEqual({
        topics: [],
        size: 128,
        ttlMs: 300_000,
        maxReplay: 500,
        maxMemoryBytes: 64 * 1_048_576,
      });
    });

    it('keeps exact topics and globs once each, frozen', () => {
      const recovery = resolveWseOptions(
        withAuthMode({ recovery: { topics: ['orders', 'chat:*', 'orders', 'room:[a-c]\\*'], size: 16 } }),
      ).recovery;
      expect(recovery.topics).toEqual(['orders', 'chat:*', 'room:[a-c]\\*']);
      expect(recovery.size).toBe(16);
      expect(Object.isFrozen(recovery)).toBe(true);
      expect(Object.isFrozen(recovery.topics)).toBe(true);
    });
  });
});

describe('the WSE client compatibility options', () => {
  it('default to every WSE format on, unknown events answered, shutdown with 1012, no id/ts', () => {
    expect(resolveWseOptions(withAuthMode({}))).toMatchObject({
      compatibility: { msgpack: true, compression: true, urlTopics: true },
      unknownEvents: 'error',
      shutdownCloseCode: 1012,
      systemFrames: { id: false, ts: false },
    });
    expect(Object.isFrozen(resolveWseOptions(withAuthMode({})).compatibility)).toBe(true);
    expect(Object.isFrozen(resolveWseOptions(withAuthMode({})).systemFrames)).toBe(true);
  });

  it('keeps what it is given', () => {
    expect(
      resolveWseOptions(
        withAuthMode({
          compatibility: { msgpack: false, urlTopics: false },
          unknownEvents: 'ignore',
          shutdownCloseCode: 4300,
          systemFrames: { id: true },
        }),
      ),
    ).toMatchObject({
      compatibility: { msgpack: false, compression: true, urlTopics: false },
      unknownEvents: 'ignore',
      shutdownCloseCode: 4300,
      systemFrames: { id: true, ts: false },
    });
  });

  it.each([1000, 1001, 1011, 1012, 1013, 3000, 4300, 4999])('accepts %i as a shutdown close code', (code) => {
    expect(resolveWseOptions(withAuthMode({ shutdownCloseCode: code })).shutdownCloseCode).toBe(code);
  });

  it.each([
    [
      'shutdownCloseCode',
      { shutdownCloseCode: 1006 },
      'must be a close code a server may send: 1000, 1001, 1008, 1011-1014 or 3000-4999',
      1006,
    ],
    [
      'shutdownCloseCode',
      { shutdownCloseCode: 5000 },
      'must be a close code a server may send: 1000, 1001, 1008, 1011-1014 or 3000-4999',
      5000,
    ],
    ['unknownEvents', { unknownEvents: 'drop' }, 'must be one of "error", "ignore"', 'drop'],
    ['compatibility.msgpack', { compatibility: { msgpack: 'yes' } }, 'must be true or false', 'yes'],
    ['systemFrames.ts', { systemFrames: { ts: 1 } }, 'must be true or false', 1],
    ['compatibility', { compatibility: true }, 'must be an object', '<boolean>'],
  ])('refuses a bad %s', (path, input, rule, value) => {
    expect(configErrorOf(input).problems).toEqual([{ path, rule, value }]);
  });
});

describe('redis routing and cluster (issue 15)', () => {
  it('routes by pattern unless told otherwise, and by interest when asked', () => {
    expect(resolveWseOptions(withAuthMode({})).redis).toMatchObject({ routing: 'pattern', cluster: undefined });
    expect(resolveWseOptions(withAuthMode({ redis: { routing: 'interest' } })).redis.routing).toBe('interest');
  });

  it('refuses a routing that is neither', () => {
    expect(configErrorOf({ redis: { routing: 'sharded' } }).problems).toEqual([
      { path: 'redis.routing', rule: 'must be one of "pattern", "interest"', value: 'sharded' },
    ]);
  });

  it('reads cluster nodes as host:port or redis:// URLs, keeps the first credentials, and routes by interest', () => {
    const redis = resolveWseOptions(
      withAuthMode({
        redis: { cluster: { nodes: ['10.0.0.1:7000', 'redis://app:s3cret@10.0.0.2:7001', '[::1]:7002'] } },
      }),
    ).redis;
    expect(redis.routing).toBe('interest');
    expect(redis.cluster).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      username: 'app',
      password: 's3cret',
    });
  });

  it.each([
    [{ cluster: { nodes: [] } }, 'redis.cluster.nodes', 'must be a non-empty list of host:port'],
    [{ cluster: { nodes: ['10.0.0.1'] } }, 'redis.cluster.nodes', 'must be a list of host:port or redis:// URLs'],
    [{ cluster: { nodes: ['10.0.0.1:99999'] } }, 'redis.cluster.nodes', 'must be a list of host:port or redis:// URLs'],
    [
      { cluster: { nodes: ['http://10.0.0.1:7000'] } },
      'redis.cluster.nodes',
      'must be a list of host:port or redis:// URLs',
    ],
    [{ cluster: { nodes: ['a:1'] }, url: 'redis://b:2' }, 'redis.cluster', 'cannot be used together with redis.url'],
    [
      { cluster: { nodes: ['a:1'] }, routing: 'pattern' },
      'redis.routing',
      'must be "interest" (or unset) with redis.cluster',
    ],
  ])('refuses %j (%s), never echoing the nodes', (redis, path, rule) => {
    const problem = configErrorOf({ redis }).problems.find((p) => p.path === path);
    expect(problem?.rule).toBe(rule);
    if (path !== 'redis.routing') expect(problem?.value).toBe('<hidden>');
  });

  it('takes history topics in cluster mode', () => {
    const resolved = resolveWseOptions(
      withAuthMode({ redis: { cluster: { nodes: ['a:1'] } }, recovery: { topics: ['chat:*'] } }),
    );
    expect(resolved.recovery.topics).toEqual(['chat:*']);
    expect(resolved.redis.cluster?.nodes).toEqual([{ host: 'a', port: 1 }]);
  });
});
