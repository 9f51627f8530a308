import { isUtf8 } from 'node:buffer';
import { inflateSync } from 'node:zlib';
import { decode as decodeMsgpack, DecodeError } from '@msgpack/msgpack';
import { invalidMessages } from './protocol.messages.js';

/** A client frame that passed the shape check (CONTRACT section 4). */
export interface InboundFrame {
  readonly t: string;
  /** `p`, or an empty object when the client sent none. */
  readonly p: Readonly<Record<string, unknown>>;
  readonly id?: string;
  readonly cid?: string;
}

export type InboundParseResult =
  { readonly ok: true; readonly frame: InboundFrame } | { readonly ok: false; readonly message: string };

/** Which of WSE's binary formats a server accepts (docs/PROTOCOL.md, "Compatibility with WSE clients"). */
export interface InboundDecodeOptions {
  /** Binary frames `M:` + MessagePack. */
  readonly msgpack: boolean;
  /** Binary frames `C:` + zlib (of JSON text, or of MessagePack). */
  readonly compression: boolean;
  /** The most bytes a `C:` frame may inflate to: the server's largest frame, so a small frame cannot become a large one. */
  readonly maxInflatedBytes: number;
}

const EMPTY_PAYLOAD: Readonly<Record<string, unknown>> = Object.freeze({});

const COLON = 0x3a;
const MSGPACK_MARK = 0x4d; // 'M'
const COMPRESSED_MARK = 0x43; // 'C'
const ENCRYPTED_MARK = 0x45; // 'E'

/**
 * Parses one client frame into `{t, p, id, cid}`. Never throws: malformed input is a result
 * carrying the `INVALID_MESSAGE` text.
 *
 * Beyond plain JSON it reads what WSE's own clients and servers use, as WSE's server does:
 * - a category prefix before the JSON (`WSE{…}`, `S{…}`, `U{…}`, and the same before `[`),
 *   which the WSE 1.x SDKs put on every frame;
 * - binary `M:` + MessagePack and `C:` + zlib (inflated to at most `maxInflatedBytes`; the
 *   inflated bytes are MessagePack when they start with a map marker, else JSON text);
 * - `type` / `payload` standing for `t` / `p` when those are absent.
 * Text and binary frames are otherwise treated alike (ws has already checked a text frame's
 * UTF-8; a binary one is checked here).
 *
 * Prototype keys are harmless here: JSON.parse makes `__proto__` an own property, the
 * MessagePack decoder refuses the key, and nothing downstream merges client objects into others.
 */
export function parseInboundFrame(data: Buffer, isBinary: boolean, options: InboundDecodeOptions): InboundParseResult {
  if (isBinary && data.length >= 2 && data[1] === COLON) {
    switch (data[0]) {
      case MSGPACK_MARK:
        return options.msgpack ? fromMsgpack(data.subarray(2)) : invalid(invalidMessages.msgpackOff());
      case COMPRESSED_MARK:
        return options.compression
          ? fromCompressed(data.subarray(2), options)
          : invalid(invalidMessages.compressionOff());
      case ENCRYPTED_MARK:
        return invalid(invalidMessages.encryptedUnsupported());
    }
  }
  return fromJsonText(data, isBinary);
}

/** The topics of a `subscription` frame, or the reason it is malformed. */
export function parseSubscriptionRequest(
  p: Readonly<Record<string, unknown>>,
  maxTopics = Number.POSITIVE_INFINITY,
): { ok: true; action: 'subscribe' | 'unsubscribe'; topics: string[] } | { ok: false; message: string } {
  const action = p.action;
  if (action !== 'subscribe' && action !== 'unsubscribe') {
    return { ok: false, message: invalidMessages.badSubscriptionAction() };
  }
  const topics = p.topics;
  if (!Array.isArray(topics)) return { ok: false, message: invalidMessages.badSubscriptionTopics() };
  // Counted before anything else is done with them: a giant list costs nothing more than this.
  if (topics.length > maxTopics) return { ok: false, message: invalidMessages.tooManyTopics(maxTopics) };
  if (!topics.every((topic) => typeof topic === 'string')) {
    return { ok: false, message: invalidMessages.badSubscriptionTopics() };
  }
  return { ok: true, action, topics: topics as string[] };
}

/** What a control frame asks for; `undefined` for an application event. `t` matches in any case. */
export type InboundControl = 'ping' | 'pong' | 'client_hello' | 'subscription' | 'sync_request';

/**
 * The control frames of CONTRACT section 4, with WSE's synonyms: `subscription_update` (what
 * WSE's SDKs send) is `subscription`, and `sync_request` asks for the initial sync.
 */
export function inboundControl(t: string): InboundControl | undefined {
  switch (t.toLowerCase()) {
    case 'ping':
      return 'ping';
    case 'pong':
      return 'pong';
    case 'client_hello':
      return 'client_hello';
    case 'subscription':
    case 'subscription_update':
      return 'subscription';
    case 'sync_request':
      return 'sync_request';
    default:
      return undefined;
  }
}

// ---- decoders --------------------------------------------------------------------------------

function invalid(message: string): InboundParseResult {
  return { ok: false, message };
}

/** JSON text, after an optional category prefix (`WSE`, `S`, `U` right before `{` or `[`). */
function fromJsonText(bytes: Buffer, checkUtf8: boolean): InboundParseResult {
  if (checkUtf8 && !isUtf8(bytes)) return invalid(invalidMessages.notUtf8());
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8', categoryPrefixLength(bytes)));
  } catch {
    return invalid(invalidMessages.notJson());
  }
  return toFrame(value);
}

function fromMsgpack(bytes: Buffer): InboundParseResult {
  // No length field may claim more entries than there are bytes: a short frame cannot make the
  // decoder allocate a large array or string.
  const max = bytes.length;
  let value: unknown;
  try {
    value = decodeMsgpack(bytes, {
      maxStrLength: max,
      maxBinLength: max,
      maxArrayLength: max,
      maxMapLength: max,
      maxExtLength: max,
    });
  } catch (error) {
    return invalid(invalidMessages.msgpackMalformed(msgpackDetail(error)));
  }
  return toFrame(value);
}

function fromCompressed(bytes: Buffer, options: InboundDecodeOptions): InboundParseResult {
  let inflated: Buffer;
  try {
    // Inflation stops as soon as the output would pass the cap: a zlib bomb costs at most
    // maxInflatedBytes of memory and the time to produce them, like any frame that size.
    inflated = inflateSync(bytes, { maxOutputLength: options.maxInflatedBytes });
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
      ? invalid(invalidMessages.zlibTooLarge(options.maxInflatedBytes))
      : invalid(invalidMessages.zlibMalformed());
  }
  if (isMsgpackMap(inflated[0])) {
    return options.msgpack ? fromMsgpack(inflated) : invalid(invalidMessages.msgpackOff());
  }
  return fromJsonText(inflated, true);
}

/** The frame's fields, with `type` / `payload` standing in when `t` / `p` are absent (as WSE's server reads them). */
function toFrame(value: unknown): InboundParseResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
    return invalid(invalidMessages.notObject());
  }
  const raw = value as Record<string, unknown>;
  const t = Object.hasOwn(raw, 't') ? raw.t : own(raw, 'type');
  if (typeof t !== 'string' || t.length === 0) return invalid(invalidMessages.missingType());
  const p = Object.hasOwn(raw, 'p') ? raw.p : own(raw, 'payload');
  if (
    p !== undefined &&
    p !== null &&
    (typeof p !== 'object' || Array.isArray(p) || ArrayBuffer.isView(p) || p instanceof Date)
  ) {
    return invalid(invalidMessages.payloadNotObject());
  }
  const id = own(raw, 'id');
  const cid = own(raw, 'cid');
  return {
    ok: true,
    frame: {
      t,
      p: (p as Record<string, unknown> | null | undefined) ?? EMPTY_PAYLOAD,
      id: typeof id === 'string' ? id : undefined,
      cid: typeof cid === 'string' ? cid : undefined,
    },
  };
}

function own(raw: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(raw, key) ? raw[key] : undefined;
}

const W = 0x57;
const S = 0x53;
const E = 0x45;
const U = 0x55;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;

function categoryPrefixLength(bytes: Buffer): number {
  const isOpen = (byte: number | undefined): boolean => byte === OPEN_BRACE || byte === OPEN_BRACKET;
  if (bytes[0] === W && bytes[1] === S && bytes[2] === E && isOpen(bytes[3])) return 3;
  if ((bytes[0] === S || bytes[0] === U) && isOpen(bytes[1])) return 1;
  return 0;
}

/** fixmap, map16, map32: no JSON text can start with these bytes (they are not valid UTF-8 there). */
function isMsgpackMap(byte: number | undefined): boolean {
  return byte !== undefined && ((byte >= 0x80 && byte <= 0x8f) || byte === 0xde || byte === 0xdf);
}

/** The decoder's own words for a bad type byte or trailing bytes; "truncated data" for the rest (its range errors read as internals). */
function msgpackDetail(error: unknown): string {
  if (error instanceof DecodeError) return error.message;
  if (error instanceof RangeError && error.message.startsWith('Extra ')) return error.message;
  return 'truncated data';
}
