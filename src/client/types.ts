import type { WseBackoffOptions } from './backoff.js';
import type { WseRecoveryState } from './stamp.js';

/**
 * `connecting`: the first attempt is under way. `open`: `server_ready` arrived. `reconnecting`:
 * the connection was lost (or an attempt failed) and the client waits or tries again. `closed`:
 * stopped by `close()` or by a terminal close code; `connect()` starts again.
 */
export type WseClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The part of a WebSocket the client needs; the browser's `WebSocket` and `ws`'s both fit. */
export interface WseSocket {
  readonly readyState: number;
  binaryType: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: the global one in browsers (and Node 22+), or `ws`'s in Node 20. */
export type WseWebSocketConstructor = new (url: string) => WseSocket;

/** A token, or nothing (the server then reads the cookie or header, or runs anonymous). */
export type WseToken = string | null | undefined;

export interface WseClientOptions {
  /** The server's WebSocket endpoint, e.g. `wss://example.com/wse`. */
  url: string;
  /**
   * A JWT, or a function (sync or async) giving one, asked before every connection attempt. It is
   * sent as the `token` query parameter. After a 4401 close the function is asked once more: the
   * client stops (state `closed`, `error` event `AUTH_FAILED`) if it gives the same token, or if
   * the new one is refused too. Absent: no parameter (a cookie or anonymous mode).
   */
  token?: WseToken | (() => WseToken | Promise<WseToken>);
  /** The WebSocket class. @default globalThis.WebSocket */
  WebSocket?: WseWebSocketConstructor;
  /** Connect from the constructor; otherwise call `connect()`. @default true */
  autoConnect?: boolean;
  /** Reconnect waits, full jitter. @default { initialDelayMs: 1000, factor: 1.5, maxDelayMs: 30000 } */
  backoff?: Partial<WseBackoffOptions>;
  /**
   * The server pings every `ping_interval` ms (told in `server_ready` or `server_hello`); a
   * connection silent for that plus this margin is taken as dead and replaced. @default 10000
   */
  pingMarginMs?: number;
  /** An attempt without `server_ready` within this is abandoned and retried. @default 10000 */
  connectTimeoutMs?: number;
  /** `subscribe()` / `unsubscribe()` reject when the open connection does not answer within this. @default 10000 */
  requestTimeoutMs?: number;
  /**
   * Frames `send()` keeps while not connected, sent in order once `open`. A frame that does not
   * fit is refused: `send()` returns false and an `error` event `QUEUE_OVERFLOW` carries it.
   * @default 100
   */
  maxQueuedFrames?: number;
  /** Topics per subscription frame; more are split (the server's `maxTopicsPerSubscription`). @default 100 */
  maxTopicsPerFrame?: number;
  /** A number in [0, 1), for the backoff jitter. @default Math.random */
  random?: () => number;
  /** Milliseconds now, for the ping watchdog. @default Date.now */
  now?: () => number;
}

/** What came with a `state` event. */
export interface WseStateInfo {
  /** The connection attempt this state is about, counted from 1 since the last `open`. */
  attempt: number;
  /** While `reconnecting`: the wait before the next attempt; absent while offline (waiting for `online`). */
  delayMs?: number;
  /** The close code that led here (`reconnecting`, `closed`). */
  code?: number;
  /** The close reason that led here. */
  reason?: string;
}

/** `server_ready.p.details`. */
export interface WseReadyDetails {
  version?: number;
  features?: Record<string, boolean>;
  connection_id?: string;
  server_time?: string;
  user_id?: string | null;
  ping_interval?: number;
  [key: string]: unknown;
}

/** `server_hello.p`: the answer to the `client_hello` the client sends after `server_ready`. */
export interface WseServerHello {
  server_version?: string;
  protocol_version?: number;
  features?: Record<string, boolean>;
  limits?: { max_message_size?: number };
  ping_interval?: number;
  [key: string]: unknown;
}

/** A message the server delivered (a topic message, a broadcast, a direct send). */
export interface WseMessage {
  /** The topic, when the message is stamped (history topics, CONTRACT section 11). */
  topic?: string;
  /** The stamp's epoch and offset, when stamped. */
  epoch?: string;
  offset?: number;
  /** The payload parsed as JSON (without the stamp's `tp`, `e`, `o`); the text itself when it is not JSON. */
  data: unknown;
  /** The frame's text as received. */
  raw: string;
}

/** The server's `subscription_update` answer (only the requested topics, when one frame served several calls). */
export interface WseSubscriptionResult {
  action: 'subscribe' | 'unsubscribe';
  success_topics: string[];
  failed_topics: string[];
  /** Why each failed topic failed. */
  errors: { topic: string; reason: string }[];
  /** Positions of history topics, as the server reported them. */
  recovery?: Record<string, WseRecoveryState>;
}

/**
 * Emitted per topic after a reconnect and after a `resync` frame (messages may have been missed).
 * `recovered: true`: the missed messages were replayed (duplicates are dropped). `false`: the
 * application should reload that topic's state.
 */
export interface WseResyncEvent {
  topic: string;
  recovered: boolean;
  /** How many messages were missed and not replayed, when known (0 when recovered). */
  lost?: number;
  /** `reconnected` after a new connection; the server's `reason` (e.g. `redis_reconnected`) after a resync frame. */
  reason: string;
  /** From a resync frame: how long the server's bus was down. */
  downMs?: number;
}

/**
 * `AUTH_FAILED` (stopped after 4401), `CLOSED` (stopped by a terminal close code),
 * `TOKEN_FAILED` (the token function threw; retried), `QUEUE_OVERFLOW` (a frame did not fit the
 * outgoing queue), `QUEUE_DISCARDED` (queued frames dropped because the client closed),
 * `SUBSCRIBE_FAILED` (the server refused a topic on resubscribe), or the `code` of an `error`
 * frame from the server (`UNKNOWN_EVENT`, `RATE_LIMITED`, ...).
 */
export type WseClientErrorCode =
  'AUTH_FAILED' | 'CLOSED' | 'TOKEN_FAILED' | 'QUEUE_OVERFLOW' | 'QUEUE_DISCARDED' | 'SUBSCRIBE_FAILED';

export interface WseClientError {
  code: WseClientErrorCode | (string & Record<never, never>);
  message: string;
  /** The close code, for `AUTH_FAILED` and `CLOSED`. */
  closeCode?: number;
  /** The refused frame, for `QUEUE_OVERFLOW`. */
  frame?: { type: string; payload: unknown };
  /** How many frames, for `QUEUE_DISCARDED`. */
  count?: number;
  /** The topic, for `SUBSCRIBE_FAILED`. */
  topic?: string;
}

/** The events of a WseClient and their listeners. */
export interface WseClientEvents {
  state: (state: WseClientState, info: WseStateInfo) => void;
  message: (message: WseMessage) => void;
  resync: (event: WseResyncEvent) => void;
  error: (error: WseClientError) => void;
}
