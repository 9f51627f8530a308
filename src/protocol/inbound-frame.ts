import { isUtf8 } from 'node:buffer';
import { invalidMessages } from './protocol.messages.js';

/** A client frame that passed the shape check (CONTRACT section 4). */
export interface InboundFrame {
  readonly t: string;
  /** `p`, or an empty object when the client sent none. */
  readonly p: Readonly<Record<string, unknown>>;
  readonly id?: string;
  readonly cid?: string;
}

export type InboundParseResult =
  { readonly ok: true; readonly frame: InboundFrame } | { readonly ok: false; readonly message: string };

const EMPTY_PAYLOAD: Readonly<Record<string, unknown>> = Object.freeze({});

/**
 * Parses one client frame: one JSON object with a string `t`. Text and binary frames are
 * treated alike (ws has already checked a text frame's UTF-8; a binary one is checked here).
 * Never throws: malformed input is a result carrying the `INVALID_MESSAGE` text.
 *
 * Prototype keys are harmless here: JSON.parse makes `__proto__` an own property, and nothing
 * downstream merges client objects into others.
 */
export function parseInboundFrame(data: Buffer, isBinary: boolean): InboundParseResult {
  if (isBinary && !isUtf8(data)) return { ok: false, message: invalidMessages.notUtf8() };
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    return { ok: false, message: invalidMessages.notJson() };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: invalidMessages.notObject() };
  }
  const raw = value as Record<string, unknown>;
  if (typeof raw.t !== 'string' || raw.t.length === 0) return { ok: false, message: invalidMessages.missingType() };
  const p = raw.p;
  if (p !== undefined && p !== null && (typeof p !== 'object' || Array.isArray(p))) {
    return { ok: false, message: invalidMessages.payloadNotObject() };
  }
  return {
    ok: true,
    frame: {
      t: raw.t,
      p: (p as Record<string, unknown> | null | undefined) ?? EMPTY_PAYLOAD,
      id: typeof raw.id === 'string' ? raw.id : undefined,
      cid: typeof raw.cid === 'string' ? raw.cid : undefined,
    },
  };
}

/** The topics of a `subscription` frame, or the reason it is malformed. */
export function parseSubscriptionRequest(
  p: Readonly<Record<string, unknown>>,
  maxTopics = Number.POSITIVE_INFINITY,
): { ok: true; action: 'subscribe' | 'unsubscribe'; topics: string[] } | { ok: false; message: string } {
  const action = p.action;
  if (action !== 'subscribe' && action !== 'unsubscribe') {
    return { ok: false, message: invalidMessages.badSubscriptionAction() };
  }
  const topics = p.topics;
  if (!Array.isArray(topics)) return { ok: false, message: invalidMessages.badSubscriptionTopics() };
  // Counted before anything else is done with them: a giant list costs nothing more than this.
  if (topics.length > maxTopics) return { ok: false, message: invalidMessages.tooManyTopics(maxTopics) };
  if (!topics.every((topic) => typeof topic === 'string')) {
    return { ok: false, message: invalidMessages.badSubscriptionTopics() };
  }
  return { ok: true, action, topics: topics as string[] };
}

/** How deep a value echoed back to a client (PONG's `client_timestamp`) may nest. */
export const MAX_ECHO_DEPTH = 16;
/** How many values in all it may hold. */
export const MAX_ECHO_NODES = 1_000;

/**
 * `value` when it is small enough to echo back (at most MAX_ECHO_DEPTH levels and
 * MAX_ECHO_NODES values), otherwise null. Checked with an explicit stack, never by recursion:
 * the value comes from a client, and serialising a deeply nested one (JSON.stringify recurses)
 * overflowed the stack (issue 10). A timestamp is a number or a string; anything else is echoed
 * only while it stays harmless.
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
