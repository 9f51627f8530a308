import calculateSlot from 'cluster-key-slot';
import type { EventEmitter } from 'node:events';
import { Cluster, type ClusterOptions } from 'ioredis';
import type { BatchReply } from './publish-batch.js';
import { quitQuietly } from './quit-quietly.js';
import { defineShardPublishBatch, type ShardBatchPublisher } from './sharded-batch.js';
import { defineClusterHistoryCommands, type ClusterHistoryCommands } from './history-scripts.js';
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
  readonly publisher: ShardBatchPublisher & ClusterHistoryCommands;
  /**
   * Whether batches go as one script call per master (sharded-batch.ts); false from the first
   * time Redis refused the script (an ACL without EVAL), each message then being its own SPUBLISH.
   */
  grouped = true;
  private readonly subscriber: Cluster;
  /** Owner (`host:port`) of each slot that holds a subscribed channel, as last seen. */
  private readonly owners = new Map<number, string>();
  /** Subscribed channels by slot. */
  private readonly channelsBySlot = new Map<number, Set<string>>();
  /** Whether each master (`host:port`) answered its last PING in time. */
  private readonly answering = new Map<string, boolean>();
  private readonly checkTimer: NodeJS.Timeout;
  /** Slots being subscribed again on their new owner by `followMoves` (one attempt at a time). */
  private readonly following = new Set<number>();
  /** Each subscribed slot's marker channel (see `followMoves`); absent where none hashes there. */
  private readonly markerChannels = new Map<number, string>();
  /** Markers on their way back, by payload. */
  private readonly markers = new Map<string, () => void>();
  private markerSeq = 0;
  /** Slots whose subscriptions a master dropped (a slot move); proven live again by `followMoves`. */
  private readonly dropped = new Set<number>();
  private readonly events: ShardLaneEvents;

  constructor(
    cluster: ResolvedRedisCluster,
    private readonly check: { readonly instanceId: string; readonly intervalMs: number; readonly timeoutMs: number },
    events: ShardLaneEvents,
  ) {
    this.events = events;
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
    const publisher = new Cluster(nodes, {
      ...common,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      redisOptions: { ...redisOptions, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false },
    });
    defineShardPublishBatch(publisher);
    defineClusterHistoryCommands(publisher);
    this.publisher = publisher;
    this.subscriber = new Cluster(nodes, { ...common, shardedSubscribers: true });
    this.subscriber.on('smessageBuffer', (channel: Buffer, payload: Buffer) => {
      if (
        channel.length > MARKER_PREFIX_BYTES &&
        channel.toString('latin1', 0, MARKER_PREFIX_BYTES) === MARKER_PREFIX
      ) {
        this.markers.get(payload.toString('utf8'))?.();
        return;
      }
      events.onMessage(channel, payload);
    });
    // ioredis reports a master's unsolicited `sunsubscribe` (a slot moved away from it) only to
    // its own subscriber group, by the event 'moved' on an emitter the Cluster keeps; which slot
    // it was is not said, so every subscribed slot is proven live again (and told) after it.
    const group = (this.subscriber as unknown as { subscriberGroupEmitter?: EventEmitter }).subscriberGroupEmitter;
    group?.on('moved', () => {
      for (const slot of this.channelsBySlot.keys()) this.dropped.add(slot);
    });
    for (const connection of [this.publisher, this.subscriber]) {
      connection.on('error', (error: Error) => events.onError(error.message));
    }
    this.publisher.connect().then(
      () => this.checkShards(),
      () => undefined, // retried by ioredis, reported via 'error'
    );
    this.subscriber.connect().catch(() => undefined);
    this.checkTimer = setInterval(() => {
      this.checkShards();
      this.followMoves();
    }, check.intervalMs);
    this.checkTimer.unref();
  }

  /** `SPUBLISH`: resolves with the receivers on the channel's shard. */
  publish(channel: string, payload: string | Buffer): Promise<number> {
    return this.publisher.spublish(channel, payload).then(Number);
  }

  /**
   * Many SPUBLISHes on the master owning `args[0]`'s slot, as one script call (sharded-batch.ts).
   * `args`: channel, payload, channel, payload, ...; expected receivers are 0 (interest routing).
   */
  publishGroup(args: (string | Buffer)[]): Promise<BatchReply> {
    return this.publisher.wseShardPublishBatch(args[0] as string, 0, ...args);
  }

  /**
   * Resolves once everything published on `channel`'s slot before this call has reached this
   * instance's sharded subscriber: a marker SPUBLISHed now on the slot's marker channel comes
   * back behind them (one master, one subscriber connection, in order). At once when none of
   * this instance's subscriptions is on that slot; after the probe timeout at the latest.
   */
  async barrier(channel: string): Promise<void> {
    await this.provenLive(this.markerChannels.get(calculateSlot(channel)));
  }

  /** The master (`host:port`) owning `channel`'s slot in the publisher's slot map; undefined when unknown. */
  ownerOfChannel(channel: string): string | undefined {
    return this.publisher.slots[calculateSlot(channel)]?.[0];
  }

  /**
   * `SSUBSCRIBE`s the channels, one command per slot they fall in; the first channels of a slot
   * bring the slot's marker channel with them (see `followMoves`).
   */
  async subscribe(channels: string[]): Promise<void> {
    const groups = bySlot(channels);
    for (const [slot, group] of groups) {
      if (this.channelsBySlot.has(slot)) continue;
      const marker = this.markerChannelOf(slot, group[0]);
      if (marker !== undefined) {
        this.markerChannels.set(slot, marker);
        group.push(marker);
      }
    }
    await Promise.all([...groups].map(([, group]) => this.subscriber.ssubscribe(...group)));
    for (const [slot, group] of groups) {
      let set = this.channelsBySlot.get(slot);
      if (set === undefined) {
        set = new Set();
        this.channelsBySlot.set(slot, set);
        const owner = this.ownerOf(slot);
        if (owner !== undefined) this.owners.set(slot, owner);
      }
      const marker = this.markerChannels.get(slot);
      for (const channel of group) if (channel !== marker) set.add(channel);
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
        this.dropped.delete(slot);
        const marker = this.markerChannels.get(slot);
        this.markerChannels.delete(slot);
        if (marker !== undefined) group.push(marker);
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

  /**
   * Slot moves (resharding, `CLUSTER SETSLOT`). The old owner drops its sharded subscribers of a
   * moved slot (an unsolicited `sunsubscribe`) and ioredis subscribes them again on the owner it
   * then reads from the slot map, which a node that has not heard of the move yet can still name
   * wrongly. So each probe interval this compares the owner of every subscribed slot in the
   * publisher's map (which MOVED replies to the publishes keep current) with the owner the slot
   * was last proven on, and takes every slot a master dropped (`dropped`, see the constructor).
   * For a slot that moved it subscribes the slot's channels again (an
   * SSUBSCRIBE reaching the wrong node is answered MOVED, which makes ioredis read the map again)
   * and publishes a marker on the slot's marker channel: once the marker is back, this instance's
   * subscriptions of that slot are live on the master that took the SPUBLISH, and only then are
   * their clients told (`onMoved`, a `resync`), so a message published after it is not missed.
   * A marker that does not come back within the probe timeout is tried again next interval.
   */
  private followMoves(): void {
    for (const [slot, channels] of this.channelsBySlot) {
      const owner = this.ownerOf(slot);
      const before = this.owners.get(slot);
      const dropped = this.dropped.has(slot);
      if (owner === undefined || (owner === before && !dropped) || this.following.has(slot)) continue;
      if (before === undefined && !dropped) {
        this.owners.set(slot, owner); // the map was not loaded when the slot was subscribed
        continue;
      }
      this.following.add(slot);
      const group = [...channels];
      const marker = this.markerChannels.get(slot);
      this.subscriber.ssubscribe(...group, ...(marker === undefined ? [] : [marker])).catch(() => undefined);
      this.provenLive(marker).then((live) => {
        this.following.delete(slot);
        if (!live || this.channelsBySlot.get(slot) !== channels) return;
        this.owners.set(slot, owner);
        this.dropped.delete(slot);
        this.events.onMoved(group.filter((channel) => channels.has(channel)));
      });
    }
  }

  /** Publishes a marker on `channel` and resolves true once it came back, false after the probe timeout. */
  private provenLive(channel: string | undefined): Promise<boolean> {
    // Without a marker channel (no name of ours hashes to the slot) the move is told at once.
    if (channel === undefined) return Promise.resolve(true);
    const token = `${this.check.instanceId}:${++this.markerSeq}`;
    return new Promise<boolean>((resolve) => {
      const done = (live: boolean): void => {
        clearTimeout(timer);
        this.markers.delete(token);
        resolve(live);
      };
      const timer = setTimeout(() => done(false), this.check.timeoutMs);
      timer.unref();
      this.markers.set(token, () => done(true));
      this.publisher.spublish(channel, token).catch(() => done(false));
    });
  }

  /**
   * This instance's marker channel for `slot`: a name outside the topic space that hashes to the
   * slot, built from one of the slot's channels (its hash tag, or the channel as one).
   */
  private markerChannelOf(slot: number, channel: string): string | undefined {
    const base = `${MARKER_PREFIX}${this.check.instanceId}:`;
    for (const name of [`${base}{${channel}}`, base + channel]) if (calculateSlot(name) === slot) return name;
    return undefined;
  }

  /**
   * The master that owns `slot` (`host:port`), in the publisher's map of the cluster: the one
   * MOVED replies keep current.
   */
  private ownerOf(slot: number): string | undefined {
    return this.publisher.slots[slot]?.[0];
  }
}

/** Starts the marker channels (outside every topic prefix, as the probes' channels). */
const MARKER_PREFIX = '__wse_slot__:';
const MARKER_PREFIX_BYTES = MARKER_PREFIX.length;

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
