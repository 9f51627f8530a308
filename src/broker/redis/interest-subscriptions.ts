/** A subscription of the subscriber connection: an exact channel (`SUBSCRIBE`) or a pattern (`PSUBSCRIBE`). */
export type InterestKind = 'channel' | 'pattern';

/** The subscriber commands the interest set issues, each for many channels or patterns at once. */
export interface InterestCommands {
  subscribe(kind: InterestKind, names: string[]): Promise<unknown>;
  unsubscribe(kind: InterestKind, names: string[]): Promise<unknown>;
}

export interface InterestOptions {
  /** At most this many channels (or patterns) in one command; the rest go in the next tick. */
  readonly maxPerCommand: number;
  /** Called for a (un)subscribe command Redis refused. */
  readonly onRefused: (kind: InterestKind, names: readonly string[], message: string) => void;
  /** Called for each command issued (the churn counter). */
  readonly onCommand: () => void;
}

interface Subscription {
  readonly kind: InterestKind;
  readonly name: string;
  /** Holders: connections' subscriptions, recoveries waiting for history... */
  refs: number;
  /** A SUBSCRIBE for it has been sent (and no UNSUBSCRIBE since). */
  requested: boolean;
  /** Redis has answered the SUBSCRIBE sent last (generation `generation`). */
  active: boolean;
  /** Bumped at every SUBSCRIBE sent, so an older command's answer cannot mark a newer one active. */
  generation: number;
  /** Waiting for the subscription to become active. */
  waiters: (() => void)[];
}

/**
 * The channels and patterns this instance listens to in interest routing (CONTRACT section 9),
 * reference counted: a name is subscribed when its first holder arrives and unsubscribed when
 * the last leaves.
 *
 * Changes are not sent as they happen: they are collected and sent once per tick, as at most one
 * SUBSCRIBE, one UNSUBSCRIBE, one PSUBSCRIBE and one PUNSUBSCRIBE, each of at most
 * `maxPerCommand` names (more wait for the next tick). A name that comes and goes within one tick
 * costs Redis nothing, so connection churn does not become Redis churn. Redis runs a
 * connection's commands in order, so an UNSUBSCRIBE followed by a later SUBSCRIBE of the same
 * name ends subscribed.
 *
 * `whenActive` tells when Redis has answered the SUBSCRIBE of a name: from then on every
 * message published on it reaches this instance.
 */
export class InterestSubscriptions {
  private readonly byKey = new Map<string, Subscription>();
  private readonly dirty = new Set<Subscription>();
  private commands: InterestCommands | undefined;
  private flushScheduled = false;

  constructor(private readonly options: InterestOptions) {}

  /** Names held, of both kinds. */
  get size(): number {
    return this.byKey.size;
  }

  /**
   * Uses a new subscriber connection (the first, or a replacement for another Redis): every name
   * held is subscribed on it from scratch. Undefined detaches (no commands are sent meanwhile).
   */
  attach(commands: InterestCommands | undefined): void {
    this.commands = commands;
    for (const subscription of this.byKey.values()) {
      subscription.requested = false;
      subscription.active = false;
      this.dirty.add(subscription);
    }
    this.schedule();
  }

  /** One more holder of `name`. */
  retain(kind: InterestKind, name: string): void {
    const key = keyOf(kind, name);
    let subscription = this.byKey.get(key);
    if (subscription === undefined) {
      subscription = { kind, name, refs: 0, requested: false, active: false, generation: 0, waiters: [] };
      this.byKey.set(key, subscription);
    }
    if (subscription.refs++ === 0) this.mark(subscription);
  }

  /** One holder fewer of `name`; the last one's release unsubscribes it (in the next tick). */
  release(kind: InterestKind, name: string): void {
    const subscription = this.byKey.get(keyOf(kind, name));
    if (subscription === undefined || subscription.refs === 0) return;
    if (--subscription.refs === 0) this.mark(subscription);
  }

  /** True when Redis has answered the SUBSCRIBE of a name still held. */
  isActive(kind: InterestKind, name: string): boolean {
    return this.byKey.get(keyOf(kind, name))?.active === true;
  }

  /**
   * Resolves once `name` is active in Redis, or after `timeoutMs` (Redis away: it is subscribed
   * when it is back). Undefined when it is active already or not held at all.
   */
  whenActive(kind: InterestKind, name: string, timeoutMs: number): Promise<void> | undefined {
    const subscription = this.byKey.get(keyOf(kind, name));
    if (subscription === undefined || subscription.active || subscription.refs === 0) return undefined;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      subscription.waiters.push(done);
    });
  }

  /** Every name held, of one kind (for a resubscription report). */
  names(kind: InterestKind): string[] {
    const names: string[] = [];
    for (const subscription of this.byKey.values()) if (subscription.kind === kind) names.push(subscription.name);
    return names;
  }

  private mark(subscription: Subscription): void {
    this.dirty.add(subscription);
    this.schedule();
  }

  private schedule(): void {
    if (this.flushScheduled || this.dirty.size === 0 || this.commands === undefined) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** One tick's commands: at most one per kind and direction, of at most `maxPerCommand` names. */
  private flush(): void {
    const commands = this.commands;
    if (commands === undefined) return;
    const add: Record<InterestKind, Subscription[]> = { channel: [], pattern: [] };
    const remove: Record<InterestKind, Subscription[]> = { channel: [], pattern: [] };
    const limit = this.options.maxPerCommand;
    for (const subscription of this.dirty) {
      const wanted = subscription.refs > 0;
      if (wanted !== subscription.requested) {
        const list = (wanted ? add : remove)[subscription.kind];
        if (list.length >= limit) continue; // the next tick takes it
        list.push(subscription);
      }
      this.dirty.delete(subscription);
      if (!wanted) this.byKey.delete(keyOf(subscription.kind, subscription.name));
    }
    for (const kind of KINDS) {
      if (remove[kind].length > 0) this.sendUnsubscribe(commands, kind, remove[kind]);
      if (add[kind].length > 0) this.sendSubscribe(commands, kind, add[kind]);
    }
    this.schedule();
  }

  private sendSubscribe(commands: InterestCommands, kind: InterestKind, list: Subscription[]): void {
    const generations = list.map((subscription) => {
      subscription.requested = true;
      subscription.active = false;
      return ++subscription.generation;
    });
    const names = list.map((subscription) => subscription.name);
    this.options.onCommand();
    const settle = (): void => {
      list.forEach((subscription, i) => {
        if (!subscription.requested || subscription.generation !== generations[i]) return;
        subscription.active = true;
        const waiters = subscription.waiters;
        subscription.waiters = [];
        for (const done of waiters) done();
      });
    };
    commands.subscribe(kind, names).then(settle, (error: unknown) => {
      this.options.onRefused(kind, names, error instanceof Error ? error.message : String(error));
      // Nothing will come through them; whoever waits is answered anyway (the log says why).
      for (const subscription of list) {
        const waiters = subscription.waiters;
        subscription.waiters = [];
        for (const done of waiters) done();
      }
    });
  }

  private sendUnsubscribe(commands: InterestCommands, kind: InterestKind, list: Subscription[]): void {
    const names = list.map((subscription) => {
      subscription.requested = false;
      subscription.active = false;
      const waiters = subscription.waiters;
      subscription.waiters = [];
      for (const done of waiters) done();
      return subscription.name;
    });
    this.options.onCommand();
    commands.unsubscribe(kind, names).catch((error: unknown) => {
      this.options.onRefused(kind, names, error instanceof Error ? error.message : String(error));
    });
  }
}

const KINDS: readonly InterestKind[] = ['channel', 'pattern'];

function keyOf(kind: InterestKind, name: string): string {
  return kind === 'channel' ? `c${name}` : `p${name}`;
}
