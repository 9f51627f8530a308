import type { SparseHistogram } from './histogram.js';

/** The systems under test. */
/**
 * `wse-base`: nestjs-wse from a baseline build (`--baseline=`), beside today's `wse` in one run.
 * `wse-history`: nestjs-wse with every bench topic a history topic (`recovery.topics: ['bench:*']`).
 */
/**
 * `b-jwt`: plain ws doing nestjs-wse's accept work (the token read from the same places,
 * verified with jsonwebtoken in the upgrade, a first frame of `server_ready`'s size). With a
 * `jwtSecret`, `socketio` checks the token in its middleware.
 */
export type SystemKind = 'ws-naive' | 'ws-prebuilt' | 'b-jwt' | 'socketio' | 'wse' | 'wse-base' | 'wse-history';

/** How a load client talks to a system. */
export type WireProtocol = 'ws' | 'wse' | 'socketio';

/** Where a publish goes: straight to this instance's subscribers, or through Redis. */
export type PublishVia = 'local' | 'redis';

// ---- server process ----------------------------------------------------------------------

export interface ServerStartParams {
  readonly system: SystemKind;
  readonly redisUrl?: string;
  readonly jwtSecret?: string;
  /** A fixed port (a restarted server comes back where its clients look for it); 0 or absent: any. */
  readonly port?: number;
  /** nestjs-wse: `redis.routing` (issue 15); the library's default when unset. */
  readonly redisRouting?: RedisRouting;
  /** nestjs-wse: `redis.cluster.nodes` (`host:port`), instead of `redisUrl`. */
  readonly redisClusterNodes?: readonly string[];
}

/** How a nestjs-wse instance listens to Redis (`redis.routing`). */
export type RedisRouting = 'pattern' | 'interest';

export interface ServerStartResult {
  readonly port: number;
  readonly path: string;
}

export interface ServerUsage {
  /** process.cpuUsage() user + system, microseconds since start. */
  readonly cpuUs: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly connections: number;
  /** Messages the system dropped on the way out (nestjs-wse: outbound_dropped). */
  readonly dropped: number;
  /** nestjs-wse: redis_messages_published; others: acknowledged PUBLISH commands. */
  readonly redisPublished: number;
  readonly atMs: number;
}

/** Topics cycled through by a publish loop: `prefix + (i % count) + suffix`, or `prefix` alone when count is 0. */
export interface TopicStream {
  readonly prefix: string;
  readonly count: number;
  readonly suffix: string;
}

export interface BurstParams {
  readonly topics: TopicStream;
  /** Publishes per event-loop turn. */
  readonly perTurn: number;
  readonly durationMs: number;
  readonly via: PublishVia;
}

export interface LoopResult {
  readonly published: number;
  readonly startMs: number;
  readonly endMs: number;
  /** Paced loops: messages the schedule offered (more than `published` when the loop gave up behind schedule). */
  readonly scheduled?: number;
  /** Paced loops: the schedule's length. */
  readonly scheduledMs?: number;
}

export interface PacedParams {
  readonly topic: string;
  /** When set, message n goes to this stream's topic n instead of `topic`. */
  readonly topics?: TopicStream;
  /** Messages per second, each stamped with its scheduled time. */
  readonly rate: number;
  readonly durationMs: number;
  readonly via: PublishVia;
}

export interface FloodParams {
  readonly topic: string;
  /** When set, message n goes to this stream's topic n instead of `topic`. */
  readonly topics?: TopicStream;
  readonly durationMs: number;
  readonly perTurn: number;
  /** Publishes allowed in flight (sent, not yet acknowledged by Redis). */
  readonly window: number;
}

export interface ServerApi {
  start(params: ServerStartParams): Promise<ServerStartResult>;
  usage(params: { readonly gc: boolean }): Promise<ServerUsage>;
  burst(params: BurstParams): Promise<LoopResult>;
  paced(params: PacedParams): Promise<LoopResult>;
  flood(params: FloodParams): Promise<LoopResult>;
  publishOne(params: { readonly topic: string; readonly via: PublishVia }): Promise<void>;
  /** The monotonic clock V8's CPU profiler stamps its samples with, in microseconds. */
  monotonicUs(params: null): Promise<number>;
  /** The system's graceful stop (connections closed with a restart code); the process stays. */
  shutdown(params: null): Promise<void>;
  /** Publishes one message to each topic every `everyMs` until `stopTicker` (or `maxMs`). */
  startTicker(params: {
    readonly topics: readonly string[];
    readonly everyMs: number;
    readonly maxMs: number;
  }): Promise<void>;
  stopTicker(params: null): Promise<number>;
}

// ---- load client process -----------------------------------------------------------------

/** What each connection subscribes to. */
export type TopicPlan =
  | { readonly kind: 'none' }
  | { readonly kind: 'same'; readonly topics: readonly string[] }
  /**
   * Connection g: `exact` topics `exactPrefix + ((g * exact + k) % pool)`, k < exact, shared with
   * other connections, and its own glob `globPrefix + g + ':*'`.
   */
  | {
      readonly kind: 'mixed';
      readonly exactPrefix: string;
      readonly exact: number;
      readonly pool: number;
      readonly globPrefix: string;
    }
  /** Connection with global index g subscribes `prefix + (start + g * perConnection + k) + suffix`, k < perConnection. */
  | {
      readonly kind: 'range';
      readonly prefix: string;
      readonly suffix: string;
      readonly start: number;
      readonly perConnection: number;
    };

export interface ConnectParams {
  readonly port: number;
  readonly path: string;
  readonly protocol: WireProtocol;
  readonly count: number;
  /** Global index of this batch's first connection (user ids, topic ranges). */
  readonly firstIndex: number;
  readonly topics: TopicPlan;
  /** When set, each connection presents its own HS256 token (`sub` = user-<index>), signed before the clock starts. */
  readonly jwtSecret?: string;
  /** Source addresses to spread connections over (127.0.0.x), against ephemeral port exhaustion. */
  readonly localAddresses: readonly string[];
  /** Handshakes in flight at once. */
  readonly concurrency: number;
}

export interface ConnectResult {
  readonly opened: number;
  readonly failed: number;
  readonly firstError?: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly cpuUs: number;
}

export interface ClientSnapshot {
  readonly frames: number;
  /** Socket reads that carried at least one counted frame. */
  readonly reads: number;
  readonly bytes: number;
  readonly lastFrameMs: number;
  readonly cpuUs: number;
  readonly open: number;
  readonly lostAfterReady: number;
  readonly negativeLatencies: number;
  readonly histogram?: SparseHistogram;
}

/** The reconnect storm's clients (real clients with their own backoff, see storm-clients.ts). */
export interface StormConnectParams {
  readonly protocol: 'wse' | 'socketio';
  readonly port: number;
  readonly path: string;
  readonly count: number;
  readonly firstIndex: number;
  readonly jwtSecret: string;
  /** Client g subscribes `topicPrefix + ((g + k) % topicCount)`, k < topicsPerClient. */
  readonly topicPrefix: string;
  readonly topicCount: number;
  readonly topicsPerClient: number;
  readonly localAddresses: readonly string[];
  /** Clients connecting at once while the storm's clients are first set up. */
  readonly concurrency: number;
  readonly timeoutMs: number;
}

export interface StormSnapshot {
  readonly clients: number;
  /** Clients that lost their connection since `stormArm`. */
  readonly lost: number;
  /** Of those: connected again, all topics subscribed again, a message received on every topic. */
  readonly connected: number;
  readonly resubscribed: number;
  readonly receiving: number;
  /** Handshakes the server answered with a refusal (a close code or error other than "unreachable"). */
  readonly refused: number;
  readonly firstRefusal?: string;
  readonly atMs: number;
  /** Per client, epoch ms (NaN: not yet). */
  readonly times?: {
    readonly connected: readonly number[];
    readonly resubscribed: readonly number[];
    readonly receiving: readonly number[];
  };
}

export interface ClientApi {
  connect(params: ConnectParams): Promise<ConnectResult>;
  stormConnect(params: StormConnectParams): Promise<{ opened: number; failed: number; firstError?: string }>;
  stormArm(params: null): Promise<void>;
  stormSnapshot(params: { readonly times: boolean }): Promise<StormSnapshot>;
  stormCloseAll(params: null): Promise<void>;
  reset(params: { readonly sampleEvery: number }): Promise<void>;
  snapshot(params: { readonly histogram: boolean }): Promise<ClientSnapshot>;
  closeAll(params: null): Promise<void>;
  /** Connects one socket.io-client, subscribes it, and waits for one message. */
  socketIoCheckStart(params: { readonly port: number; readonly topic: string }): Promise<void>;
  socketIoCheckResult(params: { readonly timeoutMs: number }): Promise<string>;
}

// ---- capabilities process ---------------------------------------------------------------

/** Microseconds per inbound event through each handler shape (see procs/capabilities.ts). */
export interface EventPipelineFigures {
  readonly directUs: number;
  readonly pipelineUs: number;
  readonly guardUs: number;
  readonly guardPipeUs: number;
}

export interface CapabilitiesApi {
  eventPipeline(params: { readonly events: number }): Promise<EventPipelineFigures>;
  /** Messages/s `WseClient` parses and dispatches (median of 5 runs of `messages`). */
  clientDispatch(params: { readonly messages: number; readonly stamped: boolean }): Promise<number>;
}

// ---- Redis helper process ----------------------------------------------------------------

export interface RedisToolApi {
  /** Counts messages arriving on a raw PSUBSCRIBE connection. */
  countStart(params: { readonly port: number; readonly pattern: string }): Promise<void>;
  countRead(params: null): Promise<{ readonly count: number; readonly firstMs: number; readonly lastMs: number }>;
  /** A non-WSE publisher: `PUBLISH <channel> <payload>` at a fixed rate, payload stamped with its scheduled time. */
  externalPaced(params: {
    readonly port: number;
    readonly channel: string;
    readonly rate: number;
    readonly durationMs: number;
  }): Promise<LoopResult>;
  /** The same over a stream of topics: message n on `PUBLISH <prefix><topic n>`. */
  externalPacedTopics(params: {
    readonly port: number;
    readonly channelPrefix: string;
    readonly topics: TopicStream;
    readonly rate: number;
    readonly durationMs: number;
  }): Promise<LoopResult>;
}
