import { Injectable } from '@nestjs/common';
import { escapeTopicPattern, OnWseConnect, WsePublisher, type WseConnectionInfo } from 'nestjs-wse';

/**
 * A domain service as an application would write one: every authenticated connection gets its
 * own `user:{sub}:events` topic, and the rest of the app notifies a user by publishing there.
 */
@Injectable()
export class NotificationsService {
  constructor(private readonly wse: WsePublisher) {}

  @OnWseConnect()
  subscribeToOwnTopic(connection: WseConnectionInfo): void {
    // Escaped: a token whose sub is "*" must get the topic "user:*:events", not the pattern
    // that reads every user's events (issue 16).
    if (connection.userId !== null)
      this.wse.subscribe(connection.id, [userTopic(escapeTopicPattern(connection.userId))]);
  }

  /** Sends an event to every connection of a user, on every instance. */
  notify(userId: string, type: string, payload: Record<string, unknown>): void {
    this.wse.publish(userTopic(userId), { t: type, p: payload });
  }
}

export function userTopic(userId: string): string {
  return `user:${userId}:events`;
}
