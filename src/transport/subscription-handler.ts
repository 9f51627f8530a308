import { Injectable, Logger } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions, WseSubscriptionAuthorizer } from '../config/wse-module-options.interface.js';
import { TopicRegistryService, type FailedTopic } from '../hub/topic-registry.service.js';
import { isTopicPattern } from '../hub/topic-pattern.js';
import { topicRejection } from '../hub/topic-validation.js';
import { TopicHistoryService } from '../node/topic-history.service.js';
import { WseNode, type RecoveryOutcome, type TopicRecovery } from '../node/wse-node.js';
import type { HistoryPosition, NotRecoveredReason } from '../protocol/history.js';
import { parseSubscriptionRequest, type InboundFrame } from '../protocol/inbound-frame.js';
import { SystemFrames } from '../protocol/outbound-frame.js';
import { parseRecoveryRequest, type RecoveryRequest } from '../protocol/recovery-request.js';
import { WseErrorCode } from '../wse.constants.js';
import { logMessages, recoveryInputMessages, recoveryReasons, topicRejections } from '../wse.messages.js';
import { afterAnswer } from './control-order.js';
import { WseTopicPermissions } from './auth/topic-permissions.js';
import type { WseConnection } from './wse-connection.js';

/** Authorizer calls one connection may have running at once. */
export const MAX_AUTHORIZER_CALLS = 8;

/** One topic's entry of the answer's `recovery` map (CONTRACT section 11). */
interface RecoveryEntry {
  epoch?: string;
  offset?: number;
  recovered: boolean;
  count: number;
  reason?: string;
}

/**
 * `subscription` frames (CONTRACT section 4; `subscription_update` from WSE's clients is the
 * same) and the topics of the handshake URL: validation, the operator's `subscriptions` rules,
 * the application's `authorizeSubscription`, then the registry; answered with
 * `subscription_update`.
 *
 * On history topics (CONTRACT section 11) the answer carries each topic's position under
 * `recovery`, and a subscribe with `recover` and positions is answered with the missed
 * messages right behind the answer, before any newer live one (WseNode.recover holds the live
 * ones meanwhile). A malformed position never refuses the subscription: that topic is
 * subscribed and answered `recovered: false` with the reason and the current position.
 */
@Injectable()
export class WseSubscriptionHandler {
  private readonly logger = new Logger('WseGateway');

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly registry: TopicRegistryService<WseConnection>,
    private readonly permissions: WseTopicPermissions,
    private readonly frames: SystemFrames,
    private readonly node: WseNode,
    private readonly history: TopicHistoryService,
  ) {}

  /**
   * Answers one `subscription` frame. Returns a promise while the answer waits for the
   * application's authorizer or for history reads (the connection's next control frames wait
   * until it settles; it never rejects), undefined when it was answered at once.
   */
  handle(connection: WseConnection, frame: InboundFrame): Promise<void> | undefined {
    const request = parseSubscriptionRequest(frame.p, this.options.maxTopicsPerSubscription);
    if (!request.ok) {
      connection.send(this.frames.error(WseErrorCode.INVALID_MESSAGE, request.message));
      return undefined;
    }
    if (request.action === 'unsubscribe') {
      this.registry.unsubscribeConnection(connection.id, request.topics);
      this.node.cancelRecovery(connection, request.topics);
      this.sendUpdate(connection, 'unsubscribe', request.topics, []);
      return undefined;
    }
    const parsed = parseRecoveryRequest(frame.p, request.topics, this.options.maxTopicsPerSubscription);
    if (!parsed.ok) {
      connection.send(this.frames.error(WseErrorCode.INVALID_MESSAGE, parsed.message));
      return undefined;
    }
    const recovery = parsed.request;
    const rejections = request.topics.map(
      (topic) =>
        topicRejection(topic) ?? (this.permissions.active ? this.permissions.refusal(connection, topic) : undefined),
    );
    const authorize = this.options.authorizeSubscription;
    if (authorize === undefined) return this.subscribe(connection, request.topics, rejections, recovery);
    return this.authorizeAll(authorize, connection, request.topics, rejections).then(() =>
      this.subscribe(connection, request.topics, rejections, recovery),
    );
  }

  /**
   * Subscribes the topics a WSE client named on the handshake URL (`?topics=a,b`), exactly as
   * if it had sent them in a `subscription` frame: the same limit, validation and
   * authorization, and the same `subscription_update` answer (after `server_ready`).
   */
  subscribeFromUrl(connection: WseConnection, topics: string[]): void {
    if (topics.length === 0) return;
    // The connection's first control frame, in effect: what the client sends next waits for it.
    afterAnswer(connection, this.handle(connection, { t: 'subscription', p: { action: 'subscribe', topics } }), () => {
      // handle() answers every failure itself and its promise never rejects.
    });
  }

  /**
   * Asks the authorizer about every valid topic, at most MAX_AUTHORIZER_CALLS at a time: with
   * the connection's control frames answered one after the other, that bounds the calls one
   * connection can have running (issue 10: up to 100 at once per frame, frames unbounded).
   */
  private async authorizeAll(
    authorize: WseSubscriptionAuthorizer,
    connection: WseConnection,
    topics: string[],
    rejections: (string | undefined)[],
  ): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < topics.length) {
        const i = next++;
        if (rejections[i] === undefined && !(await this.isAuthorized(authorize, connection, topics[i]))) {
          rejections[i] = topicRejections.refused();
        }
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = 0; i < Math.min(MAX_AUTHORIZER_CALLS, topics.length); i++) workers.push(worker());
    await Promise.all(workers);
  }

  /**
   * Subscribes what was allowed; both lists of the answer keep the order of the request. A
   * promise while history is being read (Redis), undefined once answered.
   */
  private subscribe(
    connection: WseConnection,
    topics: string[],
    rejections: (string | undefined)[],
    recovery: RecoveryRequest,
  ): Promise<void> | undefined {
    const allowed = topics.filter((_, i) => rejections[i] === undefined);
    if (!this.history.enabled && !recovery.wanted) {
      // No history anywhere: the plain path, unchanged.
      // The connection may have closed while the authorizer ran: then there is nothing to do.
      const change = this.registry.subscribeConnection(connection.id, allowed);
      if (change === undefined) return undefined;
      const answer = (): void => {
        const { succeeded, failed } = this.inRequestOrder(topics, rejections, change.failed);
        this.sendUpdate(connection, 'subscribe', succeeded, failed);
      };
      // Interest routing: success is said once Redis delivers the new topics here.
      const routed = this.node.whenRouted(change.succeeded);
      if (routed === undefined) answer();
      return routed?.then(answer);
    }
    return this.subscribeWithHistory(connection, topics, rejections, allowed, recovery);
  }

  /**
   * The subscribe of a request that touches history: plain topics and history topics without a
   * position are subscribed at once; recovered topics are subscribed when their history is
   * back, in the same step as the answer and the replay, so nothing slips in between.
   */
  private subscribeWithHistory(
    connection: WseConnection,
    topics: string[],
    rejections: (string | undefined)[],
    allowed: string[],
    recovery: RecoveryRequest,
  ): Promise<void> | undefined {
    const entries = new Map<string, RecoveryEntry>();
    const recoveries: TopicRecovery[] = [];
    const positionTopics: string[] = [];
    const seen = new Set<string>();
    for (const topic of allowed) {
      if (seen.has(topic)) continue;
      seen.add(topic);
      const asked = recovery.positions.get(topic);
      const invalid = recovery.invalid.get(topic);
      const pattern = isTopicPattern(topic);
      if (pattern || !this.history.isHistoryTopic(topic)) {
        if (asked !== undefined || invalid !== undefined) {
          entries.set(topic, {
            recovered: false,
            count: 0,
            reason: pattern ? recoveryReasons.pattern() : recoveryReasons.notHistoryTopic(),
          });
        }
      } else if (asked !== undefined) {
        recoveries.push({ topic, epoch: asked.epoch, offset: asked.offset });
      } else {
        positionTopics.push(topic);
      }
    }
    const recovering = new Set(recoveries.map((r) => r.topic));
    const change = this.registry.subscribeConnection(
      connection.id,
      allowed.filter((topic) => !recovering.has(topic)),
    );
    if (change === undefined) return undefined;
    const subscribedNow = new Set(change.succeeded);
    const positioned = positionTopics.filter((topic) => subscribedNow.has(topic));
    const unrequested: FailedTopic[] = recovery.unrequested.map((topic) => ({
      topic,
      reason: recoveryInputMessages.notRequested(),
    }));

    const answer = (outcome: RecoveryOutcome | undefined): void => {
      // Closed while the history was read: nothing to subscribe or answer.
      if (this.registry.get(connection.id) !== connection) return;
      const live = recoveries.filter((r) => outcome?.cancelled(r.topic) !== true).map((r) => r.topic);
      const later = this.registry.subscribeConnection(connection.id, live);
      const failedLater = later?.failed ?? [];
      const stats = this.history.stats;
      for (const topic of positioned) {
        const position = outcome?.position(topic);
        const reason = recovery.invalid.get(topic);
        entries.set(topic, { ...positionEntry(position), recovered: false, count: 0, ...withReason(reason) });
        if (reason !== undefined) stats.notRecovered++;
      }
      const replayed: string[] = [];
      for (const topic of later?.succeeded ?? []) {
        const entry = this.recoveryEntry(topic, outcome as RecoveryOutcome);
        entries.set(topic, entry);
        if (entry.recovered) stats.recovered++;
        else stats.notRecovered++;
        replayed.push(topic);
      }
      const { succeeded, failed } = this.inRequestOrder(topics, rejections, [...change.failed, ...failedLater]);
      const asked = [...recovery.positions.keys(), ...recovery.invalid.keys()].filter((t) => entries.has(t));
      const extra: Record<string, unknown> = {};
      if (entries.size > 0) extra.recovery = Object.fromEntries(entries);
      // WSE's own clients read one flag for the whole request: every position asked for was recovered.
      if (recovery.wanted) extra.recovered = asked.length > 0 && asked.every((t) => entries.get(t)?.recovered);
      this.sendUpdate(connection, 'subscribe', succeeded, [...failed, ...unrequested], extra);
      for (const topic of replayed) outcome?.replay(topic);
    };
    const proceed = (): Promise<void> | undefined => {
      if (recoveries.length === 0 && positioned.length === 0) {
        answer(undefined);
        return undefined;
      }
      return this.node.recover(connection, recoveries, positioned, answer)?.catch((error: unknown) => {
        this.logger.error(logMessages.frameFailed(connection.id), error instanceof Error ? error.stack : error);
      });
    };
    // Interest routing: the topics subscribed at once are delivered here before the answer.
    const routed = this.node.whenRouted(change.succeeded);
    return routed === undefined ? proceed() : routed.then(proceed);
  }

  /** The answer entry of a topic that asked to recover, from what its history read found. */
  private recoveryEntry(topic: string, outcome: RecoveryOutcome): RecoveryEntry {
    const read = outcome.read(topic);
    if (read === undefined) return { recovered: false, count: 0, reason: recoveryReasons.unavailable() };
    const position = positionEntry(read.position);
    if (outcome.overflowed(topic))
      return { ...position, recovered: false, count: 0, reason: recoveryReasons.overflow() };
    if (read.recovered) return { ...position, recovered: true, count: read.entries.length };
    return { ...position, recovered: false, count: 0, reason: this.reasonText(read.reason) };
  }

  private reasonText(reason: NotRecoveredReason): string {
    switch (reason) {
      case 'epoch_changed':
        return recoveryReasons.epochChanged();
      case 'trimmed':
        return recoveryReasons.trimmed();
      case 'over_max_replay':
        return recoveryReasons.overMaxReplay(this.history.maxReplay);
      case 'ahead':
        return recoveryReasons.ahead();
      default:
        return assertNever(reason);
    }
  }

  /** Both lists of the answer in the order of the request. */
  private inRequestOrder(
    topics: string[],
    rejections: (string | undefined)[],
    refusedByRegistry: readonly FailedTopic[],
  ): { succeeded: string[]; failed: FailedTopic[] } {
    const refused = new Map(refusedByRegistry.map((f) => [f.topic, f.reason]));
    const succeeded: string[] = [];
    const failed: FailedTopic[] = [];
    topics.forEach((topic, i) => {
      const reason = rejections[i] ?? refused.get(topic);
      if (reason === undefined) succeeded.push(topic);
      else failed.push({ topic, reason });
    });
    return { succeeded, failed };
  }

  /** The application's verdict; a throwing authorizer refuses (and is logged), never crashes. */
  private async isAuthorized(
    authorize: WseSubscriptionAuthorizer,
    connection: WseConnection,
    topic: string,
  ): Promise<boolean> {
    try {
      return (await authorize(connection, topic)) === true;
    } catch (error) {
      this.logger.warn(logMessages.authorizerFailed(topic), error instanceof Error ? error.stack : undefined);
      return false;
    }
  }

  private sendUpdate(
    connection: WseConnection,
    action: 'subscribe' | 'unsubscribe',
    succeeded: string[],
    failed: FailedTopic[],
    extra?: Record<string, unknown>,
  ): void {
    connection.send(
      this.frames.frame('subscription_update', {
        action,
        // What WSE's clients look at before they mark topics as subscribed: no topic failed.
        success: failed.length === 0,
        success_topics: succeeded,
        failed_topics: failed.map((f) => f.topic),
        errors: failed,
        ...extra,
      }),
    );
  }
}

function positionEntry(position: HistoryPosition | undefined): { epoch?: string; offset?: number } {
  return position === undefined ? {} : { epoch: position.epoch, offset: position.offset };
}

function withReason(reason: string | undefined): { reason?: string } {
  return reason === undefined ? {} : { reason };
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${String(value)}`);
}
