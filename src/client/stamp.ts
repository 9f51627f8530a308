/**
 * Stamps and positions of history topics (CONTRACT section 11). A stamped message starts with
 * `{"tp":"<topic>","e":"<epoch>","o":<offset>, ...}`; `o` grows by one per message of a topic.
 */

/** A message's place in its topic's history. */
export interface WseStamp {
  /** The topic. */
  tp: string;
  /** The history's epoch: a new one means old offsets mean nothing any more. */
  e: string;
  /** The offset, from 1. */
  o: number;
}

/** A topic's position as a `subscription_update` or `resync` frame reports it. */
export interface WseRecoveryState {
  epoch: string;
  /** The last offset of the topic. */
  offset: number;
  /** In an answer to a recovery request: whether every missed message is being replayed. */
  recovered?: boolean;
  /** How many messages are replayed. */
  count?: number;
}

type Json = Record<string, unknown>;

function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** The stamp of a parsed message, or undefined when it carries none (or a malformed one). */
export function readStamp(message: unknown): WseStamp | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const { tp, e, o } = message as Json;
  return typeof tp === 'string' && typeof e === 'string' && isOffset(o) ? { tp, e, o } : undefined;
}

/** A `{epoch, offset, recovered?, count?}` entry of a frame, or undefined when malformed. */
export function readRecoveryState(entry: unknown): WseRecoveryState | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const { epoch, offset, recovered, count } = entry as Json;
  if (typeof epoch !== 'string' || !isOffset(offset)) return undefined;
  const state: WseRecoveryState = { epoch, offset };
  if (typeof recovered === 'boolean') state.recovered = recovered;
  if (isOffset(count)) state.count = count;
  return state;
}

/**
 * Where the client stands on a history topic: the last offset it delivered (`seen`), or only the
 * position a subscribe answer reported (`seen: false`), which is a place to recover from but not
 * proof that a message was delivered: a live message at or before that offset may still be on
 * its way, so it must not count as a duplicate.
 */
export interface WsePosition {
  e: string;
  o: number;
  seen: boolean;
}

/**
 * True when `stamp` was delivered already: the last delivered message of its topic has the same
 * epoch and an offset not before it. Offsets of a topic arrive in order (a replay comes before
 * newer live messages), so one position per topic is all the memory duplicate removal needs.
 */
export function isDuplicate(last: WsePosition | undefined, stamp: WseStamp): boolean {
  return last !== undefined && last.seen && last.e === stamp.e && stamp.o <= last.o;
}

/**
 * How many messages were missed between the client's position and the server's current one,
 * when both are in one epoch; undefined when the epoch changed or a side is unknown.
 */
export function missedCount(last: WsePosition | undefined, current: WseRecoveryState | undefined): number | undefined {
  if (last === undefined || current === undefined || current.epoch !== last.e) return undefined;
  return Math.max(0, current.offset - last.o);
}
