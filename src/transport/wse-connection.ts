import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { WseClaims, WseConnectionInfo } from '../protocol/connection.js';
import type { TopicSubscriber } from '../protocol/topic-subscriber.js';
import type { WireFrame } from '../protocol/outbound-frame.js';
import type { OutboundWriter } from './outbound-writer.js';
import type { TokenBucket } from './token-bucket.js';

export const WS_OPEN = 1;

/** Queued frames up to this many bytes in all are written as one copied Buffer (see flush). */
const COPY_BELOW_BYTES = 16 * 1024;

/**
 * One client connection: identity, subscriptions and its outbound queue.
 *
 * Outbound frames are queued and written in one go when the connection's turn in the writer's
 * round comes (see `OutboundWriter`): a loopback socket write costs 5-15 us of CPU whatever its
 * size, so a connection that receives ten messages meanwhile costs one write instead of ten.
 * Frames are written in the order they were queued, so per-connection order holds for topic
 * messages and system messages alike. Every frame to this socket goes through `send`; ws itself only writes
 * control frames (close, pong), which carry no order guarantee relative to data.
 */
export class WseConnection implements WseConnectionInfo, TopicSubscriber {
  readonly topics = new Set<string>();
  readonly connectedAt = new Date();
  /** Last fan-out sequence number delivered here: how a message reaches it once (TopicRegistryService). */
  lastDeliverySeq = 0;
  lastActivityMs: number;
  /** Inbound rate limit state (undefined when rate limiting is off). */
  readonly bucket: TokenBucket | undefined;
  /** Frames refused in a row by the rate limit; reset by an accepted one. */
  rejectedInARow = 0;
  /** A `rate_limit_warning` was sent and the bucket has not refilled above the mark since. */
  rateWarningSent = false;
  /** When the connection went over `maxBufferedBytes`; 0 while it keeps up. */
  slowSince = 0;
  /** The code the server closed with, once it started a close (see `close`). */
  closeCodeSent: number | undefined;
  /** A control frame's answer is still being worked out (a subscribe waiting for its authorizer). */
  controlBusy = false;
  /** Control frames that arrived meanwhile, answered in order once it is done (bounded). */
  controlQueue: Array<() => Promise<void> | undefined> | undefined;
  /** The token-expiry bucket holding this connection (WseTokenExpiry), while one does. */
  expiryBucketMs: number | undefined;
  /** Its place in that bucket. */
  expirySlot = 0;

  private readonly pending: WireFrame[] = [];
  /** `isSlow` as it was when the queue started (see send). */
  private slowWhileQueued = false;
  private readonly rawSocket: Socket;

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    readonly userId: string | null,
    readonly claims: WseClaims | null,
    private readonly maxBufferedBytes: number,
    private readonly writer: OutboundWriter,
    now: number,
    bucket?: TokenBucket,
  ) {
    this.lastActivityMs = now;
    this.bucket = bucket;
    // ws keeps the underlying TCP socket in a private field. Writing our pre-built frames to it
    // directly is what makes one write for many frames possible; ws exposes no cork of its own.
    this.rawSocket = (socket as unknown as { _socket: Socket })._socket;
  }

  /**
   * Queues a frame for the connection's next write. Returns false, and drops the frame, when the
   * socket is not open or already holds more than `maxBufferedBytes` the client has not read.
   */
  send(frame: WireFrame): boolean {
    if (this.socket.readyState !== WS_OPEN) {
      this.writer.droppedClosed++;
      return false;
    }
    if (this.pending.length === 0) {
      // The unread bytes only grow when this connection writes, which it does not do until its
      // queue is flushed: the check made as the queue starts holds for every frame queued after.
      this.slowWhileQueued = this.isSlow;
      if (!this.slowWhileQueued) this.writer.schedule(this);
    }
    if (this.slowWhileQueued) {
      this.writer.droppedSlow++;
      return false;
    }
    this.pending.push(frame);
    return true;
  }

  /** True while more than `maxBufferedBytes` wait unread in the socket: the client is not keeping up. */
  get isSlow(): boolean {
    return this.rawSocket.writableLength > this.maxBufferedBytes;
  }

  /** Bytes written to the socket and not yet taken by the client. */
  get bufferedBytes(): number {
    return this.rawSocket.writableLength;
  }

  /** Writes every queued frame in one syscall. */
  flush(): void {
    const pending = this.pending;
    const count = pending.length;
    if (count === 0) return;
    try {
      // Closed meanwhile: what was queued is dropped, as for any message to a closed socket.
      if (this.socket.readyState !== WS_OPEN) return;
      const raw = this.rawSocket;
      if (count === 1) {
        raw.write(pending[0]);
        return;
      }
      let bytes = 0;
      for (let i = 0; i < count; i++) bytes += pending[i].length;
      if (bytes <= COPY_BELOW_BYTES) {
        // Small frames are copied into one Buffer: cheaper than cork/uncork, which handles each
        // frame as a separate chunk (about 15 % of the CPU per delivery at 8 frames a write).
        raw.write(Buffer.concat(pending, bytes));
      } else {
        // Large frames are shared by every recipient; copying them per connection is not.
        raw.cork();
        for (let i = 0; i < count; i++) raw.write(pending[i]);
        raw.uncork();
      }
    } finally {
      // Emptied whatever happens, so the next send schedules a flush again.
      pending.length = 0;
    }
  }

  /** Writes what is queued, then starts the closing handshake. */
  close(code: number, reason: string): void {
    this.closeCodeSent ??= code;
    this.flush();
    this.socket.close(code, reason);
  }
}
