import { Injectable } from '@nestjs/common';
import { OnWseEvent, WseAdmin, WseErrorCode, WseEventError, WsePublisher, type WseEventContext } from 'nestjs-wse';

const MAX_TEXT_LENGTH = 2_000;
const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * The demo's one client event: `chat_message` `{room, text}` is published to `chat:{room}` as
 * `{"t":"chat_message","p":{"room","text","user_id","ts"}}`. Clients join a room with an
 * ordinary `subscription` to `chat:{room}`. During a Redis outage chat stays local to each
 * instance (see below).
 */
@Injectable()
export class ChatHandlers {
  constructor(
    private readonly wse: WsePublisher,
    private readonly admin: WseAdmin,
  ) {}

  @OnWseEvent('chat_message')
  onChatMessage(payload: Readonly<Record<string, unknown>>, { connection }: WseEventContext): void {
    const { room, text } = payload;
    if (typeof room !== 'string' || !ROOM_NAME.test(room)) {
      throw new WseEventError(
        WseErrorCode.INVALID_MESSAGE,
        'chat_message: p.room must be 1-64 letters, digits, "_", "." or "-"',
      );
    }
    if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT_LENGTH) {
      throw new WseEventError(
        WseErrorCode.INVALID_MESSAGE,
        `chat_message: p.text must be a string of 1-${MAX_TEXT_LENGTH} characters`,
      );
    }
    const topic = `chat:${room}`;
    const message = { t: 'chat_message', p: { room, text, user_id: connection.userId, ts: new Date().toISOString() } };
    // Chat goes through Redis so that members on every instance get it (the sender's own copy
    // too, once). While Redis is unreachable a publish could only end in the dead letter queue,
    // and the room would fall silent even for members connected to this very instance. So while
    // multi-instance mode is on and Redis is not proven to deliver, the message is delivered on
    // this instance only: chat degrades to per-instance rooms instead of stopping, and members
    // elsewhere miss it (their pages hear so from the `resync` frame when Redis is back). It is
    // not queued for later: chat is ephemeral, and a replay would reach local members twice.
    // In the moment between Redis dying and its connection closing, `redisConnected()` is
    // still true and the message takes the publish path: retried, then held in the DLQ.
    if (this.admin.multiInstance && !this.admin.redisConnected()) this.wse.publishLocal(topic, message);
    else this.wse.publish(topic, message);
  }
}
