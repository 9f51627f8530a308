import { randomBytes } from 'node:crypto';
import { notRecoveredReason, type HistoryPosition, type HistoryRead } from '../../protocol/history.js';
import { historyKeys, type HistoryCommands } from './history-scripts.js';
import { clusterHistoryKeys } from './slot-tags.js';

/** What the Redis history needs to know of the options. */
export interface RedisHistoryOptions {
  readonly prefix: string;
  readonly size: number;
  readonly ttlMs: number;
  readonly maxReplay: number;
  /** A Redis Cluster: the keys are on each topic's channel slot (slot-tags.ts). @default false */
  readonly clustered?: boolean;
}

/** The connection reads go through: a Redis, or a cluster's client (routing by the stream key). */
export type HistoryReader = Pick<HistoryCommands, 'wseHistoryRead'>;

/** One message of a batch: on a history topic when `topic` is set, plain otherwise. */
export interface BatchMessage {
  readonly channel: string;
  /** The payload's bytes or text; on a history topic, a JSON object's (see `isStampable`). */
  readonly payload: string | Buffer;
  /** The history topic, for a message to number, keep and stamp. */
  readonly topic?: string;
}

/**
 * The history store in Redis: reads (positions and recoveries, atomic, one script call each) and
 * the arguments of the batched append-and-publish script (history-scripts.ts). Any instance
 * reads what any instance appended. In a cluster the reads go through the cluster's client,
 * routed by the topic's keys, which are on the slot of its channel (slot-tags.ts).
 */
export class RedisHistory {
  /** Part of every epoch this instance makes, so two instances starting one at once differ. */
  private readonly nonce = randomBytes(3).toString('hex');

  constructor(
    private readonly options: RedisHistoryOptions,
    private readonly connection: () => HistoryReader | undefined,
  ) {}

  /** Where `topic` stands; starts its history (a new epoch, offset 0) when it has none. */
  async position(topic: string): Promise<HistoryPosition> {
    const reply = await this.call(topic, -1, '');
    return { epoch: String(reply[0]), offset: Number(reply[1]) };
  }

  /** Everything after `(epoch, offset)`, or why it cannot be had. */
  async read(topic: string, epoch: string, offset: number): Promise<HistoryRead> {
    const reply = await this.call(topic, offset, epoch);
    const position = { epoch: String(reply[0]), offset: Number(reply[1]) };
    // Read as text and encoded here: a Buffer reply may be a view of ioredis's parser buffer,
    // which later replies overwrite before this code runs.
    const entries = reply.slice(3).map((entry) => Buffer.from(String(entry), 'utf8'));
    const heldFrom = entries.length === position.offset - offset ? Number(reply[2]) : position.offset + 1;
    const reason = notRecoveredReason(position, heldFrom, epoch, offset, this.options.maxReplay);
    if (reason !== undefined) return { recovered: false, position, reason };
    return { recovered: true, position, entries };
  }

  /**
   * The arguments of one `wsePublishHistoryBatch` command for `messages`, in order: key count,
   * keys (stream, meta of each history topic, once), then expected receivers, size, ttlMs, nonce,
   * the number of history topics and their JSON, and channel, topic number (0: plain), payload
   * or tail per message.
   */
  batchArguments(expected: number, messages: readonly BatchMessage[]): (string | number | Buffer)[] {
    const numbers = new Map<string, number>();
    const keys: string[] = [];
    const topicsJson: string[] = [];
    const perMessage: (string | number | Buffer)[] = [];
    for (const message of messages) {
      const topic = message.topic;
      if (topic === undefined) {
        perMessage.push(message.channel, 0, message.payload);
        continue;
      }
      let number = numbers.get(topic);
      if (number === undefined) {
        number = numbers.size + 1;
        numbers.set(topic, number);
        const { stream, meta } = historyKeys(this.options.prefix, topic);
        keys.push(stream, meta);
        topicsJson.push(JSON.stringify(topic));
      }
      perMessage.push(message.channel, number, tailOf(message.payload));
    }
    return [
      keys.length,
      ...keys,
      expected,
      this.options.size,
      this.options.ttlMs,
      this.nonce,
      topicsJson.length,
      ...topicsJson,
      ...perMessage,
    ];
  }

  /**
   * The arguments of one `wseClusterHistoryBatch` command (history-scripts.ts) for the messages
   * `indexes` of `messages`, all on one master: the first one's channel (the declared key), then
   * expected receivers (0: interest routing), size, ttlMs, nonce, the number of history topics,
   * three per topic (its JSON, stream and meta keys), and four per message: channel, its topic's
   * number (0: plain), payload or tail, and `1` when `classic[index]` (its copy goes on the
   * classic bus too), empty otherwise.
   */
  clusterArguments(
    messages: readonly BatchMessage[],
    indexes: readonly number[],
    classic: readonly boolean[],
  ): [string, ...(string | number | Buffer)[]] {
    const numbers = new Map<string, number>();
    const perTopic: string[] = [];
    const perMessage: (string | number | Buffer)[] = [];
    for (const index of indexes) {
      const message = messages[index];
      const copy = classic[index] ? '1' : '';
      const topic = message.topic;
      if (topic === undefined) {
        perMessage.push(message.channel, 0, message.payload, copy);
        continue;
      }
      let number = numbers.get(topic);
      if (number === undefined) {
        number = numbers.size + 1;
        numbers.set(topic, number);
        const { stream, meta } = clusterHistoryKeys(this.options.prefix, topic);
        perTopic.push(JSON.stringify(topic), stream, meta);
      }
      perMessage.push(message.channel, number, tailOf(message.payload), copy);
    }
    return [
      messages[indexes[0]].channel,
      0,
      this.options.size,
      this.options.ttlMs,
      this.nonce,
      numbers.size,
      ...perTopic,
      ...perMessage,
    ];
  }

  private async call(topic: string, since: number, epoch: string): Promise<(string | number)[]> {
    const redis = this.connection();
    if (redis === undefined) throw new Error('Redis is not connected');
    const { stream, meta } = this.options.clustered
      ? clusterHistoryKeys(this.options.prefix, topic)
      : historyKeys(this.options.prefix, topic);
    return redis.wseHistoryRead(stream, meta, this.options.ttlMs, this.nonce, since, epoch, this.options.maxReplay);
  }
}

/**
 * The payload after its opening brace, as a view (no copy): `}` for an empty object, whatever
 * white space it held (the script adds the comma the stamp needs before any other tail).
 */
function tailOf(payload: string | Buffer): string | Buffer {
  if (typeof payload === 'string') return /^\{\s*\}$/.test(payload) ? '}' : payload.slice(1);
  for (let i = 1; i < payload.length - 1; i++) {
    const c = payload[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return payload.subarray(1);
  }
  return '}';
}
