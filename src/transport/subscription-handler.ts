import { Injectable, Logger } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions, WseSubscriptionAuthorizer } from '../config/wse-module-options.interface.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { topicRejection } from '../hub/topic-validation.js';
import { parseSubscriptionRequest, type InboundFrame } from '../protocol/inbound-frame.js';
import { errorFrame, systemFrame } from '../protocol/outbound-frame.js';
import { WseErrorCode } from '../wse.constants.js';
import { logMessages, topicRejections } from '../wse.messages.js';
import type { WseConnection } from './wse-connection.js';

/**
 * `subscription` frames (CONTRACT section 4): validation, the application's
 * `authorizeSubscription`, then the registry; answered with `subscription_update`.
 */
@Injectable()
export class WseSubscriptionHandler {
  private readonly logger = new Logger('WseGateway');

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly registry: TopicRegistryService<WseConnection>,
  ) {}

  handle(connection: WseConnection, frame: InboundFrame): void {
    const request = parseSubscriptionRequest(frame.p, this.options.maxTopicsPerSubscription);
    if (!request.ok) {
      connection.send(errorFrame(WseErrorCode.INVALID_MESSAGE, request.message));
      return;
    }
    if (request.action === 'unsubscribe') {
      this.registry.unsubscribeConnection(connection.id, request.topics);
      this.sendUpdate(connection, 'unsubscribe', request.topics, []);
      return;
    }
    void this.subscribeAuthorized(connection, request.topics);
  }

  /**
   * Validates, asks `authorizeSubscription` for each topic, then subscribes what is allowed.
   * Both lists of the answer keep the order of the request.
   */
  private async subscribeAuthorized(connection: WseConnection, topics: string[]): Promise<void> {
    const rejections = topics.map((topic) => topicRejection(topic));
    const authorize = this.options.authorizeSubscription;
    if (authorize !== undefined) {
      await Promise.all(
        topics.map(async (topic, i) => {
          if (rejections[i] === undefined && !(await this.isAuthorized(authorize, connection, topic))) {
            rejections[i] = topicRejections.refused();
          }
        }),
      );
    }
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
      systemFrame('subscription_update', {
        action,
        success_topics: succeeded,
        failed_topics: failed.map((f) => f.topic),
        errors: failed,
      }),
    );
  }
}
