/**
 * The history stamp of CONTRACT section 11: a message on a history topic whose payload is a JSON
 * object is delivered as `{"tp":"<topic>","e":"<epoch>","o":<offset>, ...the payload's own
 * fields}`. The stamp is spliced into the payload's bytes once per message (never per
 * recipient): the payload is not parsed and not serialised again, so what the publisher wrote
 * reaches the client byte for byte after the stamp.
 */

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;
const QUOTE = 0x22;

/**
 * True when the payload is a JSON object as far as stamping goes: its first byte is `{` and its
 * last is `}`. That holds for every object the library serialises; a string or Buffer published
 * as-is qualifies only when it is written that way (no surrounding whitespace). Arrays, strings,
 * numbers and empty payloads are delivered unstamped.
 */
export function isStampable(payload: Buffer): boolean {
  const length = payload.length;
  return length >= 2 && payload[0] === OPEN_BRACE && payload[length - 1] === CLOSE_BRACE;
}

/** `isStampable` for a payload still in text form (what goes to Redis). */
export function isStampableText(payload: string | Buffer): boolean {
  if (typeof payload !== 'string') return isStampable(payload);
  const length = payload.length;
  return length >= 2 && payload.charCodeAt(0) === OPEN_BRACE && payload.charCodeAt(length - 1) === CLOSE_BRACE;
}

/** The bytes before a message's offset: `{"tp":"<topic>","e":"<epoch>","o":`. Built once per topic and epoch. */
export function stampPrefix(topic: string, epoch: string): Buffer {
  return Buffer.from(`{"tp":${JSON.stringify(topic)},"e":${JSON.stringify(epoch)},"o":`, 'utf8');
}

/**
 * The stamped payload: `prefix`, the offset's digits, then the payload after its opening brace
 * (with a comma between, unless the object is empty). `payload` must be stampable.
 */
export function stampPayload(prefix: Buffer, offset: number, payload: Buffer): Buffer {
  const digits = String(offset);
  const empty = isEmptyObject(payload);
  // Outside the shared pool: a stamped payload may be kept in history for minutes, and a small
  // pooled Buffer kept alive holds its whole 8 KiB slab with it.
  const stamped = Buffer.allocUnsafeSlow(prefix.length + digits.length + (empty ? 0 : 1) + payload.length - 1);
  prefix.copy(stamped, 0);
  let at = prefix.length;
  at += stamped.write(digits, at, 'latin1');
  if (!empty) stamped[at++] = COMMA;
  payload.copy(stamped, at, 1);
  return stamped;
}

/** A stamp read back from a stamped payload. */
export interface ReadStamp {
  readonly epoch: string;
  readonly offset: number;
}

/**
 * Reads the epoch and offset of a payload stamped for `topicJson` (the topic as JSON text,
 * quotes included), without parsing the rest; `undefined` when the payload does not start with
 * such a stamp (a message published from outside with a plain PUBLISH, or a non-object one).
 */
export function readStamp(payload: Buffer, topicJson: Buffer): ReadStamp | undefined {
  // {"tp":<topic>,"e":"
  const head = 6;
  if (payload.length < head + topicJson.length + 12) return undefined;
  if (payload.toString('latin1', 0, head) !== '{"tp":') return undefined;
  if (payload.compare(topicJson, 0, topicJson.length, head, head + topicJson.length) !== 0) return undefined;
  let at = head + topicJson.length;
  if (payload.toString('latin1', at, at + 6) !== ',"e":"') return undefined;
  at += 6;
  const epochStart = at;
  // Epochs are made of letters, digits, '.', '-' and ':' (never a quote or a backslash).
  while (at < payload.length && payload[at] !== QUOTE) at++;
  const epochEnd = at;
  if (payload.toString('latin1', at, at + 6) !== '","o":') return undefined;
  at += 6;
  let offset = 0;
  const digitsStart = at;
  while (at < payload.length && payload[at] >= 0x30 && payload[at] <= 0x39 && at - digitsStart < 16) {
    offset = offset * 10 + (payload[at] - 0x30);
    at++;
  }
  if (at === digitsStart) return undefined;
  return { epoch: payload.toString('latin1', epochStart, epochEnd), offset };
}

/** `{` then only whitespace then `}`. */
function isEmptyObject(payload: Buffer): boolean {
  const last = payload.length - 1;
  for (let i = 1; i < last; i++) {
    const c = payload[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return true;
}
