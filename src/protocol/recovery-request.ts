import { recoveryInputMessages } from './protocol.messages.js';

/** A client's last seen position on a topic, as it sent it. */
export interface RecoveryPosition {
  readonly epoch: string;
  readonly offset: number;
}

/** What a subscribe asks to recover (CONTRACT section 11), checked. */
export interface RecoveryRequest {
  /** True when the client asked for recovery (`recover: true`, or positions without `recover`). */
  readonly wanted: boolean;
  /** Well-formed positions of topics listed in `p.topics`. */
  readonly positions: ReadonlyMap<string, RecoveryPosition>;
  /** Topics of `p.topics` whose recovery cannot be tried, and why: answered `recovered: false`. */
  readonly invalid: ReadonlyMap<string, string>;
  /** Keys of `p.recovery` that `p.topics` does not list: answered in `failed_topics`. */
  readonly unrequested: readonly string[];
}

const NO_POSITIONS: ReadonlyMap<string, never> = new Map<string, never>();
const NOTHING: RecoveryRequest = Object.freeze({
  wanted: false,
  positions: NO_POSITIONS,
  invalid: NO_POSITIONS,
  unrequested: Object.freeze([]),
});

/**
 * Reads `p.recover` and `p.recovery` of a subscribe. Never throws and never refuses the
 * subscription itself: a malformed position only means that topic is not recovered (the client
 * is told why and gets the current position, so it reloads), and the topics are subscribed as
 * asked. `recover: false` turns recovery off even when positions are sent.
 *
 * The frame is refused (`ok: false`, answered `INVALID_MESSAGE`) only for more positions than
 * `maxPositions`, so a giant map costs no more than counting its keys.
 */
export function parseRecoveryRequest(
  p: Readonly<Record<string, unknown>>,
  topics: readonly string[],
  maxPositions = Number.POSITIVE_INFINITY,
): { ok: true; request: RecoveryRequest } | { ok: false; message: string } {
  const recover = Object.hasOwn(p, 'recover') ? p.recover : undefined;
  const recovery = Object.hasOwn(p, 'recovery') ? p.recovery : undefined;
  if (recover === false || (recover === undefined && recovery === undefined)) return { ok: true, request: NOTHING };

  const invalid = new Map<string, string>();
  const everyTopic = (reason: string): RecoveryRequest => {
    for (const topic of topics) invalid.set(topic, reason);
    return { wanted: true, positions: NO_POSITIONS, invalid, unrequested: [] };
  };
  if (recover !== undefined && recover !== true) {
    return { ok: true, request: everyTopic(recoveryInputMessages.recoverNotBoolean()) };
  }
  if (recovery === undefined || recovery === null) return { ok: true, request: { ...NOTHING, wanted: true } };
  if (typeof recovery !== 'object' || Array.isArray(recovery)) {
    return { ok: true, request: everyTopic(recoveryInputMessages.recoveryNotObject()) };
  }
  const entries = recovery as Record<string, unknown>;
  const keys = Object.keys(entries);
  if (keys.length > maxPositions) return { ok: false, message: recoveryInputMessages.tooManyPositions(maxPositions) };

  const requested = new Set(topics);
  const positions = new Map<string, RecoveryPosition>();
  const unrequested: string[] = [];
  for (const topic of keys) {
    if (!requested.has(topic)) {
      unrequested.push(topic);
      continue;
    }
    const entry = entries[topic];
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      invalid.set(topic, recoveryInputMessages.positionNotObject());
      continue;
    }
    const { epoch, offset } = entry as Record<string, unknown>;
    if (typeof epoch !== 'string' || epoch.length === 0) invalid.set(topic, recoveryInputMessages.badEpoch());
    else if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
      invalid.set(topic, recoveryInputMessages.badOffset());
    else positions.set(topic, { epoch, offset });
  }
  return { ok: true, request: { wanted: true, positions, invalid, unrequested } };
}
