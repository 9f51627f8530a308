import { MAX_TOPIC_BYTES } from '../wse.constants.js';
import { topicRejections } from '../wse.messages.js';

/**
 * Why a topic (exact or pattern) is refused, or `undefined` when it is acceptable: empty, longer
 * than 256 UTF-8 bytes, or holding a control character (CONTRACT section 4).
 */
export function topicRejection(topic: unknown): string | undefined {
  if (typeof topic !== 'string') return topicRejections.notString();
  if (topic.length === 0) return topicRejections.empty();
  // Cheap checks first (this runs on every publish): a UTF-16 length over the limit is over it
  // in UTF-8 too, and one of at most a third of it cannot be (3 bytes per UTF-16 unit at most).
  if (
    topic.length > MAX_TOPIC_BYTES ||
    (topic.length * 3 > MAX_TOPIC_BYTES && Buffer.byteLength(topic) > MAX_TOPIC_BYTES)
  ) {
    return topicRejections.tooLong(MAX_TOPIC_BYTES);
  }
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    // C0, DEL and C1: every character Unicode classes as a control (Cc).
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return topicRejections.controlCharacter();
  }
  return undefined;
}
