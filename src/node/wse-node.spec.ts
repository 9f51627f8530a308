import { describe, expect, it } from '@jest/globals';
import type {
  RedisMessageHandler,
  RedisPubSubService,
  RedisResyncHandler,
} from '../broker/redis/redis-pubsub.service.js';
import { RedisStats } from '../broker/redis/redis-stats.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { MemoryHistory } from '../hub/history/memory-history.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import type { HistoryPosition, HistoryRead } from '../protocol/history.js';
import { SystemFrames, type WireFrame } from '../protocol/outbound-frame.js';
import type { TopicSubscriber } from '../protocol/topic-subscriber.js';
import { RecoveryStats, type HistoryStore, type TopicHistoryService } from './topic-history.service.js';
import { WseNode, type RecoveryOutcome } from './wse-node.js';

/**
 * The recovery seam of WseNode with a store that answers later, as one in Redis does: live
 * messages that arrive while the history is read are held, then follow the replay, minus those
 * the replay already covered. Plain objects stand in for the broker and the history service;
 * the registry is the real one.
 */

const TOPIC = 'h:room';

/** A subscriber that keeps the payload text of every frame it is sent. */
class RecordingSubscriber implements TopicSubscriber {
  readonly topics = new Set<string>();
  lastDeliverySeq = 0;
  readonly texts: string[] = [];
  constructor(readonly id: string) {}
  send(frame: WireFrame): boolean {
    const length = frame[1] & 0x7f;
    const header = length < 126 ? 2 : length === 126 ? 4 : 10;
    this.texts.push(frame.subarray(header).toString('utf8'));
    return true;
  }
  offsets(): number[] {
    return this.texts.map((text) => (JSON.parse(text) as { o: number }).o);
  }
}

/** A store over a MemoryHistory whose reads are taken at once but answered when the spec says. */
class LateStore implements HistoryStore {
  readonly pending: Array<() => void> = [];
  failNext = false;
  constructor(readonly memory: MemoryHistory) {}
  position(topic: string): Promise<HistoryPosition> {
    return this.later(this.memory.position(topic));
  }
  read(topic: string, epoch: string, offset: number): Promise<HistoryRead> {
    return this.later(this.memory.read(topic, epoch, offset));
  }
  answerAll(): void {
    for (const answer of this.pending.splice(0)) answer();
  }
  private later<T>(value: T): Promise<T> {
    const fail = this.failNext;
    this.failNext = false;
    return new Promise<T>((resolve, reject) =>
      this.pending.push(() => (fail ? reject(new Error('Redis is not connected')) : resolve(value))),
    );
  }
}

function rig() {
  const registry = new TopicRegistryService();
  const memory = new MemoryHistory({ size: 100, ttlMs: 60_000, maxReplay: 100, maxMemoryBytes: 1e7 }, () => 0, 'e');
  const store = new LateStore(memory);
  let onMessage: RedisMessageHandler = () => undefined;
  let onResync: RedisResyncHandler = () => undefined;
  const redis = {
    configured: true,
    stats: new RedisStats(),
    setMessageHandler: (handler: RedisMessageHandler) => (onMessage = handler),
    setResyncHandler: (handler: RedisResyncHandler) => (onResync = handler),
    publish: () => undefined,
  };
  const history = {
    enabled: true,
    stats: new RecoveryStats(),
    memory: undefined,
    isHistoryTopic: (topic: string) => topic.startsWith('h:'),
    store: () => store,
  };
  const options = { compatibility: { msgpack: true, compression: true, urlTopics: true } } as ResolvedWseOptions;
  const node = new WseNode(
    options,
    registry,
    redis as unknown as RedisPubSubService,
    new SystemFrames(false, false, () => 'id'),
    history as unknown as TopicHistoryService,
  );
  node.onModuleInit();
  /** A message published through "Redis": recorded and stamped, then handed to the node. */
  const arrive = (n: number): Buffer => {
    const stamped = memory.append(TOPIC, Buffer.from(`{"n":${n}}`));
    onMessage(TOPIC, stamped, undefined);
    return stamped;
  };
  /** Recorded in history, its Pub/Sub delivery still to come (`arrive` it later with `deliver`). */
  const recordOnly = (n: number): Buffer => memory.append(TOPIC, Buffer.from(`{"n":${n}}`));
  const deliver = (stamped: Buffer): void => onMessage(TOPIC, stamped, undefined);
  const subscriber = (id: string, topics: string[] = []): RecordingSubscriber => {
    const s = new RecordingSubscriber(id);
    registry.register(s as never);
    if (topics.length > 0) registry.subscribeConnection(id, topics);
    return s;
  };
  return {
    node,
    registry,
    store,
    memory,
    arrive,
    recordOnly,
    deliver,
    subscriber,
    resync: (ms: number) => onResync(ms),
  };
}

/** Resolves once the microtasks behind a store answer have run. */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('WseNode.recover with a store that answers later', () => {
  it('holds live messages during the read and sends them after the replay, none twice, none missing', async () => {
    const { node, registry, store, arrive, recordOnly, deliver, subscriber } = rig();
    for (let n = 1; n <= 3; n++) arrive(n);
    const late = recordOnly(4); // in history already, its Pub/Sub delivery arrives during the read
    const client = subscriber('c1');
    let outcome: RecoveryOutcome | undefined;
    node.recover(client, [{ topic: TOPIC, epoch: 'e.1', offset: 2 }], [], (o) => {
      outcome = o;
      registry.subscribeConnection('c1', [TOPIC]);
      o.replay(TOPIC);
    });
    deliver(late);
    arrive(5);
    arrive(6);
    expect(client.texts).toEqual([]);
    store.answerAll();
    await settled();
    expect(outcome?.read(TOPIC)).toMatchObject({ recovered: true, position: { epoch: 'e.1', offset: 4 } });
    expect(client.offsets()).toEqual([3, 4, 5, 6]);
    arrive(7);
    expect(client.offsets()).toEqual([3, 4, 5, 6, 7]);
  });

  it('keeps a connection already subscribed off the live path during the read, then puts it back', async () => {
    const { node, registry, store, arrive, subscriber } = rig();
    const client = subscriber('c1', [TOPIC]);
    arrive(1);
    arrive(2);
    node.recover(client, [{ topic: TOPIC, epoch: 'e.1', offset: 0 }], [], (o) => {
      registry.subscribeConnection('c1', [TOPIC]);
      o.replay(TOPIC);
    });
    arrive(3);
    expect(client.offsets()).toEqual([1, 2]);
    store.answerAll();
    await settled();
    // The replay repeats 1 and 2 (duplicates by (tp, e, o)), then 3 in its place, once.
    expect(client.offsets()).toEqual([1, 2, 1, 2, 3]);
    arrive(4);
    expect(client.offsets()).toEqual([1, 2, 1, 2, 3, 4]);
  });

  it('sends held messages but no replay when the read finds the range gone', async () => {
    const { node, registry, store, arrive, subscriber } = rig();
    arrive(1);
    const client = subscriber('c1');
    let outcome: RecoveryOutcome | undefined;
    node.recover(client, [{ topic: TOPIC, epoch: 'another', offset: 0 }], [], (o) => {
      outcome = o;
      registry.subscribeConnection('c1', [TOPIC]);
      o.replay(TOPIC);
    });
    arrive(2);
    store.answerAll();
    await settled();
    expect(outcome?.read(TOPIC)).toMatchObject({ recovered: false, reason: 'epoch_changed' });
    expect(client.offsets()).toEqual([2]);
  });

  it('gives up the held messages when more arrive than a hold keeps', async () => {
    const { node, registry, store, arrive, subscriber } = rig();
    const client = subscriber('c1');
    let outcome: RecoveryOutcome | undefined;
    node.recover(client, [{ topic: TOPIC, epoch: 'e.1', offset: 0 }], [], (o) => {
      outcome = o;
      registry.subscribeConnection('c1', [TOPIC]);
      o.replay(TOPIC);
    });
    for (let n = 1; n <= 10_001; n++) arrive(n);
    store.answerAll();
    await settled();
    expect(outcome?.overflowed(TOPIC)).toBe(true);
    expect(client.texts).toEqual([]);
    arrive(10_002);
    expect(client.offsets()).toEqual([10_002]);
  });

  it('reports a failed read as unknown and still releases the held messages', async () => {
    const { node, registry, store, arrive, subscriber } = rig();
    const client = subscriber('c1');
    store.failNext = true;
    let outcome: RecoveryOutcome | undefined;
    node.recover(client, [{ topic: TOPIC, epoch: 'e.1', offset: 0 }], [], (o) => {
      outcome = o;
      registry.subscribeConnection('c1', [TOPIC]);
      o.replay(TOPIC);
    });
    arrive(1);
    store.answerAll();
    await settled();
    expect(outcome?.read(TOPIC)).toBeUndefined();
    expect(client.offsets()).toEqual([1]);
    arrive(2);
    expect(client.offsets()).toEqual([1, 2]);
  });

  it('marks a recovery cancelled when the connection unsubscribes during the read', async () => {
    const { node, store, subscriber } = rig();
    const client = subscriber('c1');
    let outcome: RecoveryOutcome | undefined;
    node.recover(client, [{ topic: TOPIC, epoch: 'e.1', offset: 0 }], [], (o) => (outcome = o));
    node.cancelRecovery(client, [TOPIC]);
    store.answerAll();
    await settled();
    expect(outcome?.cancelled(TOPIC)).toBe(true);
  });

  it('reads positions of position-only topics too, and answers once all are back', async () => {
    const { node, store, arrive, subscriber } = rig();
    arrive(1);
    const client = subscriber('c1', [TOPIC]);
    let outcome: RecoveryOutcome | undefined;
    node.recover(client, [], [TOPIC], (o) => (outcome = o));
    expect(outcome).toBeUndefined();
    store.answerAll();
    await settled();
    expect(outcome?.position(TOPIC)).toEqual({ epoch: 'e.1', offset: 1 });
  });
});

describe('WseNode.sendResync with history topics', () => {
  it('lists the current position of each history topic of a connection under recovery', async () => {
    const { store, arrive, subscriber, resync } = rig();
    arrive(1);
    arrive(2);
    const client = subscriber('c1', [TOPIC, 'plain', 'h:*']);
    resync(1500);
    expect(client.texts).toEqual([]);
    store.answerAll();
    await settled();
    expect(client.texts.map((text) => JSON.parse(text))).toEqual([
      {
        c: 'WSE',
        t: 'resync',
        p: {
          reason: 'redis_reconnected',
          topics: [TOPIC, 'plain', 'h:*'],
          down_ms: 1500,
          recovery: { [TOPIC]: { epoch: 'e.1', offset: 2 } },
        },
        v: 1,
      },
    ]);
  });
});
