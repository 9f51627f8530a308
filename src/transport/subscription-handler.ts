import { Injectable, Logger } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions, WseSubscriptionAuthorizer } from '../config/wse-module-options.interface.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { topicRejection } from '../hub/topic-validation.js';
import { parseSubscriptionRequest, type InboundFrame } from '../protocol/inbound-frame.js';
import { SystemFrames } from '../protocol/outbound-frame.js';
import { WseErrorCode } from '../wse.constants.js';
import { logMessages, topicRejections } from '../wse.messages.js';
import { afterAnswer } from './control-order.js';
import { WseTopicPermissions } from './auth/topic-permissions.js';
import type { WseConnection } from './wse-connection.js';

/** Authorizer calls one connection may have running at once. */
export const MAX_AUTHORIZER_CALLS = 8;

/**
 * `subscription` frames (CONTRACT section 4; `subscription_update` from WSE's clients is the
 * same) and the topics of the handshake URL: validation, the operator's `subscriptions` rules,
 * the application's `authorizeSubscription`, then the registry; answered with
 * `subscription_update`.
 */
@Injectable()
export class WseSubscriptionHandler {
  private readonly logger = new Logger('WseGateway');

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly registry: TopicRegistryService<WseConnection>,
    private readonly permissions: WseTopicPermissions,
    private readonly frames: SystemFrames,
  ) {}

  /**
   * Answers one `subscription` frame. Returns a promise while the answer waits for the
   * application's authorizer (the connection's next control frames wait until it settles; it
   * never rejects), undefined when it was answered at once.
   */
  handle(connection: WseConnection, frame: InboundFrame): Promise<void> | undefined {
    const request = parseSubscriptionRequest(frame.p, this.options.maxTopicsPerSubscription);
    if (!request.ok) {
      connection.send(this.frames.error(WseErrorCode.INVALID_MESSAGE, request.message));
      return undefined;
    }
    if (request.action === 'unsubscribe') {
      this.registry.unsubscribeConnection(connection.id, request.topics);
      this.sendUpdate(connection, 'unsubscribe', request.topics, []);
      return undefined;
    }
    const rejections = request.topics.map(
      (topic) =>
        topicRejection(topic) ?? (this.permissions.active ? this.permissions.refusal(connection, topic) : undefined),
    );
    const authorize = this.options.authorizeSubscription;
    if (authorize === undefined) {
      this.subscribe(connection, request.topics, rejections);
      return undefined;
    }
    return this.authorizeAll(authorize, connection, request.topics, rejections).then(() =>
      this.subscribe(connection, request.topics, rejections),
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

  /** Subscribes what was allowed; both lists of the answer keep the order of the request. */
  private subscribe(connection: WseConnection, topics: string[], rejections: (string | undefined)[]): void {
    // The connection may have closed while the authorizer ran: then there is nothing to do.
    const change = this.registry.subscribeConnection(
      connection.id,
      topics.filter((_, i) => rejections[i] === undefined),
    );
    if (change === undefined) return;
    const refusedByRegistry = new Map(change.failed.map((f) => [f.topic, f.reason]));
    const succeeded: string[] = [];
    const failed: { topic: string; reason: string }[] = [];
    topics.forEach((topic, i) => {
      const reason = rejections[i] ?? refusedByRegistry.get(topic);
      if (reason === undefined) succeeded.push(topic);
      else failed.push({ topic, reason });
    });
    this.sendUpdate(connection, 'subscribe', succeeded, failed);
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
    failed: { topic: string; reason: string }[],
  ): void {
    connection.send(
      this.frames.frame('subscription_update', {
        action,
        // What WSE's clients look at before they mark topics as subscribed: no topic failed.
        success: failed.length === 0,
        success_topics: succeeded,
        failed_topics: failed.map((f) => f.topic),
        errors: failed,
      }),
    );
  }
}
