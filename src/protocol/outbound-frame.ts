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
  payload.copy(frame, headerLength);
  return frame as WireFrame;
}

/** The system envelope `{"c":"WSE","t":type,"p":payload,"v":1}` as a ready frame. */
export function systemFrame(type: string, payload: object, meta?: SystemFrameMeta): WireFrame {
  return textFrame(Buffer.from(JSON.stringify(systemEnvelope(type, payload, meta))));
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
