import type { Clock } from '../../reliability/clock.js';
import { REDIS_PROBE_CHANNEL_PREFIX } from '../../wse.constants.js';

/** Why delivery stopped being proven. */
export type ProbeDownReason =
  /** A connection closed. */
  | 'connection_lost'
  /** Redis did not answer the probe's PUBLISH within the timeout: frozen or unreachable. */
  | 'not_answering'
  /** Redis ran the probe's PUBLISH, the subscriber never got it: the subscriber is dead. */
  | 'not_receiving'
  /** Redis refused the probe's PUBLISH (an ACL, a read-only replica...). */
  | 'refused';

/** What the probe needs from the connections around it. */
export interface ProbeHost {
  /** Publishes a probe on the publisher connection; resolves with Redis's receiver count. */
  publish(channel: string, payload: string): Promise<number>;
  /** The subscriber connection is not receiving: drop it and connect a new one. */
  replaceSubscriber(): void;
  /** Delivery is proven (again); `downMs` is the gap when one preceded it, undefined the first time. */
  onDelivering(downMs: number | undefined): void;
  /** Delivery stopped being proven. */
  onDown(reason: ProbeDownReason): void;
  /** One of this instance's probes went round: both connections work. */
  onRoundTrip(): void;
  /** When Redis last answered a command on the publisher connection (0: never). */
  lastAnswerAt(): number;
  /** Messages the subscriber has received so far (a counter that only grows). */
  receivedCount(): number;
}

export interface ProbeOptions {
  /** This instance's id: its probe channel is `__wse_probe__:<id>`. */
  readonly instanceId: string;
  /** The channel prefix: only instances sharing it are peers (they receive the same channels). */
  readonly prefix: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /**
   * Whether a PUBLISH reply counts every subscriber of the bus (one Redis) or only those of the
   * node it ran on (a cluster's classic bus): only in the first case does a probe answered with
   * no receiver at all prove the subscriber is not subscribed. @default true
   */
  readonly repliesCountEveryone?: boolean;
}

/** Every instance subscribes to every instance's probes with this pattern. */
export const PROBE_PATTERN = `${REDIS_PROBE_CHANNEL_PREFIX}*`;
const VERSION = 'wse1';
const BYE = 'bye';
/** `h`: the first character of a greeting probe's token. */
const GREETING = 0x68;

interface PendingProbe {
  readonly seq: number;
  /** The probe's token in its payload: the sequence number, `h`-prefixed for a greeting. */
  readonly token: string;
  readonly sentAt: number;
  acked: boolean;
  timer: NodeJS.Timeout | undefined;
  /** `receivedCount()` when the wait for the probe's arrival began. */
  received: number;
}

interface Peer {
  lastSeenAt: number;
  intervalMs: number;
  /** The subscriber epoch in which its probe was last seen. */
  epoch: number;
}

/**
 * Proves delivery end to end, tells the two kinds of failure apart, and keeps the list of the
 * other instances (issue 10).
 *
 * Every `intervalMs` this instance publishes a probe on its own channel, and expects it back on
 * its subscriber, which listens to `__wse_probe__:*` (outside the topic space: no client ever
 * sees a probe). A probe moves from sent to acknowledged (Redis answered the PUBLISH, with how
 * many subscribers received it) to received:
 *
 * - not acknowledged within `timeoutMs`, and no other reply from Redis in that time either:
 *   Redis is not answering (frozen, swapped out, stuck in a fork). Delivery is down, but the connections are kept: a frozen Redis still holds what the
 *   subscriber is waiting for, and replacing the subscriber would throw that away. The probe
 *   stays pending; its late answer and arrival end the gap.
 * - acknowledged, not received within `timeoutMs` of being sent while the subscriber received
 *   nothing else either (or acknowledged with no receiver at all): the subscriber is not
 *   receiving (a half-open connection). Delivery is
 *   down and the subscriber connection is replaced.
 *
 * Peers: the probes of the other instances with the same prefix arrive here too; each says the
 * sender is alive and subscribed. After this instance's subscriber (re)subscribes (a new epoch),
 * every known peer is unconfirmed until its next probe arrives: after a Redis restart, another
 * instance whose subscriber is not back yet would miss what is published. `whole` is true when
 * delivery is proven here and every live peer is confirmed (the first probe after each
 * (re)subscription is a greeting, which every peer answers with a probe at once, so that takes
 * a round trip, not an interval); `expectedReceivers` is how many
 * subscribers a PUBLISH must reach (this instance and each peer). A peer not heard from for
 * three of its intervals (plus a timeout) while this subscriber was receiving is forgotten; one
 * that says goodbye at once.
 *
 * The gap reported when delivery returns runs from the last probe (this instance's or a peer's)
 * that arrived, so it is never shorter than the real gap and at most one interval longer.
 */
export class DeliveryProbe {
  readonly channel: string;
  /** When a probe last arrived on the subscriber (0: never). */
  lastDeliveredAt = 0;
  private delivering = false;
  private everDelivered = false;
  private unanswered = false;
  private subscribed = false;
  private publisherUp = false;
  private pending: PendingProbe | undefined;
  private seq = 0;
  private epoch = 0;
  private readonly peers = new Map<string, Peer>();
  private wholeValue = false;
  /** The next probe greets: peers answer it at once (sent after each (re)subscription). */
  private greet = false;
  /** When the current (or last) gap began: the last arrival while delivery was proven. */
  private gapStart = 0;
  /** When delivery was last proven after a gap (or for the first time). */
  private deliveringSince = 0;
  private tickTimer: NodeJS.Timeout | undefined;
  private readonly payloadTail: string;

  constructor(
    private readonly options: ProbeOptions,
    private readonly host: ProbeHost,
    private readonly clock: Clock = Date.now,
  ) {
    this.channel = REDIS_PROBE_CHANNEL_PREFIX + options.instanceId;
    this.payloadTail = ` ${options.intervalMs} ${options.prefix}`;
  }

  /** True while a probe has come back since the last failure. */
  get isDelivering(): boolean {
    return this.delivering;
  }

  /** True while Redis has left a probe unanswered past the timeout. */
  get notAnswering(): boolean {
    return this.unanswered;
  }

  /** Delivery proven here and every live peer confirmed since this subscriber's last (re)subscription. */
  get whole(): boolean {
    return this.wholeValue;
  }

  /** Subscribers a publish must reach: this instance and every live peer. */
  get expectedReceivers(): number {
    return 1 + this.peers.size;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /** Peers not yet heard from since this subscriber's last (re)subscription. */
  get unconfirmedPeers(): number {
    let count = 0;
    for (const peer of this.peers.values()) if (peer.epoch !== this.epoch) count++;
    return count;
  }

  start(): void {
    this.tickTimer = setInterval(() => this.tick(), this.options.intervalMs);
    this.tickTimer.unref();
  }

  stop(): void {
    clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    if (this.pending?.timer !== undefined) clearTimeout(this.pending.timer);
    this.pending = undefined;
    this.subscribed = false;
    this.publisherUp = false;
    this.delivering = false;
    this.recompute();
  }

  /** The goodbye a stopping instance publishes on its channel: its peers forget it at once. */
  byePayload(): string {
    return `${VERSION} ${BYE}${this.payloadTail}`;
  }

  /**
   * The subscriber has a new connection (its subscriptions are on their way): a new epoch, so
   * every peer must be heard again on this connection. Called before anything can arrive on it.
   */
  subscriberConnected(): void {
    this.epoch++;
    this.recompute();
  }

  /** Redis has processed the subscriber's (re)subscriptions: a probe now, greeting the peers. */
  subscriberActive(): void {
    this.subscribed = true;
    this.greet = true;
    // A probe still pending was published before these subscriptions existed: it may never
    // arrive, and waiting for it would condemn the new connection. Start over.
    this.clearPending();
    this.recompute();
    this.send();
  }

  subscriberLost(): void {
    this.subscribed = false;
    this.down('connection_lost');
  }

  publisherReady(): void {
    this.publisherUp = true;
    this.send();
  }

  publisherLost(): void {
    this.publisherUp = false;
    this.down('connection_lost');
  }

  /** A message on `__wse_probe__:<id>`: this instance's probe or a peer's. */
  onMessage(channel: string, payload: string): void {
    if (!channel.startsWith(REDIS_PROBE_CHANNEL_PREFIX) || !payload.startsWith(`${VERSION} `)) return;
    const id = channel.slice(REDIS_PROBE_CHANNEL_PREFIX.length);
    // "wse1 <seq|bye> <intervalMs> <prefix>": the prefix is last, so it may hold spaces.
    const first = payload.indexOf(' ');
    const second = payload.indexOf(' ', first + 1);
    const third = payload.indexOf(' ', second + 1);
    if (second < 0 || third < 0 || payload.slice(third + 1) !== this.options.prefix) return;
    const now = this.clock();
    this.arrived(now);
    const what = payload.slice(first + 1, second);
    if (id === this.options.instanceId) {
      if (this.pending !== undefined && what === this.pending.token) this.received(now);
      return;
    }
    if (what === BYE) {
      this.peers.delete(id);
      this.recompute();
      return;
    }
    const intervalMs = Number(payload.slice(second + 1, third));
    this.peers.set(id, {
      lastSeenAt: now,
      intervalMs: intervalMs > 0 ? intervalMs : this.options.intervalMs,
      epoch: this.epoch,
    });
    this.recompute();
    // A peer that just (re)subscribed greets: answer with a probe now, so that it confirms this
    // instance within a round trip instead of a whole interval.
    if (what.charCodeAt(0) === GREETING) this.send();
  }

  private tick(): void {
    const now = this.clock();
    // A peer's silence counts only while this subscriber could have heard it: during an outage
    // every peer is silent, and forgetting them then would let this instance publish, once back,
    // to a bus where their subscribers are not yet (issue 10's "reached only one instance").
    if (this.delivering) {
      for (const [id, peer] of this.peers) {
        const silentSince = Math.max(peer.lastSeenAt, this.deliveringSince);
        if (now - silentSince > 3 * peer.intervalMs + this.options.timeoutMs) this.peers.delete(id);
      }
    }
    this.recompute();
    this.send();
  }

  private send(): void {
    if (this.pending !== undefined || !this.subscribed || !this.publisherUp) return;
    const seq = ++this.seq;
    const token = this.greet ? `h${seq}` : String(seq);
    this.greet = false;
    const pending: PendingProbe = {
      seq,
      token,
      sentAt: this.clock(),
      acked: false,
      timer: undefined,
      received: this.host.receivedCount(),
    };
    pending.timer = this.startTimer(pending, this.options.timeoutMs);
    this.pending = pending;
    this.host.publish(this.channel, `${VERSION} ${token}${this.payloadTail}`).then(
      (receivers) => this.acked(pending, receivers),
      (error: unknown) => this.failed(pending, error),
    );
  }

  private startTimer(pending: PendingProbe, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.timedOut(pending), ms);
    timer.unref();
    return timer;
  }

  private acked(pending: PendingProbe, receivers: number): void {
    if (this.pending !== pending) return;
    pending.acked = true;
    this.unanswered = false;
    if (receivers === 0 && this.options.repliesCountEveryone !== false) {
      // Not even this instance's subscriber is subscribed: no need to wait for the timeout.
      this.clearPending();
      this.notReceiving();
      return;
    }
    // Answered after the timeout had fired (Redis was not answering): give the message the same
    // time to arrive, counted from now.
    pending.received = this.host.receivedCount();
    if (pending.timer === undefined) pending.timer = this.startTimer(pending, this.options.timeoutMs);
  }

  private failed(pending: PendingProbe, error: unknown): void {
    if (this.pending !== pending) return;
    this.clearPending();
    this.unanswered = false;
    this.down(isReplyError(error) ? 'refused' : 'connection_lost');
  }

  private timedOut(pending: PendingProbe): void {
    if (this.pending !== pending) return;
    pending.timer = undefined;
    const now = this.clock();
    const timeoutMs = this.options.timeoutMs;
    if (!pending.acked) {
      // Redis answered other commands meanwhile: it is working through a queue (a burst, a
      // loaded machine), not frozen. The probe waits in that queue; give it the time again.
      const progress = now - Math.max(pending.sentAt, this.host.lastAnswerAt());
      if (progress < timeoutMs) {
        pending.timer = this.startTimer(pending, timeoutMs - progress);
        return;
      }
      // Keep the probe pending and the connections as they are: see the class comment.
      this.unanswered = true;
      this.down('not_answering');
      return;
    }
    // The subscriber got other messages meanwhile: it is receiving, the probe is behind them.
    const received = this.host.receivedCount();
    if (received !== pending.received) {
      pending.received = received;
      pending.timer = this.startTimer(pending, timeoutMs);
      return;
    }
    this.pending = undefined;
    this.notReceiving();
  }

  private notReceiving(): void {
    this.down('not_receiving');
    // A subscriber that already lost its connection is reconnecting on its own. Otherwise it is
    // dropped now: no probe goes out until the new connection has subscribed (one sent before
    // would miss it and condemn the new connection too).
    if (!this.subscribed) return;
    this.subscribed = false;
    this.host.replaceSubscriber();
  }

  private received(now: number): void {
    this.clearPending();
    this.unanswered = false;
    this.host.onRoundTrip();
    if (!this.delivering) {
      this.delivering = true;
      this.deliveringSince = now;
      // `arrived()` already moved lastDeliveredAt: the gap is measured from the one before.
      this.host.onDelivering(this.everDelivered ? now - this.gapStart : undefined);
      this.everDelivered = true;
    }
    this.recompute();
  }

  private arrived(now: number): void {
    if (this.delivering || !this.everDelivered) this.gapStart = now;
    this.lastDeliveredAt = now;
  }

  private clearPending(): void {
    if (this.pending?.timer !== undefined) clearTimeout(this.pending.timer);
    this.pending = undefined;
  }

  private down(reason: ProbeDownReason): void {
    const was = this.delivering;
    this.delivering = false;
    this.recompute();
    if (was) this.host.onDown(reason);
  }

  private recompute(): void {
    let whole = this.delivering;
    if (whole) {
      for (const peer of this.peers.values()) {
        if (peer.epoch !== this.epoch) {
          whole = false;
          break;
        }
      }
    }
    this.wholeValue = whole;
  }
}

/** An error reply from Redis (ioredis's ReplyError), as opposed to a lost connection. */
export function isReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}
