import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** How a raw connection ended: the close frame's code (if the server sent one) and when. */
export interface RawClose {
  /** The close code of the server's close frame; undefined when the socket ended without one. */
  readonly code: number | undefined;
  /** The HTTP status line when the upgrade was refused. */
  readonly refusedWith: string | undefined;
}

/**
 * A WebSocket client below `ws`: it performs the upgrade by hand and then writes whatever bytes
 * a test gives it, so frames no well-behaved client can send (RSV bits set, invalid UTF-8 in a
 * text frame, reserved opcodes, unmasked frames, lengths over the limit) reach the server as
 * they would from a hostile peer.
 */
export class RawWebSocket {
  private buffer = Buffer.alloc(0);
  private upgraded = false;
  private readonly ended: Promise<RawClose>;

  private constructor(private readonly socket: Socket) {
    let refusedWith: string | undefined;
    let code: number | undefined;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      if (!this.upgraded) {
        const end = this.buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = this.buffer.subarray(0, end).toString('latin1');
        this.buffer = this.buffer.subarray(end + 4);
        if (!head.startsWith('HTTP/1.1 101')) refusedWith = head.split('\r\n')[0];
        this.upgraded = true;
      }
      // Server frames are never masked: find a close frame (opcode 8) among them.
      for (;;) {
        if (this.buffer.length < 2) return;
        const opcode = this.buffer[0] & 0x0f;
        let length = this.buffer[1] & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (this.buffer.length < 4) return;
          length = this.buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (this.buffer.length < 10) return;
          length = Number(this.buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (this.buffer.length < offset + length) return;
        if (opcode === 0x8 && length >= 2) code = this.buffer.readUInt16BE(offset);
        this.buffer = this.buffer.subarray(offset + length);
      }
    });
    socket.on('error', () => undefined);
    this.ended = new Promise((resolve) => socket.once('close', () => resolve({ code, refusedWith })));
  }

  /**
   * Opens a TCP connection to `host:port` and sends the upgrade request for `path` with the
   * given extra headers (an Origin, a Cookie…). Resolves once the request is written; the
   * server's answer is read in the background.
   */
  static async open(port: number, path: string, headers: Record<string, string> = {}): Promise<RawWebSocket> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawWebSocket(socket);
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ];
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    return client;
  }

  /** Writes raw bytes (one or more frames built with `frame()`). */
  write(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Resolves when the server has closed the TCP connection, at most `timeoutMs`. */
  async closed(timeoutMs = 5_000): Promise<RawClose> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`raw socket still open after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.ended, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Destroys the TCP connection from this side. */
  destroy(): void {
    this.socket.destroy();
  }
}

/** Options of a hand-built client frame. */
export interface FrameOptions {
  /** 0x1 text, 0x2 binary, 0x8 close, 0x9 ping… or a reserved one. @default 0x1 */
  opcode?: number;
  /** FIN bit. @default true */
  fin?: boolean;
  /** RSV1..RSV3 as bits 0b100, 0b010, 0b001. @default 0 */
  rsv?: number;
  /** Clients must mask; false sends an unmasked frame (a protocol error). @default true */
  masked?: boolean;
  /** Declares this length instead of the payload's (an oversize announcement). */
  declaredLength?: number;
}

/** One client frame around `payload`, masked unless told otherwise. */
export function frame(payload: Buffer, options: FrameOptions = {}): Buffer {
  const { opcode = 0x1, fin = true, rsv = 0, masked = true } = options;
  const length = options.declaredLength ?? payload.length;
  const header: number[] = [(fin ? 0x80 : 0) | ((rsv & 0b111) << 4) | (opcode & 0x0f)];
  const maskBit = masked ? 0x80 : 0;
  let extended = Buffer.alloc(0);
  if (length < 126) {
    header.push(maskBit | length);
  } else if (length < 65_536) {
    header.push(maskBit | 126);
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(length);
  } else {
    header.push(maskBit | 127);
    extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(BigInt(length));
  }
  if (!masked) return Buffer.concat([Buffer.from(header), extended, payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([Buffer.from(header), extended, mask, body]);
}
