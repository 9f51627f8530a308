import calculateSlot from 'cluster-key-slot';
import { Cluster, type ClusterOptions } from 'ioredis';
import { quitQuietly } from './quit-quietly.js';
import type { ResolvedRedisCluster } from '../../config/wse-module-options.interface.js';

/** One master of the cluster, as the health body reports it (`redis_shards`). */
export interface ShardState {
  /** `host:port` */
  readonly node: string;
  /** It answered this instance's last PING within the probe timeout. */
  readonly connected: boolean;
}

/** What the shard lane reports. */
export interface ShardLaneEvents {
  /** A message of a sharded channel (SSUBSCRIBE), as Redis sent it. */
  onMessage(channel: Buffer, payload: Buffer): void;
  /**
   * The cluster's slots moved and the sharded subscriptions were made again on their new owners;
   * `channels` are the subscribed channels whose slot changed owner (their messages published
   * meanwhile reached nobody here).
   */
  onMoved(channels: string[]): void;
  onError(message: string): void;
}

/**
 * Sharded pub/sub on a Redis Cluster (CONTRACT section 9): `SPUBLISH` on the publisher, routed
 * by the channel's slot, and `SSUBSCRIBE` on ioredis's sharded subscribers, one connection per
 * master, which follow slot moves (MOVED replies and the unsolicited `sunsubscribe` a master
 * sends when a slot leaves it). A channel's messages are handled by its shard alone, so publish
 * capacity grows with the number of masters.
 *
 * Redis takes the channels of one SSUBSCRIBE only within one slot: the subscribe commands of a
 * tick are grouped by slot here.
 */
export class ShardLane {
  readonly publisher: Cluster;
  private readonly subscriber: Cluster;
  /** Owner (`host:port`) of each slot that holds a subscribed channel, as last seen. */
  private readonly owners = new Map<number, string>();
  /** Subscribed channels by slot. */
  private readonly channelsBySlot = new Map<number, Set<string>>();
  private subscribersReadySeen = false;
  /** Whether each master (`host:port`) answered its last PING in time. */
  private readonly answering = new Map<string, boolean>();
  private readonly checkTimer: NodeJS.Timeout;

  constructor(
    cluster: ResolvedRedisCluster,
    private readonly check: { readonly intervalMs: number; readonly timeoutMs: number },
    events: ShardLaneEvents,
  ) {
    const nodes = cluster.nodes.map((node) => ({ host: node.host, port: node.port }));
    const redisOptions = { username: cluster.username, password: cluster.password, connectTimeout: 5000 };
    // The slot map is read again every 5 s as well: a master that came back (or a new owner) is
    // used within that time even when no command ran into a MOVED.
    const common: ClusterOptions = {
      lazyConnect: true,
      redisOptions,
      slotsRefreshTimeout: 2000,
      slotsRefreshInterval: 5000,
    };
    // As the standalone publisher: nothing waits in a client-side queue, and only our pipeline
    // decides what is sent again.
    this.publisher = new Cluster(nodes, {
      ...common,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      redisOptions: { ...redisOptions, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false },
    });
    this.subscriber = new Cluster(nodes, { ...common, shardedSubscribers: true });
    this.subscriber.on('smessageBuffer', (channel: Buffer, payload: Buffer) => events.onMessage(channel, payload));
    this.subscriber.on('subscribersReady', () => {
      // The first is the start; each later one follows a change of the cluster's slots.
      if (!this.subscribersReadySeen) {
        this.subscribersReadySeen = true;
        this.recordOwners();
        return;
      }
      const moved = this.recordOwners();
      if (moved.length > 0) events.onMoved(moved);
    });
    for (const connection of [this.publisher, this.subscriber]) {
      connection.on('error', (error: Error) => events.onError(error.message));
    }
    this.publisher.connect().then(
      () => this.checkShards(),
      () => undefined, // retried by ioredis, reported via 'error'
    );
    this.subscriber.connect().catch(() => undefined);
    this.checkTimer = setInterval(() => this.checkShards(), check.intervalMs);
    this.checkTimer.unref();
  }

  /** `SPUBLISH`: resolves with the receivers on the channel's shard. */
  publish(channel: string, payload: string | Buffer): Promise<number> {
    return this.publisher.spublish(channel, payload).then(Number);
  }

  /** `SSUBSCRIBE`s the channels, one command per slot they fall in. */
  async subscribe(channels: string[]): Promise<void> {
    const groups = bySlot(channels);
    await Promise.all([...groups].map(([, group]) => this.subscriber.ssubscribe(...group)));
    for (const [slot, group] of groups) {
      let set = this.channelsBySlot.get(slot);
      if (set === undefined) {
        set = new Set();
        this.channelsBySlot.set(slot, set);
        const owner = this.ownerOf(slot);
        if (owner !== undefined) this.owners.set(slot, owner);
      }
      for (const channel of group) set.add(channel);
    }
  }

  async unsubscribe(channels: string[]): Promise<void> {
    const groups = bySlot(channels);
    for (const [slot, group] of groups) {
      const set = this.channelsBySlot.get(slot);
      if (set === undefined) continue;
      for (const channel of group) set.delete(channel);
      if (set.size === 0) {
        this.channelsBySlot.delete(slot);
        this.owners.delete(slot);
      }
    }
    await Promise.all([...groups].map(([, group]) => this.subscriber.sunsubscribe(...group)));
  }

  /**
   * Every master and whether it answered its last PING in time (false until it has answered
   * one). The masters are those owning slots in the cluster's slot map, so a master that died
   * stays listed, not connected, until the cluster gives its slots to another.
   */
  shards(): ShardState[] {
    return [...this.answering].map(([node, connected]) => ({ node, connected }));
  }

  /** PINGs every master once, each on its own connection, and records which answered in time. */
  private checkShards(): void {
    const owners = new Set<string>();
    const slots = this.publisher.slots;
    for (let slot = 0; slot < SLOTS; slot++) {
      const owner = slots[slot]?.[0];
      if (owner !== undefined) owners.add(owner);
    }
    const masters = this.publisher.nodes('master');
    const connections = new Map<string, (typeof masters)[number]>(
      masters.map((node) => [`${node.options.host}:${node.options.port}`, node] as const),
    );
    for (const address of connections.keys()) owners.add(address);
    for (const address of this.answering.keys()) if (!owners.has(address)) this.answering.delete(address);
    for (const address of owners) {
      const node = connections.get(address);
      if (node === undefined) {
        this.answering.set(address, false);
        continue;
      }
      const timer = setTimeout(() => this.answering.set(address, false), this.check.timeoutMs);
      timer.unref();
      node.ping().then(
        () => {
          clearTimeout(timer);
          this.answering.set(address, true);
        },
        () => {
          clearTimeout(timer);
          this.answering.set(address, false);
        },
      );
    }
  }

  /** The publishing side has the cluster's slot map and can route. */
  get ready(): boolean {
    return this.publisher.status === 'ready';
  }

  async stop(): Promise<void> {
    clearInterval(this.checkTimer);
    await Promise.all([quitQuietly(this.publisher), quitQuietly(this.subscriber)]);
  }

  /** Notes the owner of every slot holding a subscribed channel; returns the channels whose owner changed. */
  private recordOwners(): string[] {
    const moved: string[] = [];
    for (const [slot, channels] of this.channelsBySlot) {
      const owner = this.ownerOf(slot);
      const before = this.owners.get(slot);
      if (owner !== undefined) this.owners.set(slot, owner);
      if (before !== undefined && owner !== undefined && before !== owner) moved.push(...channels);
    }
    return moved;
  }

  /** The master that owns `slot` in the subscriber's view of the cluster (`host:port`). */
  private ownerOf(slot: number): string | undefined {
    return this.subscriber.slots[slot]?.[0];
  }
}

/** Slots of a Redis Cluster. */
const SLOTS = 16_384;

function bySlot(channels: readonly string[]): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const channel of channels) {
    const slot = calculateSlot(channel);
    const group = groups.get(slot);
    if (group === undefined) groups.set(slot, [channel]);
    else group.push(channel);
  }
  return groups;
}
