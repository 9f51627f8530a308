import { Inject, Injectable } from '@nestjs/common';
import { OnWseConnect, WsePublisher, type WseConnectionInfo } from '../../src/index.js';

/**
 * A consumer app's `@OnWseConnect` hook, as applications commonly write one (the example
 * server's NotificationsService does the same): every authenticated connection is subscribed to
 * its own `user:{sub}:events` topic. Give it to `startEngineApp(options, { providers })` where a
 * suite needs connections that hold a subscription they did not ask for.
 */
@Injectable()
export class UserTopicOnConnect {
  constructor(@Inject(WsePublisher) private readonly wse: WsePublisher) {}

  @OnWseConnect()
  subscribeToOwnTopic(connection: WseConnectionInfo): void {
    if (connection.userId !== null) this.wse.subscribe(connection.id, [`user:${connection.userId}:events`]);
  }
}
