import type { RedisPubSubService } from '../broker/redis/redis-pubsub.service.js';
import { PatternIndex } from '../hub/pattern-index.js';
import { compileTopicPattern } from '../hub/topic-pattern.js';
import type { TopicRegistryService } from '../hub/topic-registry.service.js';

/** A peer's announcement counts for this many refresh periods; each instance refreshes every period. */
const KEPT_PERIODS = 3;

/**
 * Globs in a Redis Cluster (README, "Scaling out"). Redis has no sharded pattern subscription,
 * so a glob follower listens on the cluster's classic bus (`PSUBSCRIBE <prefix><glob>`, which
 * every node serves), and a message reaches that bus only when its publisher sends it there as
 * well as to its shard. The directory tells the publishing side which topics need that: the
 * globs followed on this instance (the registry's) and those every other instance announces.
 *
 * Each instance announces all its globs on the classic bus, beside its probes: when they change
 * (once per tick) and every `refreshMs`, so a new instance learns them within a period; a peer
 * not heard from for three periods, or that said goodbye, is forgotten. A topic no glob follows
 * costs its publish nothing more; one that a glob follows costs one more PUBLISH, which every
 * node of the cluster handles (the classic bus is not sharded).
 */
export class GlobDirectory {
  /** Globs followed by the other instances; the entries' subscribers are instance ids. */
  private readonly peers = new PatternIndex<string>();
  private readonly peerGlobs = new Map<string, { globs: readonly string[]; seenAt: number }>();
  /** The announcement of this tick's changes, until it has gone out. */
  private scheduled: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: TopicRegistryService,
    private readonly redis: RedisPubSubService,
    private readonly refreshMs: number,
  ) {}

  start(): void {
    this.redis.setGlobAnnouncementHandler((instanceId, globs) => this.update(instanceId, globs));
    this.redis.setGlobFollowed((topic) => this.followed(topic));
    this.timer = setInterval(() => {
      this.expire();
      void this.announce();
    }, this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** True when a glob on this instance or another one matches `topic`. */
  followed(topic: string): boolean {
    return this.registry.globsMatching(topic).length > 0 || this.peers.matching(topic).length > 0;
  }

  /** The local globs changed: announce them in the next tick (once for every change of the tick). */
  changed(): void {
    this.scheduled ??= new Promise<void>((resolve) => {
      setImmediate(() => {
        this.scheduled = undefined;
        void this.announce().then(resolve);
      });
    });
  }

  /**
   * Resolves once the local globs as they are now have reached every instance (a glob
   * subscription is answered after it): the announcement already scheduled for this tick's
   * changes, or a new one.
   */
  announced(): Promise<void> {
    return this.scheduled ?? this.announce();
  }

  /**
   * Announces the local globs now and resolves once Redis has handed the announcement to every
   * instance (see RedisPubSubService.announceGlobs).
   */
  private announce(): Promise<void> {
    return this.redis.announceGlobs(this.registry.heldGlobs());
  }

  private update(instanceId: string, globs: readonly string[]): void {
    const before = this.peerGlobs.get(instanceId);
    for (const glob of before?.globs ?? []) this.drop(instanceId, glob);
    if (globs.length === 0) {
      this.peerGlobs.delete(instanceId);
      return;
    }
    this.peerGlobs.set(instanceId, { globs, seenAt: Date.now() });
    for (const glob of globs) {
      const entry = this.peers.get(glob) ?? this.peers.add(compileTopicPattern(glob));
      entry.subscribers.add(instanceId);
    }
  }

  private drop(instanceId: string, glob: string): void {
    const entry = this.peers.get(glob);
    if (entry === undefined) return;
    entry.subscribers.delete(instanceId);
    if (entry.subscribers.size === 0) this.peers.remove(entry);
  }

  private expire(): void {
    const oldest = Date.now() - KEPT_PERIODS * this.refreshMs;
    for (const [instanceId, { seenAt }] of this.peerGlobs) if (seenAt < oldest) this.update(instanceId, []);
  }
}
