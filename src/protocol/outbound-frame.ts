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
export function systemFrame(type: string, payload: object): WireFrame {
  return textFrame(Buffer.from(JSON.stringify(systemEnvelope(type, payload))));
}

export function systemEnvelope(type: string, payload: object): { c: string; t: string; p: object; v: number } {
  return { c: WSE_SYSTEM_CATEGORY, t: type, p: payload, v: WSE_PROTOCOL_VERSION };
}

/** The `error` system message. */
export function errorFrame(code: string, message: string, extra?: object): WireFrame {
  return systemFrame('error', { code, message, ...extra });
}
