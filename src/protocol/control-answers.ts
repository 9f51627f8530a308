/**
 * The payloads of the server's answers to control frames whose content depends on what the
 * client sent. Pure, so the exact shapes are unit-tested; the transport frames and sends them.
 */

/** `p` of the `PONG` answering a `ping` (CONTRACT section 4). */
export interface PongPayload {
  /** `p.client_timestamp` as sent (ts-bench and our client send it), `null` when absent. */
  readonly client_timestamp: unknown;
  /** `p.timestamp` as sent (what WSE's SDKs and Python client send), `null` when absent. */
  readonly timestamp: unknown;
  readonly server_timestamp: number;
}

export function pongPayload(p: Readonly<Record<string, unknown>>, nowMs: number): PongPayload {
  return {
    client_timestamp: echoable(p.client_timestamp),
    timestamp: echoable(p.timestamp),
    server_timestamp: nowMs,
  };
}

/** How deep a value echoed back to a client may nest. */
export const MAX_ECHO_DEPTH = 16;
/** How many values in all it may hold. */
export const MAX_ECHO_NODES = 1_000;

/**
 * `value` when it is small enough to echo back (at most MAX_ECHO_DEPTH levels and
 * MAX_ECHO_NODES values), otherwise null; undefined is null too. Checked with an explicit stack,
 * never by recursion: the value comes from a client, and serialising a deeply nested one
 * (JSON.stringify recurses) overflowed the stack (issue 10). A timestamp is a number or a
 * string; anything else is echoed only while it stays harmless.
 */
export function echoable(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value !== 'object' || value === null) return value;
  const stack: [unknown, number][] = [[value, 1]];
  let nodes = 0;
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (++nodes > MAX_ECHO_NODES || depth > MAX_ECHO_DEPTH) return null;
    if (typeof current !== 'object' || current === null) continue;
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  return value;
}

/**
 * `p` of the `snapshot_complete` answering a `sync_request` when the application has no
 * handler of its own for it: WSE's generic answer (its server sends no snapshots either unless
 * the application adds them), plus `topics` and `count` at the top, where WSE's Python client
 * reads them. `topics` echoes the requested topic names (strings only, at most `maxTopics`).
 */
export interface SyncCompletePayload {
  readonly message: string;
  readonly success: true;
  readonly snapshots_sent: readonly never[];
  readonly topics: readonly string[];
  readonly count: 0;
  readonly details: {
    readonly topics: readonly string[];
    readonly last_sequence_processed: unknown;
    readonly connection_id: string;
    readonly timestamp: string;
  };
}

export function syncCompletePayload(
  p: Readonly<Record<string, unknown>>,
  connectionId: string,
  now: Date,
  maxTopics: number,
  message: string,
): SyncCompletePayload {
  const requested = Array.isArray(p.topics) ? p.topics : [];
  const topics = requested.filter((topic): topic is string => typeof topic === 'string').slice(0, maxTopics);
  return {
    message,
    success: true,
    snapshots_sent: [],
    topics,
    count: 0,
    details: {
      topics,
      last_sequence_processed: p.last_sequence ?? 0,
      connection_id: connectionId,
      timestamp: now.toISOString(),
    },
  };
}
