import type { Cluster } from 'ioredis';
import { batchLua, type BatchReply } from './publish-batch.js';

/**
 * Many SPUBLISHes on one master of a Redis Cluster in one command: `SPUBLISH ARGV[2] ARGV[3]`,
 * `SPUBLISH ARGV[4] ARGV[5]`, ... in order, each under `pcall`. The reply is the classic batch's
 * (publish-batch.ts): flat pairs, (index, error) for a refused message and (-index, receivers)
 * for one that reached fewer than `ARGV[1]` subscribers, 1-based; empty when all went out.
 *
 * The channels of one call belong to different slots, which a script may touch only when
 * declared so (`allow-cross-slot-keys`, Redis 7) and only where every slot is served by the node
 * running it. Redis refuses declared keys of more than one slot (CROSSSLOT) even with that flag,
 * so the only declared key is the first message's channel: ioredis routes the call by it, and
 * the node answers MOVED or ASK when it does not serve it. Any other channel whose slot is not
 * on this node (a stale slot map, a slot migrating) fails alone inside the script ("non local
 * key") and is sent again by itself, routed by ioredis (see `publishByMaster`).
 */
const SHARD_PUBLISH_BATCH_LUA = `#!lua flags=allow-cross-slot-keys\n${batchLua('SPUBLISH')}`;

/** A Cluster client with the sharded batch command defined on it. */
export interface ShardBatchPublisher extends Cluster {
  /** Key: the first message's channel; arguments: expected receivers, then channel, payload, ... */
  wseShardPublishBatch(firstChannel: string, expected: number, ...args: (string | Buffer)[]): Promise<BatchReply>;
}

/** Defines `wseShardPublishBatch` on `cluster` (EVALSHA, falling back to EVAL on each node's first use). */
export function defineShardPublishBatch(cluster: Cluster): asserts cluster is ShardBatchPublisher {
  cluster.defineCommand('wseShardPublishBatch', { numberOfKeys: 1, lua: SHARD_PUBLISH_BATCH_LUA });
}

/** A sharded publish that got no answer in time: it may still be delivered. */
export const LATE = 'no answer from the shard in time';
/** A message published on its shard whose copy on the classic bus (for the globs) was refused. */
export const SHORT = 'its copy for the glob subscribers was refused';

/** Resolves `alone` for a message that went out. */
export const PUBLISHED = (): undefined => undefined;

/** A one-message batch reply as the message's outcome (see `publishByMaster`). */
export function outcomeOfOne(reply: BatchReply): string | undefined {
  if (reply.length === 0) return undefined;
  return Number(reply[0]) > 0 ? String(reply[1]) : SHORT;
}

/** How `publishByMaster` sends the messages of one batch (index 0 .. count - 1). */
export interface ByMasterSender {
  /** Whether messages may travel grouped in scripts (false after Redis refused the scripts). */
  readonly grouped: boolean;
  /** The master (`host:port`) owning message `index`'s slot in the client's slot map, if known. */
  ownerOf(index: number): string | undefined;
  /** One command with these messages, all on one master (first one routes it); the batch reply. */
  group(indexes: readonly number[]): Promise<BatchReply>;
  /**
   * Message `index` alone, routed by ioredis (which follows MOVED and ASK): resolves with its
   * outcome (undefined: published; SHORT; an error text), rejects when refused.
   */
  alone(index: number): Promise<string | undefined>;
  /**
   * Whether a rejected group command ran none of its messages and they should go alone instead
   * (a redirection, scripts refused); otherwise they are refused with its error.
   */
  sendAlone(error: unknown): boolean;
}

/**
 * Publishes `count` messages on a cluster: grouped by the master owning each one's slot, one
 * command per master with two messages or more, and alone whatever is the only one of its
 * master, has no known owner or failed inside its group. Resolves
 * with each message's outcome: undefined once published, the error text when refused, SHORT when
 * only its classic copy was refused, or LATE when no answer came within `waitMs` (one timer for the whole batch), so a master that is down
 * delays only its own messages.
 */
export function publishByMaster(
  count: number,
  sender: ByMasterSender,
  waitMs: number,
): Promise<(string | undefined)[]> {
  return new Promise((resolve) => {
    const outcomes = new Array<string | undefined>(count).fill(LATE);
    let unanswered = count;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve(outcomes);
    };
    const timer = setTimeout(finish, waitMs);
    const settle = (index: number, outcome: string | undefined): void => {
      if (finished) return;
      outcomes[index] = outcome;
      if (--unanswered === 0) finish();
    };
    const alone = (index: number): void => {
      sender.alone(index).then(
        (outcome) => settle(index, outcome),
        (error: unknown) => settle(index, errorText(error)),
      );
    };
    const groups = new Map<string, number[]>();
    for (let i = 0; i < count; i++) {
      const owner = sender.grouped ? sender.ownerOf(i) : undefined;
      if (owner === undefined) {
        alone(i);
        continue;
      }
      const group = groups.get(owner);
      if (group === undefined) groups.set(owner, [i]);
      else group.push(i);
    }
    for (const indexes of groups.values()) {
      // A master with one message of this batch gets it as a plain SPUBLISH: cheaper than a
      // script call for Redis and for the client.
      if (indexes.length === 1) {
        alone(indexes[0]);
        continue;
      }
      sender.group(indexes).then(
        (reply) => {
          if (finished) return;
          if (reply.length === 0) {
            for (let j = 0; j < indexes.length; j++) settle(indexes[j], undefined);
            return;
          }
          // Expected receivers are 0 here: a refused message (it goes again alone) or a short one
          // (its classic copy was refused) is listed.
          const listed = new Map<number, boolean>();
          for (let r = 0; r + 1 < reply.length; r += 2) {
            const position = Number(reply[r]);
            listed.set(Math.abs(position) - 1, position > 0);
          }
          for (let j = 0; j < indexes.length; j++) {
            const refused = listed.get(j);
            if (refused === true) alone(indexes[j]);
            else settle(indexes[j], refused === false ? SHORT : undefined);
          }
        },
        (error: unknown) => {
          if (finished) return;
          if (sender.sendAlone(error)) {
            for (const index of indexes) alone(index);
            return;
          }
          const text = errorText(error);
          for (const index of indexes) settle(index, text);
        },
      );
    }
    if (count === 0) finish();
  });
}

/** A whole group command Redis answered with a redirection: none of it ran on that node. */
export function isRedirection(error: unknown): boolean {
  return (
    error instanceof Error &&
    (/^(MOVED|ASK|CROSSSLOT|TRYAGAIN|CLUSTERDOWN)\b/.test(error.message) ||
      /Too many Cluster redirections/.test(error.message))
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
