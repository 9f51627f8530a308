import { WSE_PROTOCOL_VERSION, WSE_SYSTEM_CATEGORY } from './protocol.constants.js';

/**
 * A complete, unmasked WebSocket text frame (header and payload in one Buffer), built once per
 * message and written as-is to every recipient's socket. Building it here instead of calling
 * `ws.send()` per recipient saves a header allocation and a length measurement per delivery,
 * and lets a connection's pending frames go out in one write (see WseConnection).
 */
export type WireFrame = Buffer & { readonly __wireFrame: true };

const OPCODE_TEXT_FIN = 0x81;

/** Frames `payload` (UTF-8 bytes) as one final text frame. Server frames are never masked. */
export function textFrame(payload: Buffer): WireFrame {
  const length = payload.length;
  const frame = frameWithHeader(length);
  payload.copy(frame, frame.length - length);
  return frame as WireFrame;
}

/** Frames `text` as one final text frame, encoded straight into it (no intermediate Buffer). */
export function textFrameOf(text: string): WireFrame {
  const length = Buffer.byteLength(text, 'utf8');
  const frame = frameWithHeader(length);
  frame.write(text, frame.length - length, 'utf8');
  return frame as WireFrame;
}

/** A frame Buffer of a `length`-byte payload, its header written, the payload left to fill. */
function frameWithHeader(length: number): Buffer {
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = OPCODE_TEXT_FIN;
  if (headerLength === 2) {
    frame[1] = length;
  } else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  return frame;
}

/** The system envelope `{"c":"WSE","t":type,"p":payload,"v":1}` as a ready frame. */
export function systemFrame(type: string, payload: object, meta?: SystemFrameMeta): WireFrame {
  return textFrameOf(JSON.stringify(systemEnvelope(type, payload, meta)));
}

/**
 * A placeholder for the `index`-th value of a `SystemFrameTemplate`: put it where the value
 * goes in the payload. (A NUL cannot come from our own payloads' fixed text, so a slot is never
 * mistaken for it.)
 */
const META_ID_SLOT = '\u0000meta:id\u0000';
const META_TS_SLOT = '\u0000meta:ts\u0000';

export function templateSlot(index: number): string {
  return `\u0000slot:${index}\u0000`;
}

/**
 * A system frame serialized once, with slots where its per-frame values go: filled, it is
 * byte for byte what `SystemFrames.frame` makes of the same payload with those values, for the
 * price of a few string concatenations instead of serializing the whole envelope (the
 * `server_ready` of every handshake). Values are strings or null, serialized as JSON.
 */
export class SystemFrameTemplate {
  /** `parts[i]` comes before the i-th value (`id`, `ts`, then the slots), the last one after them all. */
  private readonly parts: readonly string[];

  /**
   * `json` is the serialized envelope, holding each of `markers` once, in order: the `id` and
   * `ts` ones first when `meta` makes them, then the payload's slots.
   */
  constructor(
    json: string,
    markers: readonly string[],
    private readonly slotCount: number,
    private readonly meta: (() => SystemFrameMeta | undefined) | undefined,
  ) {
    const parts: string[] = [];
    let from = 0;
    for (const raw of markers) {
      const marker = JSON.stringify(raw);
      const at = json.indexOf(marker, from);
      if (at < 0 || json.includes(marker, at + marker.length)) {
        throw new Error(`SystemFrameTemplate: each slot must appear exactly once, in order (${marker})`);
      }
      parts.push(json.slice(from, at));
      from = at + marker.length;
    }
    parts.push(json.slice(from));
    this.parts = parts;
  }

  /** The frame with `values` in the payload's slots (and the `id` / `ts` made for it). */
  frame(values: readonly (string | null)[]): WireFrame {
    if (values.length !== this.slotCount) {
      throw new Error(`SystemFrameTemplate: ${this.slotCount} values expected, got ${values.length}`);
    }
    const parts = this.parts;
    let text = parts[0];
    let part = 1;
    if (this.meta !== undefined) {
      const meta = this.meta();
      if (meta?.id !== undefined) text += JSON.stringify(meta.id) + parts[part++];
      if (meta?.ts !== undefined) text += JSON.stringify(meta.ts) + parts[part++];
    }
    for (let i = 0; i < values.length; i++) text += JSON.stringify(values[i]) + parts[part++];
    return textFrameOf(text);
  }
}

/**
 * Optional envelope fields WSE's clients read when present: `id` (they drop a repeated id) and
 * `ts` (ISO 8601; WSE's 1.x SDK drops a frame whose `ts` looks older than a few seconds, so a
 * server clock behind the client's loses frames: off unless asked for).
 */
export interface SystemFrameMeta {
  readonly id?: string;
  readonly ts?: string;
  /** The client frame this one answers (its `cid`, else its `id`), as WSE pairs requests and responses. */
  readonly cid?: string;
}

/**
 * `c` and `t` stay the first two keys: WSE's Python client recognises `PONG` and `ping` by
 * finding `"t":"PONG"` within the first 25 characters of the text.
 */
export function systemEnvelope(type: string, payload: object, meta?: SystemFrameMeta): SystemEnvelope {
  return {
    c: WSE_SYSTEM_CATEGORY,
    t: type,
    ...(meta?.id === undefined ? {} : { id: meta.id }),
    ...(meta?.ts === undefined ? {} : { ts: meta.ts }),
    ...(meta?.cid === undefined ? {} : { cid: meta.cid }),
    p: payload,
    v: WSE_PROTOCOL_VERSION,
  };
}

export interface SystemEnvelope {
  readonly c: string;
  readonly t: string;
  readonly id?: string;
  readonly ts?: string;
  readonly cid?: string;
  readonly p: object;
  readonly v: number;
}

/** The `error` system message. */
export function errorFrame(code: string, message: string, extra?: object, meta?: SystemFrameMeta): WireFrame {
  return systemFrame('error', { code, message, ...extra }, meta);
}

/**
 * Builds system frames with the `id` / `ts` the server is configured to add. Plain (no Nest):
 * the module provides one instance; frames are still built once and shared by every recipient.
 */
export class SystemFrames {
  constructor(
    private readonly withId: boolean,
    private readonly withTs: boolean,
    private readonly newId: () => string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A system frame; `at` is the time it describes (its `ts`), now by default. */
  frame(type: string, payload: object, at?: Date): WireFrame {
    return systemFrame(type, payload, this.meta(at));
  }

  /**
   * A template of the system frame `type` whose payload holds `slotCount` slots
   * (`templateSlot(0)`, ...): what `frame(type, payload)` makes, with each slot's value filled
   * in per frame. Its `id` / `ts` are made per frame, as `frame` makes them.
   */
  template(type: string, payload: object, slotCount: number): SystemFrameTemplate {
    const meta: SystemFrameMeta | undefined =
      !this.withId && !this.withTs
        ? undefined
        : { id: this.withId ? META_ID_SLOT : undefined, ts: this.withTs ? META_TS_SLOT : undefined };
    const markers: string[] = [];
    if (this.withId) markers.push(META_ID_SLOT);
    if (this.withTs) markers.push(META_TS_SLOT);
    for (let i = 0; i < slotCount; i++) markers.push(templateSlot(i));
    return new SystemFrameTemplate(
      JSON.stringify(systemEnvelope(type, payload, meta)),
      markers,
      slotCount,
      meta === undefined ? undefined : () => this.meta(),
    );
  }

  error(code: string, message: string, extra?: object): WireFrame {
    return errorFrame(code, message, extra, this.meta());
  }

  /**
   * The `error` answering a client frame: with a top-level `cid`, the frame's own `cid` or else
   * its `id` (none when it had neither).
   */
  replyError(
    request: { readonly id?: string; readonly cid?: string },
    code: string,
    message: string,
    extra?: object,
  ): WireFrame {
    const cid = request.cid ?? request.id;
    if (cid === undefined) return this.error(code, message, extra);
    return errorFrame(code, message, extra, { ...this.meta(), cid });
  }

  private meta(at?: Date): SystemFrameMeta | undefined {
    if (!this.withId && !this.withTs) return undefined;
    return {
      id: this.withId ? this.newId() : undefined,
      ts: this.withTs ? (at ?? this.now()).toISOString() : undefined,
    };
  }
}
