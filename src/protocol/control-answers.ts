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
    client_timestamp: p.client_timestamp ?? null,
    timestamp: p.timestamp ?? null,
    server_timestamp: nowMs,
  };
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
