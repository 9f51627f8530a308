import type { RedisPubSubService } from '../broker/redis/redis-pubsub.service.js';
import { compileTopicPattern, isTopicPattern, type TopicPattern } from '../hub/topic-pattern.js';
import type { TopicRegistryService } from '../hub/topic-registry.service.js';

/**
 * Interest routing (CONTRACT section 9, `routing: 'interest'`), the node's half: it tells the
 * broker what this instance follows (the registry's first and last subscriber of each topic and
 * glob, plus the recoveries holding a topic), and it makes sure a message reaches the local
 * fan-out once when it arrives more than once.
 *
 * Why it can arrive more than once: a PUBLISH on `wse:a:1` reaches an instance once for each of
 * its subscriptions that match, `SUBSCRIBE wse:a:1` and `PSUBSCRIBE wse:a:*` and
 * `PSUBSCRIBE wse:*:1` alike. Redis writes those copies together (one PUBLISH is one step of its
 * loop), and ioredis records every (un)subscribe reply as it parses it, in order with the
 * messages, so while a copy is being handled the broker can say exactly which other
 * subscriptions the same PUBLISH went through (`RedisPubSubService.listening`). One copy leads:
 * the exact topic's when it is subscribed, otherwise the smallest matching glob (by string
 * order). Only the leading copy is fanned out, to everyone following the topic on this instance
 * (the registry reaches each connection once however many of its subscriptions match); the others
 * are dropped and counted. No copy is lost in a change: a subscription that Redis has not
 * answered yet, or has already unsubscribed, is not listening, so it cannot lead.
 */
export class InterestRouting {
  /**
   * Globs no connection follows any more whose PUNSUBSCRIBE may not have reached Redis yet:
   * their copies can still arrive and lead, so they stay candidates until they are gone.
   */
  private readonly draining = new Map<string, TopicPattern>();

  constructor(
    private readonly registry: TopicRegistryService,
    private readonly redis: RedisPubSubService,
  ) {}

  /** Starts following what the registry follows; `globsChanged` is told when its globs change. */
  start(globsChanged?: () => void): void {
    this.registry.setInterestListener((name, glob, present) => {
      if (glob) globsChanged?.();
      if (present) {
        this.redis.retain(name, glob);
        if (glob) this.draining.delete(name);
        return;
      }
      this.redis.release(name, glob);
      if (glob) this.drain(name);
    });
  }

  /** A recovery holds `topic` while its history is read: Redis keeps delivering it meanwhile. */
  retain(topic: string): void {
    this.redis.retain(topic, false);
  }

  release(topic: string): void {
    this.redis.release(topic, false);
  }

  /**
   * Resolves once Redis delivers every one of `names` (topics and globs) here. Undefined when
   * it does already (or after the broker's bound while Redis is away).
   */
  whenListening(names: readonly string[]): Promise<void> | undefined {
    let pending: Promise<void>[] | undefined;
    for (const name of names) {
      const waiting = this.redis.whenListening(name, isTopicPattern(name));
      if (waiting !== undefined) (pending ??= []).push(waiting);
    }
    return pending === undefined ? undefined : Promise.all(pending).then(() => undefined);
  }

  /**
   * True when the copy of a message on `topic` that came through `glob` is the one to fan out
   * (see the class comment). Called only for copies that came through a glob: an exact
   * topic's copy always leads.
   */
  leads(topic: string, glob: string): boolean {
    const redis = this.redis;
    if (redis.listening(topic, false)) return false;
    const entries = this.registry.globsMatching(topic);
    for (let i = 0; i < entries.length; i++) {
      const other = entries[i].pattern.source;
      if (other < glob && redis.listening(other, true)) return false;
    }
    if (this.draining.size === 0) return true;
    for (const [other, pattern] of this.draining) {
      if (!redis.listening(other, true)) {
        if (other !== glob) this.draining.delete(other);
        continue;
      }
      if (other < glob && pattern.matches(topic)) return false;
    }
    return true;
  }

  private drain(glob: string): void {
    this.draining.set(glob, compileTopicPattern(glob));
    if (this.draining.size <= DRAINING_SWEEP) return;
    for (const other of this.draining.keys()) if (!this.redis.listening(other, true)) this.draining.delete(other);
  }
}

/** Past this many draining globs, the ones Redis no longer has are swept at the next drain. */
const DRAINING_SWEEP = 256;
