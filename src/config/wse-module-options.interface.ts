import type { IncomingMessage } from 'node:http';
import type { ModuleMetadata, Type } from '@nestjs/common';
import type { WseClaims, WseConnectionInfo } from '../protocol/connection.js';
import type { BackoffOptions } from '../reliability/backoff.js';
import type { CircuitBreakerOptions } from '../reliability/circuit-breaker.js';

/**
 * Decides whether a connection may subscribe to a topic or pattern. Return `false` (or a
 * promise of it) to refuse: the topic lands in `failed_topics` and never delivers.
 */
export type WseSubscriptionAuthorizer = (connection: WseConnectionInfo, topic: string) => boolean | Promise<boolean>;

/** The JSON Web Token algorithms a server can accept (`none` never). */
export type WseJwtAlgorithm =
  'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';

/**
 * Handshake authentication with JSON Web Tokens. One key source: an HMAC secret (`jwtSecret`),
 * a public key (`publicKey`) or a JWKS endpoint (`jwksUrl`), or `anonymous: true`.
 */
export interface WseAuthOptions {
  /**
   * HMAC secret (HS256 unless `algorithms` says otherwise). Without a key source (this,
   * `publicKey` or `jwksUrl`) the module refuses to start unless `anonymous` is true: a secret
   * that an environment variable failed to provide must not silently open the endpoint.
   * @default undefined
   */
  jwtSecret?: string;
  /**
   * A PEM public key (SPKI `-----BEGIN PUBLIC KEY-----`, or PKCS#1 RSA) that verifies RS*, PS*
   * or ES* tokens; set `algorithms` to match it (`['ES256']` for a P-256 key).
   * @default undefined
   */
  publicKey?: string;
  /**
   * URL of a JSON Web Key Set (an identity provider's `/.well-known/jwks.json`). Keys are
   * fetched with `jose` and cached (`jwksCacheMaxAgeMs`); a token whose `kid` is not in the
   * cache triggers one refetch at most every `jwksCooldownMs`. Handshakes are then verified
   * asynchronously.
   * @default undefined
   */
  jwksUrl?: string;
  /**
   * Algorithms a token may be signed with; only these are accepted. HMAC ones (`HS*`) need
   * `jwtSecret`, the others `publicKey` or `jwksUrl`.
   * @default ['HS256'] with jwtSecret, ['RS256'] with publicKey or jwksUrl
   */
  algorithms?: WseJwtAlgorithm[];
  /**
   * Accept every connection without a token (`user_id: null`), logged as a warning at start.
   * Must be chosen explicitly, and never together with `jwtSecret`.
   * @default false
   */
  anonymous?: boolean;
  /** When set, the token's `iss` must equal it. @default undefined */
  issuer?: string;
  /** When set, the token's `aud` must contain it. @default undefined */
  audience?: string;
  /** Cookie the token is read from before the `Authorization` header and `?token=`. @default 'access_token' */
  cookieName?: string;
  /**
   * Refuse tokens without `exp`. A token that never expires cannot be revoked by waiting;
   * turn this off only for tokens you can revoke otherwise.
   * @default true
   */
  requireExp?: boolean;
  /**
   * Refuse tokens issued (`iat`) longer ago than this, whatever their `exp`; such tokens need
   * an `iat`. An open connection is closed when its token reaches this age, as at `exp`.
   * @default undefined (no limit)
   */
  maxTokenAgeSec?: number;
  /** Leeway for `exp`, `nbf` and `iat` checks, for clocks that drift apart. @default 0 */
  clockToleranceSec?: number;
  /** How long fetched JWKS keys are trusted before they are fetched again. @default 600000 */
  jwksCacheMaxAgeMs?: number;
  /** Least time between two JWKS fetches (an unknown `kid` cannot trigger a fetch storm). @default 30000 */
  jwksCooldownMs?: number;
  /** A JWKS fetch taking longer fails the handshakes waiting for it. @default 5000 */
  jwksTimeoutMs?: number;
}

/**
 * Operator rules for client subscriptions, compiled once at start (see the README, "Topic
 * permissions"): a topic is allowed when an `allow` rule matches it and no `deny` rule does; a
 * pattern only when every topic it can match is allowed.
 */
export interface WseSubscriptionRules {
  /**
   * micromatch globs over the whole topic (`*` spans `:` and `/`), with braces
   * (`chat:{lobby,help}`), a leading `!` to exclude, and claims of the verified token filled in
   * as literal text (`user:{sub}:*`, `org:{org.id}:*`).
   * @default [] (nothing, unless `claim` lists something)
   */
  allow?: string[];
  /** Rules of the same language that win over `allow`. @default [] */
  deny?: string[];
  /**
   * A claim whose array of rules (Centrifugo's `channels` claim) extends `allow` for that
   * connection; the token issuer decides what each token may subscribe to.
   * @default undefined (tokens carry no rules)
   */
  claim?: string;
}

/**
 * What a connect guard decides: `false` refuses (close 4403, nothing delivered), `true` accepts
 * as authenticated, an object accepts with its `userId` and/or extra `claims` merged over the
 * token's.
 */
export type WseConnectVerdict =
  boolean | { readonly userId?: string | null; readonly claims?: Readonly<Record<string, unknown>> };

/**
 * Application logic at the handshake, after the token is verified and before `server_ready`:
 * a tenant check, a ban list, roles loaded from a database. An `@Injectable()` class, listed
 * among the providers of one of your modules so that its dependencies resolve there (a class
 * that is not a provider is created in the engine's module, where only global providers can be
 * injected), or an object.
 *
 * @example
 * ```ts
 * @Injectable()
 * export class TenantGuard implements WseConnectGuard {
 *   constructor(private readonly tenants: TenantsService) {}
 *   async canConnect(request: IncomingMessage, claims: WseClaims | null): Promise<WseConnectVerdict> {
 *     const tenant = await this.tenants.find(String(claims?.tid));
 *     return tenant?.active ? { claims: { plan: tenant.plan } } : false;
 *   }
 * }
 * ```
 */
export interface WseConnectGuard {
  canConnect(request: IncomingMessage, claims: WseClaims | null): WseConnectVerdict | Promise<WseConnectVerdict>;
}

/** Multi-instance fan-out through Redis Pub/Sub (CONTRACT sections 9 and 10). */
/** A Redis Cluster to use instead of one Redis (see `WseRedisOptions.cluster`). */
export interface WseRedisClusterOptions {
  /**
   * Some of its masters, as `host:port` or `redis://[user:password@]host:port` (the first
   * credentials given are used for every node); the rest are discovered.
   */
  nodes: string[];
}

/** How an instance listens to Redis: see `WseRedisOptions.routing`. */
export type WseRedisRouting = 'pattern' | 'interest';

export interface WseRedisOptions {
  /**
   * `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. Unset: single-instance
   * mode (a later `RedisPubSubService.connectRedis(url)` can still switch it on).
   * @default undefined
   */
  url?: string;
  /**
   * How an instance listens (CONTRACT section 9). `pattern`: one `PSUBSCRIBE <prefix>*`, every
   * instance receives every message of the deployment. `interest`: an instance subscribes to
   * just the topics (`SUBSCRIBE`) and globs (`PSUBSCRIBE`) its connections follow, so a message
   * reaches only the instances that deliver it (README, "Scaling out"). @default 'pattern'
   */
  routing?: WseRedisRouting;
  /**
   * A Redis Cluster instead of one Redis (`REDIS_CLUSTER_NODES`; not together with `url`): exact
   * topics travel as sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE <prefix><topic>`, one subscriber
   * connection per shard), so publish capacity grows with the cluster; globs on the cluster's
   * classic bus (README, "Scaling out"). Routes by interest. @default undefined
   */
  cluster?: WseRedisClusterOptions;
  /** Channel prefix: topic `t` travels on channel `<prefix>t`. @default 'wse:' */
  prefix?: string;
  /** PUBLISH attempts before a message goes to the dead letter queue. @default 3 */
  publishAttempts?: number;
  /** Wait before the first retry; each further retry waits twice as long (100 ms, 200 ms). @default 100 */
  publishRetryDelayMs?: number;
  /** Entries the dead letter queue holds before it evicts the oldest. @default 1000 */
  dlqCapacity?: number;
  /**
   * Reconnection backoff. Capped at 3 s so a Redis that comes back is used within about 3.6 s,
   * however long it was away.
   * @default { initialDelayMs: 1000, multiplier: 1.5, maxDelayMs: 3000, jitter: 0.2 }
   */
  reconnect?: Partial<BackoffOptions>;
  /**
   * Settings of both breakers (`conn_breaker`, `pub_breaker`).
   * @default { failureThreshold: 10, resetTimeoutMs: 60000, halfOpenMaxCalls: 3 }
   */
  breaker?: Partial<CircuitBreakerOptions>;
  /**
   * How often each instance publishes a probe through Redis to prove delivery; the probes also
   * tell the instances sharing the prefix about each other. @default 1000
   */
  probeIntervalMs?: number;
  /**
   * A probe not answered by Redis within this marks Redis down (not answering; the connections
   * are kept); a probe answered but not received within this marks the subscriber dead and
   * replaces its connection. @default 1000
   */
  probeTimeoutMs?: number;
  /**
   * How long a sent publish command may wait for Redis's reply. Past it, its messages go to the
   * DLQ as `outcome_unknown`, and until Redis answers again new publishes go to the DLQ at once
   * (`not_answering`). @default 1000
   */
  publishTimeoutMs?: number;
  /**
   * At most this many publishes in flight (queued, sent, or waiting for a retry); past it a
   * publish goes to the DLQ at once (`backlog_full`). @default 100000
   */
  maxInFlightMessages?: number;
  /**
   * At most this many payload bytes in flight (characters for text payloads). @default 67108864 (64 MiB)
   */
  maxInFlightBytes?: number;
  /** At shutdown, how long to wait for publishes in flight before they go to the DLQ. @default 2000 */
  shutdownTimeoutMs?: number;
}

/**
 * History and recovery (CONTRACT section 11): messages on the chosen topics are stamped with
 * `tp`/`e`/`o` and kept, so a client that reconnects (to any instance) gets what it missed.
 * Kept in Redis when Redis is configured, in this process's memory otherwise.
 */
export interface WseRecoveryOptions {
  /**
   * Exact topics and globs (Redis glob rules, CONTRACT section 6) whose messages keep history.
   * Only these pay for it; every other topic is delivered as before.
   * @default [] (no history)
   * @example ['chat:*', 'orders']
   */
  topics?: string[];
  /** Messages kept per topic. @default 128 */
  size?: number;
  /** How long a message is kept, in milliseconds. @default 300000 */
  ttlMs?: number;
  /** Most messages one recovery replays; a client that missed more gets `recovered: false`. @default 500 */
  maxReplay?: number;
  /**
   * In-memory mode only: what all topics' history may hold in all (payloads plus bookkeeping).
   * Past it the oldest messages of the topics used longest ago are dropped.
   * @default 67108864 (64 MiB)
   */
  maxMemoryBytes?: number;
}

/** The per-connection inbound rate limit (a token bucket; each inbound frame costs one token). */
export interface WseRateLimitOptions {
  /** Tokens in a full bucket: the burst a client may send at once. @default 100000 */
  capacity: number;
  /**
   * Tokens added per second: the sustained rate. The default lets one connection send as fast
   * as a Node client can push frames through a Node server (WSE's ts-bench floods at up to
   * ~100,000 frames/s from one process; WSE's SDKs send at most 100/s after a 1,000 burst), so
   * it trips on a client sending more than the server can serve, not on a busy honest one.
   * Lower it for public endpoints.
   * @default 100000
   */
  refillPerSecond: number;
  /** A `rate_limit_warning` is sent when the bucket falls below this fraction of its capacity. @default 0.2 */
  warnBelowFraction: number;
  /** Consecutive refused frames after which the connection is closed with 1008. @default 1000 */
  closeAfterRejected: number;
}

/**
 * What WSE's own clients send beyond plain JSON text (docs/PROTOCOL.md, "Compatibility with WSE
 * clients"). `server_ready.details.features` says which of these are on. Category prefixes,
 * `type` / `payload`, `subscription_update` and `sync_request` are always understood.
 */
export interface WseCompatibilityOptions {
  /** Accept binary `M:` + MessagePack frames. @default true */
  msgpack: boolean;
  /** Accept binary `C:` + zlib frames, inflated to at most `maxMessageBytes` (more is refused). @default true */
  compression: boolean;
  /** Subscribe the topics named on the handshake URL (`/wse?topics=a,b`), as WSE's server does. @default true */
  urlTopics: boolean;
}

/** Optional fields on the server's system frames (see `SystemFrameMeta` in docs/PROTOCOL.md). */
export interface WseSystemFrameOptions {
  /** A fresh UUID as `id` on every system frame (WSE's clients drop a repeated id). @default false */
  id: boolean;
  /**
   * The ISO 8601 time as `ts` on every system frame. Off by default: WSE's 1.x SDK drops frames
   * whose `ts` looks more than a second old, so a client clock ahead of the server's loses them.
   * @default false
   */
  ts: boolean;
}

/**
 * What happens to a client event whose `t` has no `@OnWseEvent(type)` handler and no catch-all
 * `@OnWseEvent('*')`: `'error'` answers `UNKNOWN_EVENT` (CONTRACT section 4), `'ignore'` drops it
 * silently as WSE's server does (counted in `wse_messages_dropped_total{cause="unknown_event"}`).
 */
export type WseUnknownEvents = 'error' | 'ignore';

/** Everything `WseModule.forRoot()` accepts. Every field is optional. */
export interface WseModuleOptions {
  /** WebSocket endpoint path on the application's HTTP server. @default '/wse' */
  path?: string;
  /** Connections beyond this are closed with 1013 `server full`. @default 10000 */
  maxConnections?: number;
  /** Inbound frames larger than this close the connection with 1009. @default 1048576 */
  maxMessageBytes?: number;
  /** Period of the server's `ping` system message. @default 25000 */
  pingIntervalMs?: number;
  /** A connection that sends nothing for this long is closed (1000, `idle timeout`). @default 60000 */
  idleTimeoutMs?: number;
  /** Handshake authentication: `jwtSecret`, or `anonymous: true`; one of them is required. */
  auth?: WseAuthOptions;
  /**
   * Enables the server API under `/api` behind `Authorization: Bearer <apiKey>`.
   * Unset: every `/api/*` route answers 404.
   * @default undefined
   */
  apiKey?: string;
  /**
   * Client events waiting for or inside their handler, across all connections. Past it the
   * client gets an `OVERLOADED` error and the event is dropped (counted in `inbound_dropped`).
   * @default 10000
   */
  inboundQueueSize?: number;
  /** Client event handlers running at once; the rest wait in the inbound queue. @default 64 */
  inboundConcurrency?: number;
  /**
   * Bytes a connection may have waiting in its socket before topic messages to it are dropped
   * (and counted in `outbound_dropped`) instead of growing memory without bound.
   * @default 4194304
   */
  maxBufferedBytes?: number;
  /**
   * Called for every topic a client asks to subscribe to, after `subscriptions` allowed it.
   * @default allow everything
   */
  authorizeSubscription?: WseSubscriptionAuthorizer;
  /** Operator rules for client subscriptions. @default undefined (every topic allowed) */
  subscriptions?: WseSubscriptionRules;
  /** Refuses or enriches connections before `server_ready`. @default undefined */
  connectGuard?: Type<WseConnectGuard> | WseConnectGuard;
  /**
   * A connect guard not done within this closes the connection with 1013 (try again later).
   * @default 5000
   */
  connectGuardTimeoutMs?: number;
  /** Multi-instance fan-out through Redis. @default {} (single instance) */
  redis?: WseRedisOptions;
  /** Topics and patterns one connection may hold; more land in `failed_topics`. @default 1000 */
  maxTopicsPerConnection?: number;
  /** Topics one `subscription` message may list; more refuse the message (`INVALID_MESSAGE`). @default 100 */
  maxTopicsPerSubscription?: number;
  /**
   * A connection that stays over `maxBufferedBytes` (not reading) this long is closed with
   * 1013 `slow consumer`. Messages to it are dropped from the moment it is over.
   * @default 10000
   */
  slowConsumerTimeoutMs?: number;
  /** Inbound rate limit per connection; `false` turns it off. @default { capacity: 100000, refillPerSecond: 100000, warnBelowFraction: 0.2, closeAfterRejected: 1000 } */
  rateLimit?: Partial<WseRateLimitOptions> | false;
  /**
   * Origins (`https://app.example.com`) allowed to open a WebSocket, against cross-site
   * WebSocket hijacking with cookie auth. Others get HTTP 403 at the upgrade. Requests without
   * an Origin header (non-browser clients) are allowed.
   * @default undefined (any origin)
   */
  allowedOrigins?: string[];
  /** History and recovery for chosen topics. @default { topics: [] } (none) */
  recovery?: WseRecoveryOptions;
  /** WSE client formats accepted inbound. @default { msgpack: true, compression: true, urlTopics: true } */
  compatibility?: Partial<WseCompatibilityOptions>;
  /** Client events nobody handles. @default 'error' */
  unknownEvents?: WseUnknownEvents;
  /**
   * Close code sent to every connection on a graceful shutdown. 1012 (service restart) is one
   * WSE's clients and generic ones reconnect on; 1000 and 1001 make WSE's SDKs and Python
   * client stop for good. A code from 3000 to 4999 (WSE's `drain()` uses 4300) also works.
   * @default 1012
   */
  shutdownCloseCode?: number;
  /** `id` / `ts` on system frames. @default { id: false, ts: false } */
  systemFrames?: Partial<WseSystemFrameOptions>;
}

/** The options after defaults and validation: every field present, frozen. */
export interface ResolvedWseOptions {
  readonly path: string;
  readonly maxConnections: number;
  readonly maxMessageBytes: number;
  readonly pingIntervalMs: number;
  readonly idleTimeoutMs: number;
  readonly auth: ResolvedAuthOptions;
  readonly apiKey: string | undefined;
  readonly inboundQueueSize: number;
  readonly inboundConcurrency: number;
  readonly maxBufferedBytes: number;
  readonly authorizeSubscription: WseSubscriptionAuthorizer | undefined;
  readonly subscriptions: ResolvedSubscriptionRules | undefined;
  readonly connectGuard: Type<WseConnectGuard> | WseConnectGuard | undefined;
  readonly connectGuardTimeoutMs: number;
  readonly redis: ResolvedRedisOptions;
  readonly maxTopicsPerConnection: number;
  readonly maxTopicsPerSubscription: number;
  readonly slowConsumerTimeoutMs: number;
  readonly rateLimit: Readonly<WseRateLimitOptions> | undefined;
  readonly allowedOrigins: readonly string[] | undefined;
  readonly recovery: ResolvedRecoveryOptions;
  readonly compatibility: Readonly<WseCompatibilityOptions>;
  readonly unknownEvents: WseUnknownEvents;
  readonly shutdownCloseCode: number;
  readonly systemFrames: Readonly<WseSystemFrameOptions>;
}

export interface ResolvedRecoveryOptions {
  readonly topics: readonly string[];
  readonly size: number;
  readonly ttlMs: number;
  readonly maxReplay: number;
  readonly maxMemoryBytes: number;
}

export interface ResolvedAuthOptions {
  readonly jwtSecret: string | undefined;
  /** Every connection accepted without a token (chosen explicitly). */
  readonly anonymous: boolean;
  readonly publicKey: string | undefined;
  readonly jwksUrl: string | undefined;
  /** Empty in anonymous mode. */
  readonly algorithms: readonly WseJwtAlgorithm[];
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  readonly cookieName: string;
  readonly requireExp: boolean;
  readonly maxTokenAgeSec: number | undefined;
  readonly clockToleranceSec: number;
  readonly jwksCacheMaxAgeMs: number;
  readonly jwksCooldownMs: number;
  readonly jwksTimeoutMs: number;
}

export interface ResolvedSubscriptionRules {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly claim: string | undefined;
}

export interface ResolvedRedisOptions {
  readonly url: string | undefined;
  readonly routing: WseRedisRouting;
  readonly cluster: ResolvedRedisCluster | undefined;
  readonly prefix: string;
  readonly publishAttempts: number;
  readonly publishRetryDelayMs: number;
  readonly dlqCapacity: number;
  readonly reconnect: Readonly<BackoffOptions>;
  readonly breaker: Readonly<CircuitBreakerOptions>;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly publishTimeoutMs: number;
  readonly maxInFlightMessages: number;
  readonly maxInFlightBytes: number;
  readonly shutdownTimeoutMs: number;
}

export interface ResolvedRedisCluster {
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  readonly username: string | undefined;
  readonly password: string | undefined;
}

/** A class that produces the options, for `forRootAsync({ useClass })`. */
export interface WseOptionsFactory {
  createWseOptions(): WseModuleOptions | Promise<WseModuleOptions>;
}

/** What `WseModule.forRootAsync()` accepts. */
export interface WseModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  // Nest's own factory signature: the injected values are the user's, of any type.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  useFactory?: (...args: any[]) => WseModuleOptions | Promise<WseModuleOptions>;
  inject?: Array<string | symbol | Type<unknown>>;
  useClass?: Type<WseOptionsFactory>;
  useExisting?: Type<WseOptionsFactory>;
}
