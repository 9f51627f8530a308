import { Injectable } from '@nestjs/common';
import { OnWseEvent, WseErrorCode, WseEventError, WsePublisher, type WseEventContext } from '../../wse/index.js';

const MAX_TEXT_LENGTH = 2_000;
const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * The demo's one client event: `chat_message` `{room, text}` is published to `chat:{room}` as
 * `{"t":"chat_message","p":{"room","text","user_id","ts"}}`. Clients join a room with an
 * ordinary `subscription` to `chat:{room}`.
 */
@Injectable()
export class ChatHandlers {
  constructor(private readonly wse: WsePublisher) {}

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
    this.wse.publish(`chat:${room}`, {
      t: 'chat_message',
      p: { room, text, user_id: connection.userId, ts: new Date().toISOString() },
    });
  }
}
