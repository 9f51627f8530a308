import { randomBytes } from 'node:crypto';
import { notRecoveredReason, type HistoryPosition, type HistoryRead } from '../../protocol/history.js';
import { stampPayload, stampPrefix } from '../../protocol/stamp.js';

/** The settings of the in-memory history (option `recovery`). */
export interface MemoryHistoryOptions {
  /** Messages kept per topic. */
  readonly size: number;
  /** How long a message is kept. */
  readonly ttlMs: number;
  /** Most messages one recovery replays. */
  readonly maxReplay: number;
  /** What all topics' history may hold in all, in bytes (payloads plus bookkeeping). */
  readonly maxMemoryBytes: number;
}

/** Counters of the in-memory history, plain fields read on scrape. */
export class MemoryHistoryStats {
  /** Messages recorded since start. */
  appends = 0;
  /** Messages dropped before their time to make room under `maxMemoryBytes`. */
  evicted = 0;
}

interface HistoryEntry {
  readonly offset: number;
  readonly payload: Buffer;
  readonly atMs: number;
}

interface TopicHistory {
  readonly topic: string;
  readonly epoch: string;
  /** `{"tp":..,"e":..,"o":`, built when the topic's history starts. */
  readonly prefix: Buffer;
  /** The last offset given out. */
  offset: number;
  /** A ring: `count` entries from `head`, oldest first. Grows up to `size` slots. */
  ring: (HistoryEntry | undefined)[];
  head: number;
  count: number;
  /** Last append, read or position: the order in which idle topics are dropped. */
  lastUsedMs: number;
  /** What this topic costs, bookkeeping included (see ENTRY_OVERHEAD_BYTES). */
  bytes: number;
}

/** Bookkeeping estimated per message (entry object, ring slot, the Buffer's own header). */
const ENTRY_OVERHEAD_BYTES = 120;
/** Bookkeeping estimated per topic (state object, map entry), plus its topic and epoch strings. */
const TOPIC_OVERHEAD_BYTES = 200;

/**
 * History without Redis (single-instance mode): the same semantics as the Redis store, from
 * bounded rings in this process.
 *
 * - Each history topic gets an epoch when its history starts (this process's random epoch plus
 *   a counter) and offsets from 1. The epoch changes whenever the history is lost: a process
 *   restart, or the topic's state dropped (idle past `ttlMs`, or evicted for memory), so an old
 *   offset never points into a new sequence.
 * - A topic keeps its last `size` messages; a message older than `ttlMs` is dropped (lazily when
 *   the topic is used, and by `sweep()` for idle topics).
 * - All topics together stay under `maxMemoryBytes`: past it, the oldest messages of the topics
 *   used longest ago go first; a topic left empty is dropped. The message just recorded is kept
 *   even when it alone is over the budget.
 *
 * Topics sit in a Map in order of last use (moved to the end on each use), which makes both the
 * idle sweep and the memory eviction start at the right end without a priority queue.
 * Clock and epoch source are constructor parameters so specs run on fake time.
 */
export class MemoryHistory {
  readonly stats = new MemoryHistoryStats();
  private readonly topics = new Map<string, TopicHistory>();
  private readonly processEpoch: string;
  private generation = 0;
  private bytes = 0;

  constructor(
    private readonly options: MemoryHistoryOptions,
    private readonly now: () => number = Date.now,
    processEpoch: string = randomBytes(4).toString('hex'),
  ) {
    this.processEpoch = processEpoch;
  }

  /** Bytes held by every topic's history, bookkeeping included. */
  get memoryBytes(): number {
    return this.bytes;
  }

  /** Topics with a history (or a position handed out) at the moment. */
  get topicCount(): number {
    return this.topics.size;
  }

  /**
   * Records a message and returns it stamped with the topic's next offset. `payload` must be a
   * JSON object's bytes (see `isStampable`); the stamp is spliced in once, here.
   */
  append(topic: string, payload: Buffer): Buffer {
    const now = this.now();
    const state = this.use(topic, now);
    const offset = ++state.offset;
    const stamped = stampPayload(state.prefix, offset, payload);
    if (state.count === this.options.size) this.dropOldest(state);
    this.push(state, { offset, payload: stamped, atMs: now });
    this.stats.appends++;
    this.enforceBudget(state);
    return stamped;
  }

  /**
   * Where `topic` stands now. Starts its history (an epoch, offset 0) when it has none, so the
   * position handed to a subscriber stays valid while the topic is in use.
   */
  position(topic: string): HistoryPosition {
    const state = this.use(topic, this.now());
    this.enforceBudget(state);
    return { epoch: state.epoch, offset: state.offset };
  }

  /** Everything after `(epoch, offset)`, or why it cannot be had (see `notRecoveredReason`). */
  read(topic: string, epoch: string, offset: number): HistoryRead {
    const state = this.use(topic, this.now());
    this.enforceBudget(state);
    const position = { epoch: state.epoch, offset: state.offset };
    const oldest = state.count > 0 ? (state.ring[state.head] as HistoryEntry).offset : state.offset + 1;
    const reason = notRecoveredReason(position, oldest, epoch, offset, this.options.maxReplay);
    if (reason !== undefined) return { recovered: false, position, reason };
    const missed = state.offset - offset;
    const entries = new Array<Buffer>(missed);
    const ring = state.ring;
    const first = state.count - missed;
    for (let i = 0; i < missed; i++)
      entries[i] = (ring[(state.head + first + i) % ring.length] as HistoryEntry).payload;
    return { recovered: true, position, entries };
  }

  /**
   * Drops the topics used last more than `ttlMs` ago (all their messages have expired), oldest
   * first, stopping at the first one still in use. Run periodically by the owner.
   */
  sweep(): void {
    const expiredBefore = this.now() - this.options.ttlMs;
    for (const state of this.topics.values()) {
      if (state.lastUsedMs > expiredBefore) break;
      this.remove(state);
    }
  }

  /** Forgets everything (shutdown). */
  clear(): void {
    this.topics.clear();
    this.bytes = 0;
  }

  // ---- internals -----------------------------------------------------------------------------

  /** The topic's state, created when missing, with expired messages dropped, moved to the end. */
  private use(topic: string, now: number): TopicHistory {
    let state = this.topics.get(topic);
    if (state === undefined) {
      const epoch = `${this.processEpoch}.${(++this.generation).toString(36)}`;
      state = {
        topic,
        epoch,
        prefix: stampPrefix(topic, epoch),
        offset: 0,
        ring: [],
        head: 0,
        count: 0,
        lastUsedMs: now,
        bytes: TOPIC_OVERHEAD_BYTES + 2 * (topic.length + epoch.length),
      };
      this.bytes += state.bytes;
    } else {
      this.topics.delete(topic);
      const expiredBefore = now - this.options.ttlMs;
      while (state.count > 0 && (state.ring[state.head] as HistoryEntry).atMs <= expiredBefore) this.dropOldest(state);
    }
    state.lastUsedMs = now;
    this.topics.set(topic, state);
    return state;
  }

  private push(state: TopicHistory, entry: HistoryEntry): void {
    let ring = state.ring;
    if (state.count === ring.length) {
      if (state.head !== 0) {
        // Wrapped and full below `size`: lay it out oldest first so it can grow at the end.
        ring = ring.slice(state.head).concat(ring.slice(0, state.head));
        state.ring = ring;
        state.head = 0;
      }
      ring.push(entry);
    } else {
      ring[(state.head + state.count) % ring.length] = entry;
    }
    state.count++;
    const cost = entry.payload.length + ENTRY_OVERHEAD_BYTES;
    state.bytes += cost;
    this.bytes += cost;
  }

  private dropOldest(state: TopicHistory): void {
    const ring = state.ring;
    const entry = ring[state.head] as HistoryEntry;
    ring[state.head] = undefined;
    state.count--;
    state.head = state.count === 0 ? 0 : (state.head + 1) % ring.length;
    if (state.count === 0) state.ring = [];
    const cost = entry.payload.length + ENTRY_OVERHEAD_BYTES;
    state.bytes -= cost;
    this.bytes -= cost;
  }

  private remove(state: TopicHistory): void {
    this.topics.delete(state.topic);
    this.bytes -= state.bytes;
  }

  /**
   * Back under `maxMemoryBytes`: the oldest messages of the topics used longest ago go first; a
   * topic left without messages is dropped. `keep` (the topic being used) loses messages only
   * when it is the last one left, and keeps its newest message and its state.
   */
  private enforceBudget(keep: TopicHistory): void {
    const limit = this.options.maxMemoryBytes;
    while (this.bytes > limit) {
      const victim = this.topics.values().next().value as TopicHistory;
      if (victim === keep) {
        if (keep.count <= 1) return;
        this.dropOldest(keep);
        this.stats.evicted++;
      } else if (victim.count > 0) {
        this.dropOldest(victim);
        this.stats.evicted++;
        if (victim.count === 0) this.remove(victim);
      } else {
        this.remove(victim);
      }
    }
  }
}
