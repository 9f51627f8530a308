/**
 * Positions and reads of topic history (CONTRACT section 11), shared by the stores that keep it
 * (in memory in the hub, in Redis in the broker) and the node that recovers connections from it.
 */

/** Where a history topic stands: its epoch and the offset of its last message (0: none yet). */
export interface HistoryPosition {
  readonly epoch: string;
  readonly offset: number;
}

/** Why a recovery replays nothing. */
export type NotRecoveredReason =
  /** The client's epoch is not the topic's: the history it knew is gone. */
  | 'epoch_changed'
  /** Messages after the client's offset were trimmed (past `size`) or expired (past `ttlMs`). */
  | 'trimmed'
  /** More messages were missed than one recovery replays (`maxReplay`). */
  | 'over_max_replay'
  /** The client's offset is past the topic's last one, in the same epoch. */
  | 'ahead';

/** The answer of a history store to "everything after (epoch, offset)". */
export type HistoryRead =
  | {
      readonly recovered: true;
      readonly position: HistoryPosition;
      /** The stamped payloads after the client's offset, oldest first, ending at `position.offset`. */
      readonly entries: readonly Buffer[];
    }
  | { readonly recovered: false; readonly position: HistoryPosition; readonly reason: NotRecoveredReason };

/**
 * Whether a client that saw `(epoch, offset)` last can be recovered from a history standing at
 * `position` whose oldest held message is `oldestHeld` (`position.offset + 1` when it holds
 * none): `undefined` when every message after `offset` is held and there are at most
 * `maxReplay` of them, otherwise the reason it cannot.
 */
export function notRecoveredReason(
  position: HistoryPosition,
  oldestHeld: number,
  epoch: string,
  offset: number,
  maxReplay: number,
): NotRecoveredReason | undefined {
  if (epoch !== position.epoch) return 'epoch_changed';
  if (offset > position.offset) return 'ahead';
  if (position.offset - offset > maxReplay) return 'over_max_replay';
  if (offset < position.offset && oldestHeld > offset + 1) return 'trimmed';
  return undefined;
}
