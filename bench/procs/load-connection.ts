import { connect, type Socket } from 'node:net';
import type { WireProtocol } from '../lib/apis.js';
import { clockMs, readTimestamp } from '../lib/clock.js';
import { LatencyHistogram } from '../lib/histogram.js';

/**
 * A deliberately cheap WebSocket client for load generation: a raw TCP socket, a hand-written
 * upgrade request, and a frame scanner that counts frames and bytes without decoding them (no
 * per-message event, no UTF-8 validation, no JSON.parse). Only every `sampleEvery`-th frame of
 * the process is looked into, for its timestamp. This keeps the load generator far cheaper per
 * message than the servers it measures.
 *
 * It speaks three dialects: plain ws (the bench's own subscribe message), nestjs-wse (waits for
 * `server_ready`, subscribes with the wire protocol, answers the heartbeat) and Socket.IO over
 * Engine.IO v4's websocket transport (open packet, namespace connect, acked `subscribe` event,
 * ping/pong).
 */

/** What every connection of a process adds to. */
export class ReceiveCounters {
  frames = 0;
  /** Reads that carried at least one counted frame: frames / reads is how many frames a server write held. */
  reads = 0;
  bytes = 0;
  lastFrameMs = 0;
  sampleEvery = 64;
  countdown = 64;
  lostAfterReady = 0;
  open = 0;
  readonly histogram = new LatencyHistogram();

  reset(sampleEvery: number): void {
    this.frames = 0;
    this.reads = 0;
    this.bytes = 0;
    this.lastFrameMs = 0;
    this.sampleEvery = sampleEvery;
    this.countdown = sampleEvery;
    this.histogram.reset();
  }
}

interface Step {
  readonly send?: Buffer;
  /** Checks the next text frame; false fails the connection. */
  readonly expect?: (payload: string) => boolean;
}

/** Where every socket of the process reads into; each read is scanned before the next. */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const HEADER_END = Buffer.from('\r\n\r\n');
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** A masked client frame (RFC 6455 requires clients to mask). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + 4 + length);
  frame[0] = 0x80 | opcode;
  if (header === 2) {
    frame[1] = 0x80 | length;
  } else if (header === 4) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  MASK.copy(frame, header);
  const start = header + 4;
  for (let i = 0; i < length; i++) frame[start + i] = payload[i] ^ MASK[i & 3];
  return frame;
}

const textFrame = (text: string): Buffer => clientFrame(OP_TEXT, Buffer.from(text));
const SOCKET_IO_PONG = textFrame('3');
const WSE_PONG = textFrame('{"t":"pong"}');

/** The handshake and subscription steps of each dialect, for the given subscription messages. */
export function handshakeSteps(protocol: WireProtocol, topicChunks: readonly (readonly string[])[]): Step[] {
  const subscribe = (topics: readonly string[]): Buffer =>
    textFrame(JSON.stringify({ t: 'subscription', p: { action: 'subscribe', topics } }));
  switch (protocol) {
    case 'ws':
      return topicChunks.map((chunk) => ({
        send: subscribe(chunk),
        expect: (p) => p.startsWith('{"t":"subscription_update"'),
      }));
    case 'wse':
      return [
        { expect: (p) => p.includes('"t":"server_ready"') },
        ...topicChunks.map((chunk) => ({
          send: subscribe(chunk),
          expect: (p: string) => p.includes('"t":"subscription_update"') && p.includes('"failed_topics":[]'),
        })),
      ];
    case 'socketio':
      return [
        { expect: (p) => p.startsWith('0{') },
        { send: textFrame('40') },
        { expect: (p) => p.startsWith('40') },
        ...topicChunks.map((chunk, i) => ({
          send: textFrame(`42${i}${JSON.stringify(['subscribe', chunk])}`),
          expect: (p: string) => p.startsWith(`43${i}`),
        })),
      ];
    default: {
      const never: never = protocol;
      throw new Error(`unknown protocol ${String(never)}`);
    }
  }
}

export interface LoadConnectionOptions {
  readonly port: number;
  readonly path: string;
  readonly protocol: WireProtocol;
  readonly token?: string;
  readonly localAddress: string;
  readonly steps: readonly Step[];
  readonly handshakeTimeoutMs: number;
}

const CONNECTING = 0;
const UPGRADING = 1;
const HANDSHAKE = 2;
const READY = 3;
const DEAD = 4;

export class LoadConnection {
  private readonly socket: Socket;
  private state = CONNECTING;
  private step = 0;
  private carry: Buffer | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly isSocketIo: boolean;
  private readonly isWse: boolean;

  constructor(
    private readonly options: LoadConnectionOptions,
    private readonly counters: ReceiveCounters,
    private readonly done: (error: string | undefined) => void,
  ) {
    this.isSocketIo = options.protocol === 'socketio';
    this.isWse = options.protocol === 'wse';
    this.timer = setTimeout(() => this.fail('handshake timeout'), options.handshakeTimeoutMs);
    this.socket = connect({
      host: '127.0.0.1',
      port: options.port,
      localAddress: options.localAddress,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes: number) => {
          this.onData(READ_BUFFER.subarray(0, bytes));
          return true;
        },
      },
    });
    this.socket.on('connect', () => this.onConnect());
    this.socket.on('error', (error: Error) => this.fail(error.message));
    this.socket.on('close', () => this.fail('closed'));
  }

  destroy(): void {
    if (this.state === READY) this.counters.open--;
    this.state = DEAD;
    clearTimeout(this.timer);
    this.socket.destroy();
  }

  private onConnect(): void {
    this.state = UPGRADING;
    const auth = this.options.token === undefined ? '' : `Authorization: Bearer ${this.options.token}\r\n`;
    this.socket.write(
      `GET ${this.options.path} HTTP/1.1\r\nHost: 127.0.0.1:${this.options.port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n${auth}\r\n`,
    );
  }

  private fail(reason: string): void {
    if (this.state === DEAD) return;
    if (this.state === READY) {
      this.counters.open--;
      this.counters.lostAfterReady++;
      this.state = DEAD;
      return;
    }
    this.state = DEAD;
    clearTimeout(this.timer);
    this.socket.destroy();
    this.done(reason);
  }

  /** `chunk` is a view of READ_BUFFER: whatever is kept for later is copied. */
  private onData(chunk: Buffer): void {
    if (this.state === UPGRADING) {
      const buffer = this.carry === undefined ? chunk : Buffer.concat([this.carry, chunk]);
      this.carry = undefined;
      const end = buffer.indexOf(HEADER_END);
      if (end < 0) {
        this.carry = Buffer.from(buffer);
        return;
      }
      const status = buffer.toString('latin1', 0, Math.min(end, 12));
      if (status !== 'HTTP/1.1 101') {
        this.fail(`upgrade refused: ${buffer.toString('latin1', 0, end).split('\r\n')[0]}`);
        return;
      }
      this.state = HANDSHAKE;
      this.advance();
      if (end + 4 < buffer.length) this.scan(buffer.subarray(end + 4));
      return;
    }
    if (this.state === HANDSHAKE || this.state === READY) this.scan(chunk);
  }

  /** Runs the send-only steps up to the next one that waits for a frame. */
  private advance(): void {
    const steps = this.options.steps;
    while (this.step < steps.length) {
      const step = steps[this.step];
      if (step.send !== undefined) this.socket.write(step.send);
      if (step.expect !== undefined) return;
      this.step++;
    }
    this.state = READY;
    clearTimeout(this.timer);
    this.counters.open++;
    this.done(undefined);
  }

  private onHandshakeFrame(payload: string): void {
    const step = this.options.steps[this.step];
    if (step.expect !== undefined && !step.expect(payload)) {
      this.fail(`unexpected frame during handshake: ${payload.slice(0, 200)}`);
      return;
    }
    this.step++;
    this.advance();
  }

  /** Walks the frames in `chunk` (plus what was left of the previous one). */
  private scan(chunk: Buffer): void {
    let buffer = chunk;
    if (this.carry !== undefined) {
      buffer = Buffer.concat([this.carry, chunk]);
      this.carry = undefined;
    }
    const counters = this.counters;
    const end = buffer.length;
    let offset = 0;
    let frames = 0;
    let nowMs = 0;
    while (end - offset >= 2) {
      const opcode = buffer[offset] & 0x0f;
      let length = buffer[offset + 1] & 0x7f;
      let header = 2;
      if (length === 126) {
        if (end - offset < 4) break;
        length = buffer.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (end - offset < 10) break;
        length = buffer.readUInt32BE(offset + 2) * 2 ** 32 + buffer.readUInt32BE(offset + 6);
        header = 10;
      }
      const start = offset + header;
      const stop = start + length;
      if (stop > end) break;
      offset = stop;
      if (opcode === OP_TEXT || opcode === OP_BINARY) {
        if (this.state !== READY) {
          this.onHandshakeFrame(buffer.toString('utf8', start, stop));
          if (this.state === DEAD) return;
          continue;
        }
        if (this.isSocketIo) {
          const first = buffer[start];
          if (first === 0x32 && length === 1) {
            this.socket.write(SOCKET_IO_PONG); // Engine.IO ping
            continue;
          }
          if (first !== 0x34) continue; // not a message packet
        } else if (this.isWse && buffer[start + 2] === 0x63) {
          // A system frame ({"c":"WSE",...}), not a topic message: answer the heartbeat.
          if (buffer[start + 16] === 0x70 && buffer[start + 17] === 0x69) this.socket.write(WSE_PONG);
          continue;
        }
        frames++;
        counters.bytes += length;
        if (--counters.countdown === 0) {
          counters.countdown = counters.sampleEvery;
          const ts = readTimestamp(buffer, start, stop);
          if (ts === ts) {
            if (nowMs === 0) nowMs = clockMs();
            counters.histogram.record(nowMs - ts);
          }
        }
      } else if (opcode === OP_PING) {
        this.socket.write(clientFrame(OP_PONG, buffer.subarray(start, stop)));
      } else if (opcode === OP_CLOSE) {
        this.fail('close frame');
        return;
      }
    }
    if (frames > 0) {
      counters.frames += frames;
      counters.reads++;
      counters.lastFrameMs = nowMs === 0 ? clockMs() : nowMs;
    }
    if (offset < end) this.carry = Buffer.from(buffer.subarray(offset));
  }
}
