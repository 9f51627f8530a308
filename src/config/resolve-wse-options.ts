import { createPublicKey } from 'node:crypto';
import { MAX_TOPIC_BYTES, REDIS_PROBE_CHANNEL_PREFIX } from '../wse.constants.js';
import { WseConfigError, type WseConfigProblem } from '../errors/wse-config.error.js';
import type {
  ResolvedAuthOptions,
  ResolvedRecoveryOptions,
  ResolvedRedisOptions,
  ResolvedSubscriptionRules,
  ResolvedWseOptions,
  WseAuthOptions,
  WseCompatibilityOptions,
  WseConnectGuard,
  WseJwtAlgorithm,
  WseModuleOptions,
  WseRateLimitOptions,
  WseRecoveryOptions,
  WseRedisOptions,
  WseRedisRouting,
  WseRedisClusterOptions,
  ResolvedRedisCluster,
  WseSubscriptionRules,
  WseSystemFrameOptions,
} from './wse-module-options.interface.js';
import type { Type } from '@nestjs/common';

const HMAC_ALGORITHMS: readonly WseJwtAlgorithm[] = ['HS256', 'HS384', 'HS512'];
const PUBLIC_KEY_ALGORITHMS: readonly WseJwtAlgorithm[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
];

/** Every default in one place; nothing else in the library applies its own. */
export const WSE_DEFAULTS = Object.freeze({
  path: '/wse',
  maxConnections: 10_000,
  maxMessageBytes: 1_048_576,
  pingIntervalMs: 25_000,
  idleTimeoutMs: 60_000,
  cookieName: 'access_token',
  requireExp: true,
  clockToleranceSec: 0,
  jwksCacheMaxAgeMs: 600_000,
  jwksCooldownMs: 30_000,
  jwksTimeoutMs: 5000,
  connectGuardTimeoutMs: 5000,
  inboundQueueSize: 10_000,
  inboundConcurrency: 64,
  maxBufferedBytes: 4 * 1_048_576,
  maxTopicsPerConnection: 1000,
  maxTopicsPerSubscription: 100,
  slowConsumerTimeoutMs: 10_000,
  compatibility: Object.freeze({ msgpack: true, compression: true, urlTopics: true }),
  unknownEvents: 'error' as const,
  shutdownCloseCode: 1012,
  systemFrames: Object.freeze({ id: false, ts: false }),
  rateLimit: Object.freeze({
    capacity: 100_000,
    refillPerSecond: 100_000,
    warnBelowFraction: 0.2,
    closeAfterRejected: 1000,
  }),
  redis: Object.freeze({
    routing: 'pattern' as const,
    prefix: 'wse:',
    publishAttempts: 3,
    publishRetryDelayMs: 100,
    dlqCapacity: 1000,
    // Capped at 3 s, not the seed's 60 s: a Redis back after an outage of any length is then
    // tried within 3.6 s (issue 10: back after 15 s, used within 5 s). An attempt every 3 s costs
    // Redis nothing while it is down.
    reconnect: Object.freeze({ initialDelayMs: 1000, multiplier: 1.5, maxDelayMs: 3000, jitter: 0.2 }),
    breaker: Object.freeze({ failureThreshold: 10, resetTimeoutMs: 60_000, halfOpenMaxCalls: 3 }),
    probeIntervalMs: 1000,
    probeTimeoutMs: 1000,
    publishTimeoutMs: 1000,
    maxInFlightMessages: 100_000,
    maxInFlightBytes: 64 * 1024 * 1024,
    shutdownTimeoutMs: 2000,
  }),
  recovery: Object.freeze({
    size: 128,
    ttlMs: 300_000,
    maxReplay: 500,
    maxMemoryBytes: 64 * 1_048_576,
  }),
});

/**
 * Merges the defaults into `input` and validates the result. Collects every problem and throws
 * one `WseConfigError` naming each option, so a bad option fails start-up, never a request.
 */
export function resolveWseOptions(input: WseModuleOptions = {}): ResolvedWseOptions {
  const problems: WseConfigProblem[] = [];
  const check = new OptionChecker(problems);

  if (typeof input !== 'object' || input === null) {
    throw new WseConfigError([{ path: '(options)', rule: 'must be an object', value: input }]);
  }
  const auth = check.section('auth', input.auth);
  const resolved: ResolvedWseOptions = {
    path: check.path('path', input.path ?? WSE_DEFAULTS.path),
    maxConnections: check.positiveInt('maxConnections', input.maxConnections ?? WSE_DEFAULTS.maxConnections),
    maxMessageBytes: check.positiveInt('maxMessageBytes', input.maxMessageBytes ?? WSE_DEFAULTS.maxMessageBytes),
    pingIntervalMs: check.positiveInt('pingIntervalMs', input.pingIntervalMs ?? WSE_DEFAULTS.pingIntervalMs),
    idleTimeoutMs: check.positiveInt('idleTimeoutMs', input.idleTimeoutMs ?? WSE_DEFAULTS.idleTimeoutMs),
    auth: resolveAuthOptions(auth, check),
    apiKey: check.optionalText('apiKey', input.apiKey, { secret: true }),
    inboundQueueSize: check.positiveInt('inboundQueueSize', input.inboundQueueSize ?? WSE_DEFAULTS.inboundQueueSize),
    inboundConcurrency: check.positiveInt(
      'inboundConcurrency',
      input.inboundConcurrency ?? WSE_DEFAULTS.inboundConcurrency,
    ),
    maxBufferedBytes: check.positiveInt('maxBufferedBytes', input.maxBufferedBytes ?? WSE_DEFAULTS.maxBufferedBytes),
    authorizeSubscription: check.optionalFunction('authorizeSubscription', input.authorizeSubscription),
    subscriptions:
      input.subscriptions === undefined
        ? undefined
        : resolveSubscriptionRules(check.section('subscriptions', input.subscriptions), check),
    connectGuard: check.connectGuard('connectGuard', input.connectGuard),
    connectGuardTimeoutMs: check.positiveInt(
      'connectGuardTimeoutMs',
      input.connectGuardTimeoutMs ?? WSE_DEFAULTS.connectGuardTimeoutMs,
    ),
    redis: resolveRedisOptions(check.section('redis', input.redis), check),
    maxTopicsPerConnection: check.positiveInt(
      'maxTopicsPerConnection',
      input.maxTopicsPerConnection ?? WSE_DEFAULTS.maxTopicsPerConnection,
    ),
    maxTopicsPerSubscription: check.positiveInt(
      'maxTopicsPerSubscription',
      input.maxTopicsPerSubscription ?? WSE_DEFAULTS.maxTopicsPerSubscription,
    ),
    slowConsumerTimeoutMs: check.nonNegativeInt(
      'slowConsumerTimeoutMs',
      input.slowConsumerTimeoutMs ?? WSE_DEFAULTS.slowConsumerTimeoutMs,
    ),
    rateLimit:
      input.rateLimit === false ? undefined : resolveRateLimit(check.section('rateLimit', input.rateLimit), check),
    allowedOrigins: check.origins('allowedOrigins', input.allowedOrigins),
    recovery: resolveRecoveryOptions(check.section('recovery', input.recovery), check),
    compatibility: resolveCompatibility(check.section('compatibility', input.compatibility), check),
    unknownEvents: check.oneOf('unknownEvents', input.unknownEvents ?? WSE_DEFAULTS.unknownEvents, [
      'error',
      'ignore',
    ] as const),
    shutdownCloseCode: check.closeCode('shutdownCloseCode', input.shutdownCloseCode ?? WSE_DEFAULTS.shutdownCloseCode),
    systemFrames: resolveSystemFrames(check.section('systemFrames', input.systemFrames), check),
  };
  if (problems.length > 0) throw new WseConfigError(problems);
  return Object.freeze(resolved);
}

function resolveAuthOptions(auth: Partial<WseAuthOptions>, check: OptionChecker): ResolvedAuthOptions {
  const d = WSE_DEFAULTS;
  const jwtSecret = check.optionalText('auth.jwtSecret', auth.jwtSecret, { secret: true });
  const publicKey = check.publicKey('auth.publicKey', auth.publicKey);
  const jwksUrl = check.httpUrl('auth.jwksUrl', auth.jwksUrl);
  const sources = [
    auth.jwtSecret === undefined ? undefined : 'jwtSecret',
    auth.publicKey === undefined ? undefined : 'publicKey',
    auth.jwksUrl === undefined ? undefined : 'jwksUrl',
  ].filter((source) => source !== undefined);
  if (sources.length > 1) {
    check.fail('auth', 'set one of jwtSecret, publicKey and jwksUrl', '<several key sources>');
  }
  const anonymous = check.authMode(sources[0], auth.anonymous);
  const hmac = jwtSecret !== undefined;
  const algorithms =
    anonymous || sources.length === 0
      ? []
      : check.algorithms('auth.algorithms', auth.algorithms ?? (hmac ? ['HS256'] : ['RS256']), hmac);
  return Object.freeze({
    jwtSecret,
    anonymous,
    publicKey,
    jwksUrl,
    algorithms,
    issuer: check.optionalText('auth.issuer', auth.issuer),
    audience: check.optionalText('auth.audience', auth.audience),
    cookieName: check.cookieName('auth.cookieName', auth.cookieName ?? d.cookieName),
    requireExp: check.boolean('auth.requireExp', auth.requireExp ?? d.requireExp),
    maxTokenAgeSec:
      auth.maxTokenAgeSec === undefined ? undefined : check.positiveInt('auth.maxTokenAgeSec', auth.maxTokenAgeSec),
    clockToleranceSec: check.nonNegativeInt('auth.clockToleranceSec', auth.clockToleranceSec ?? d.clockToleranceSec),
    jwksCacheMaxAgeMs: check.positiveInt('auth.jwksCacheMaxAgeMs', auth.jwksCacheMaxAgeMs ?? d.jwksCacheMaxAgeMs),
    jwksCooldownMs: check.nonNegativeInt('auth.jwksCooldownMs', auth.jwksCooldownMs ?? d.jwksCooldownMs),
    jwksTimeoutMs: check.positiveInt('auth.jwksTimeoutMs', auth.jwksTimeoutMs ?? d.jwksTimeoutMs),
  });
}

/** The rules' shape; their meaning is compiled (and checked) by compileTopicRules at start. */
function resolveSubscriptionRules(
  rules: Partial<WseSubscriptionRules>,
  check: OptionChecker,
): ResolvedSubscriptionRules {
  return Object.freeze({
    allow: check.ruleList('subscriptions.allow', rules.allow ?? []),
    deny: check.ruleList('subscriptions.deny', rules.deny ?? []),
    claim: check.optionalText('subscriptions.claim', rules.claim),
  });
}

/** `https://host[:port]` exactly as a browser sends it in the Origin header. */
function isOrigin(value: unknown): boolean {
  try {
    return typeof value === 'string' && new URL(value).origin === value;
  } catch {
    return false;
  }
}

function resolveCompatibility(
  compatibility: Partial<WseCompatibilityOptions>,
  check: OptionChecker,
): Readonly<WseCompatibilityOptions> {
  const d = WSE_DEFAULTS.compatibility;
  return Object.freeze({
    msgpack: check.boolean('compatibility.msgpack', compatibility.msgpack ?? d.msgpack),
    compression: check.boolean('compatibility.compression', compatibility.compression ?? d.compression),
    urlTopics: check.boolean('compatibility.urlTopics', compatibility.urlTopics ?? d.urlTopics),
  });
}

function resolveSystemFrames(
  systemFrames: Partial<WseSystemFrameOptions>,
  check: OptionChecker,
): Readonly<WseSystemFrameOptions> {
  const d = WSE_DEFAULTS.systemFrames;
  return Object.freeze({
    id: check.boolean('systemFrames.id', systemFrames.id ?? d.id),
    ts: check.boolean('systemFrames.ts', systemFrames.ts ?? d.ts),
  });
}

function resolveRateLimit(
  rateLimit: Partial<WseRateLimitOptions>,
  check: OptionChecker,
): Readonly<WseRateLimitOptions> {
  const d = WSE_DEFAULTS.rateLimit;
  return Object.freeze({
    capacity: check.positiveInt('rateLimit.capacity', rateLimit.capacity ?? d.capacity),
    refillPerSecond: check.positiveInt('rateLimit.refillPerSecond', rateLimit.refillPerSecond ?? d.refillPerSecond),
    warnBelowFraction: check.fraction(
      'rateLimit.warnBelowFraction',
      rateLimit.warnBelowFraction ?? d.warnBelowFraction,
    ),
    closeAfterRejected: check.positiveInt(
      'rateLimit.closeAfterRejected',
      rateLimit.closeAfterRejected ?? d.closeAfterRejected,
    ),
  });
}

const ROUTINGS: readonly WseRedisRouting[] = ['pattern', 'interest'];

/** `host:port` or `redis://[user:password@]host:port`; undefined when it is neither. */
function parseClusterNode(
  node: unknown,
): { host: string; port: number; username?: string; password?: string } | undefined {
  if (typeof node !== 'string') return undefined;
  const text = node.trim();
  let url: URL;
  try {
    url = new URL(text.includes('://') ? text : `redis://${text}`);
  } catch {
    return undefined;
  }
  const port = Number(url.port);
  if (url.protocol !== 'redis:' || url.hostname === '' || !Number.isInteger(port) || port < 1 || port > 65535)
    return undefined;
  if (url.pathname !== '' && url.pathname !== '/') return undefined;
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
  };
}

function resolveRedisOptions(redis: WseRedisOptions, check: OptionChecker): ResolvedRedisOptions {
  const d = WSE_DEFAULTS.redis;
  const reconnect = check.section('redis.reconnect', redis.reconnect);
  const breaker = check.section('redis.breaker', redis.breaker);
  return Object.freeze({
    url: check.redisUrl('redis.url', redis.url),
    // A cluster always routes by interest: its shards have no pattern subscriptions.
    routing:
      redis.cluster === undefined || redis.routing === 'interest'
        ? check.oneOf('redis.routing', redis.routing ?? d.routing, ROUTINGS)
        : check.clusterRouting('redis.routing', redis.routing),
    cluster: redis.cluster === undefined ? undefined : check.redisCluster('redis.cluster', redis.cluster, redis.url),
    prefix: check.redisPrefix('redis.prefix', redis.prefix ?? d.prefix),
    publishAttempts: check.positiveInt('redis.publishAttempts', redis.publishAttempts ?? d.publishAttempts),
    publishRetryDelayMs: check.nonNegativeInt(
      'redis.publishRetryDelayMs',
      redis.publishRetryDelayMs ?? d.publishRetryDelayMs,
    ),
    dlqCapacity: check.positiveInt('redis.dlqCapacity', redis.dlqCapacity ?? d.dlqCapacity),
    reconnect: Object.freeze({
      initialDelayMs: check.positiveInt(
        'redis.reconnect.initialDelayMs',
        reconnect.initialDelayMs ?? d.reconnect.initialDelayMs,
      ),
      multiplier: check.numberAtLeast('redis.reconnect.multiplier', reconnect.multiplier ?? d.reconnect.multiplier, 1),
      maxDelayMs: check.positiveInt('redis.reconnect.maxDelayMs', reconnect.maxDelayMs ?? d.reconnect.maxDelayMs),
      jitter: check.fraction('redis.reconnect.jitter', reconnect.jitter ?? d.reconnect.jitter),
    }),
    breaker: Object.freeze({
      failureThreshold: check.positiveInt(
        'redis.breaker.failureThreshold',
        breaker.failureThreshold ?? d.breaker.failureThreshold,
      ),
      resetTimeoutMs: check.positiveInt(
        'redis.breaker.resetTimeoutMs',
        breaker.resetTimeoutMs ?? d.breaker.resetTimeoutMs,
      ),
      halfOpenMaxCalls: check.positiveInt(
        'redis.breaker.halfOpenMaxCalls',
        breaker.halfOpenMaxCalls ?? d.breaker.halfOpenMaxCalls,
      ),
    }),
    probeIntervalMs: check.positiveInt('redis.probeIntervalMs', redis.probeIntervalMs ?? d.probeIntervalMs),
    probeTimeoutMs: check.positiveInt('redis.probeTimeoutMs', redis.probeTimeoutMs ?? d.probeTimeoutMs),
    publishTimeoutMs: check.positiveInt('redis.publishTimeoutMs', redis.publishTimeoutMs ?? d.publishTimeoutMs),
    maxInFlightMessages: check.positiveInt(
      'redis.maxInFlightMessages',
      redis.maxInFlightMessages ?? d.maxInFlightMessages,
    ),
    maxInFlightBytes: check.positiveInt('redis.maxInFlightBytes', redis.maxInFlightBytes ?? d.maxInFlightBytes),
    shutdownTimeoutMs: check.nonNegativeInt('redis.shutdownTimeoutMs', redis.shutdownTimeoutMs ?? d.shutdownTimeoutMs),
  });
}

function resolveRecoveryOptions(recovery: WseRecoveryOptions, check: OptionChecker): ResolvedRecoveryOptions {
  const d = WSE_DEFAULTS.recovery;
  return Object.freeze({
    topics: check.topics('recovery.topics', recovery.topics),
    size: check.positiveInt('recovery.size', recovery.size ?? d.size),
    ttlMs: check.positiveInt('recovery.ttlMs', recovery.ttlMs ?? d.ttlMs),
    maxReplay: check.positiveInt('recovery.maxReplay', recovery.maxReplay ?? d.maxReplay),
    maxMemoryBytes: check.positiveInt('recovery.maxMemoryBytes', recovery.maxMemoryBytes ?? d.maxMemoryBytes),
  });
}

/** Records a problem and hands back the value unchanged, so resolution reads as one table. */
class OptionChecker {
  constructor(private readonly problems: WseConfigProblem[]) {}

  /** A nested options object; anything else is reported (type only: it may hold secrets) and ignored. */
  section<T extends object>(path: string, value: T | undefined): Partial<T> {
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, 'must be an object', `<${Array.isArray(value) ? 'array' : typeof value}>`);
      return {};
    }
    return value;
  }

  positiveInt(path: string, value: number): number {
    if (!Number.isSafeInteger(value) || value <= 0) this.fail(path, 'must be a positive integer', value);
    return value;
  }

  nonNegativeInt(path: string, value: number): number {
    if (!Number.isSafeInteger(value) || value < 0) this.fail(path, 'must be a whole number >= 0', value);
    return value;
  }

  numberAtLeast(path: string, value: number, min: number): number {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min)
      this.fail(path, `must be a number >= ${min}`, value);
    return value;
  }

  boolean(path: string, value: boolean): boolean {
    if (typeof value !== 'boolean') this.fail(path, 'must be true or false', value);
    return value;
  }

  oneOf<T extends string>(path: string, value: T, allowed: readonly T[]): T {
    if (!allowed.includes(value)) this.fail(path, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`, value);
    return value;
  }

  /** A close code a server may send (RFC 6455 section 7.4): 1000, 1001, 1008, 1011-1014, or 3000-4999. */
  closeCode(path: string, value: number): number {
    const sendable = [1000, 1001, 1008, 1011, 1012, 1013, 1014];
    if (!Number.isSafeInteger(value) || !(sendable.includes(value) || (value >= 3000 && value <= 4999))) {
      this.fail(path, 'must be a close code a server may send: 1000, 1001, 1008, 1011-1014 or 3000-4999', value);
    }
    return value;
  }

  fraction(path: string, value: number): number {
    if (typeof value !== 'number' || !(value >= 0 && value < 1))
      this.fail(path, 'must be a number from 0 to below 1', value);
    return value;
  }

  /** Non-empty, and not covering the probe channels (they must stay outside `<prefix>*`). */
  redisPrefix(path: string, value: string): string {
    if (typeof value !== 'string' || value.length === 0) {
      this.fail(path, 'must be a non-empty string', value);
    } else if (REDIS_PROBE_CHANNEL_PREFIX.startsWith(value) || value.startsWith(REDIS_PROBE_CHANNEL_PREFIX)) {
      this.fail(path, `must not cover the delivery probe channels "${REDIS_PROBE_CHANNEL_PREFIX}…"`, value);
    }
    return value;
  }

  /** Exact origins as browsers send them: scheme, host and port, no path. */
  origins(path: string, value: string[] | undefined): readonly string[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) {
      this.fail(path, 'must be an array of origins such as "https://app.example.com"', value);
      return undefined;
    }
    for (const origin of value) {
      if (!isOrigin(origin))
        this.fail(
          path,
          'each origin must be scheme://host[:port] with no path, e.g. "https://app.example.com"',
          origin,
        );
    }
    return Object.freeze([...value]);
  }

  /**
   * Topics and globs chosen by the operator: strings a client could subscribe to (non-empty, at
   * most MAX_TOPIC_BYTES, no control characters). Every glob Redis accepts is accepted, with
   * Redis's meaning (the hub's compiler).
   */
  topics(path: string, value: string[] | undefined): readonly string[] {
    if (value === undefined) return Object.freeze([]);
    if (!Array.isArray(value)) {
      this.fail(path, 'must be an array of topics or globs such as "chat:*"', value);
      return Object.freeze([]);
    }
    for (const topic of value) {
      if (
        typeof topic !== 'string' ||
        topic.length === 0 ||
        Buffer.byteLength(topic) > MAX_TOPIC_BYTES ||
        // eslint-disable-next-line no-control-regex
        /[\u0000-\u001f\u007f-\u009f]/.test(topic)
      ) {
        this.fail(
          path,
          `each entry must be a non-empty topic or glob of at most ${MAX_TOPIC_BYTES} bytes without control characters`,
          topic,
        );
      }
    }
    return Object.freeze([...new Set(value)]);
  }

  /** The URL may carry a password, so it is never echoed. */
  /** With a cluster only `interest` (the default there) is possible. */
  clusterRouting(path: string, value: WseRedisRouting | undefined): WseRedisRouting {
    if (value !== undefined) this.fail(path, 'must be "interest" (or unset) with redis.cluster', value);
    return 'interest';
  }

  /** At least one node, each `host:port` or a redis:// URL; not together with `redis.url`. */
  redisCluster(path: string, value: WseRedisClusterOptions, url: string | undefined): ResolvedRedisCluster | undefined {
    if (url !== undefined) this.fail(path, 'cannot be used together with redis.url', '<hidden>');
    const nodes = (value as Partial<WseRedisClusterOptions> | null)?.nodes;
    if (!Array.isArray(nodes) || nodes.length === 0) {
      this.fail(`${path}.nodes`, 'must be a non-empty list of host:port', '<hidden>');
      return undefined;
    }
    const parsed: { host: string; port: number }[] = [];
    let username: string | undefined;
    let password: string | undefined;
    for (const node of nodes) {
      const address = parseClusterNode(node);
      if (address === undefined) {
        this.fail(`${path}.nodes`, 'must be a list of host:port or redis:// URLs', '<hidden>');
        return undefined;
      }
      parsed.push({ host: address.host, port: address.port });
      if (password === undefined && address.password !== undefined) {
        username = address.username;
        password = address.password;
      }
    }
    return Object.freeze({ nodes: Object.freeze(parsed), username, password });
  }

  redisUrl(path: string, value: string | undefined): string | undefined {
    if (value === undefined) return undefined;
    let protocol = '';
    try {
      protocol = new URL(value).protocol;
    } catch {
      // not a URL at all: reported below
    }
    if (protocol !== 'redis:' && protocol !== 'rediss:')
      this.fail(path, 'must be a redis:// or rediss:// URL', '<hidden>');
    return value;
  }

  path(path: string, value: string): string {
    if (typeof value !== 'string' || !/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(value)) {
      this.fail(path, 'must be a URL path starting with "/"', value);
    }
    return value;
  }

  /** A `secret` is never echoed back: the error shows its type only. */
  optionalText(path: string, value: string | undefined, { secret = false } = {}): string | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.length === 0) {
      this.fail(path, 'must be a non-empty string when set', secret ? `<${typeof value}>` : value);
    }
    return value;
  }

  /**
   * Fail closed: without a secret the endpoint is open to anyone, so that must be asked for in
   * so many words (`anonymous: true`), not be the result of an unset variable.
   */
  authMode(keySource: string | undefined, anonymous: unknown): boolean {
    if (anonymous !== undefined && typeof anonymous !== 'boolean') {
      this.fail('auth.anonymous', 'must be a boolean when set', anonymous);
      return false;
    }
    if (anonymous === true && keySource !== undefined) {
      this.fail('auth.anonymous', `cannot be true together with auth.${keySource}: choose one`, anonymous);
    } else if (anonymous !== true && keySource === undefined) {
      this.fail(
        'auth.jwtSecret',
        'is required: set auth.jwtSecret (or auth.publicKey or auth.jwksUrl) to verify tokens, or auth.anonymous: true to accept every connection without one',
        undefined,
      );
    }
    return anonymous === true;
  }

  cookieName(path: string, value: string): string {
    // RFC 6265 token characters: what a browser will actually send back as a cookie name.
    if (typeof value !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) {
      this.fail(path, "must be a cookie name (letters, digits, and !#$%&'*+.^_`|~-)", value);
    }
    return value;
  }

  optionalFunction<F>(path: string, value: F | undefined): F | undefined {
    if (value !== undefined && typeof value !== 'function') this.fail(path, 'must be a function when set', value);
    return value;
  }

  /** Known names, all of the key source's family: HMAC with a secret, the others with a public key. */
  algorithms(path: string, value: WseJwtAlgorithm[], hmac: boolean): readonly WseJwtAlgorithm[] {
    if (!Array.isArray(value) || value.length === 0) {
      this.fail(path, 'must be a non-empty array of algorithm names such as "HS256"', value);
      return [];
    }
    const family = hmac ? HMAC_ALGORITHMS : PUBLIC_KEY_ALGORITHMS;
    for (const name of value) {
      if (family.includes(name)) continue;
      const known = HMAC_ALGORITHMS.includes(name) || PUBLIC_KEY_ALGORITHMS.includes(name);
      this.fail(
        path,
        known
          ? hmac
            ? `${name} needs auth.publicKey or auth.jwksUrl, not auth.jwtSecret`
            : `${name} needs auth.jwtSecret, not a public key`
          : `must list only ${[...HMAC_ALGORITHMS, ...PUBLIC_KEY_ALGORITHMS].join(', ')}`,
        name,
      );
    }
    return Object.freeze([...new Set(value)]);
  }

  /** A PEM public key Node can load (the key itself is not secret, but long: not echoed). */
  publicKey(path: string, value: string | undefined): string | undefined {
    if (value === undefined) return undefined;
    try {
      if (typeof value !== 'string') throw new TypeError('not a string');
      createPublicKey(value);
    } catch {
      this.fail(path, 'must be a PEM public key ("-----BEGIN PUBLIC KEY-----...")', `<${typeof value}>`);
    }
    return value;
  }

  httpUrl(path: string, value: string | undefined): string | undefined {
    if (value === undefined) return undefined;
    let protocol = '';
    try {
      protocol = new URL(value).protocol;
    } catch {
      // not a URL at all: reported below
    }
    if (protocol !== 'https:' && protocol !== 'http:') this.fail(path, 'must be an https:// or http:// URL', value);
    return value;
  }

  /** Rules: non-empty strings without control characters, of topic size (a brace list may be longer). */
  ruleList(path: string, value: string[]): readonly string[] {
    if (!Array.isArray(value)) {
      this.fail(path, 'must be an array of topic rules such as "chat:*"', value);
      return [];
    }
    value.forEach((rule, i) => {
      if (typeof rule !== 'string' || rule.length === 0) {
        this.fail(`${path}[${i}]`, 'must be a non-empty string', rule);
      } else if (rule.length > 4 * MAX_TOPIC_BYTES) {
        this.fail(`${path}[${i}]`, `must be at most ${4 * MAX_TOPIC_BYTES} characters`, `${rule.slice(0, 32)}…`);
      } else if ([...rule].some((c) => c < ' ' || (c >= '\u007f' && c <= '\u009f'))) {
        this.fail(`${path}[${i}]`, 'must not contain control characters', rule);
      }
    });
    return Object.freeze([...value]);
  }

  /** A class with a canConnect method, or an object with one. */
  connectGuard(
    path: string,
    value: Type<WseConnectGuard> | WseConnectGuard | undefined,
  ): Type<WseConnectGuard> | WseConnectGuard | undefined {
    if (value === undefined) return undefined;
    const target: unknown = typeof value === 'function' ? (value as { prototype?: unknown }).prototype : value;
    const canConnect =
      typeof target === 'object' && target !== null ? (target as WseConnectGuard).canConnect : undefined;
    if (typeof canConnect !== 'function') {
      this.fail(path, 'must be a class or an object with a canConnect(request, claims) method', value);
    }
    return value;
  }

  fail(path: string, rule: string, value: unknown): void {
    this.problems.push({ path, rule, value });
  }
}
