import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { TopicSubscriber } from '../topics/topic-subscriber.js';
import type { WireFrame } from './outbound-frame.js';

/** Claims of a verified JSON Web Token. */
export type WseClaims = Readonly<Record<string, unknown>>;

/** What the application sees of a connection in hooks, handlers and the authorizer. */
export interface WseConnectionInfo {
  readonly id: string;
  /** The token's `sub`; `null` in anonymous mode. */
  readonly userId: string | null;
  /** The verified token's claims; `null` in anonymous mode. */
  readonly claims: WseClaims | null;
  readonly connectedAt: Date;
  /** The topics and patterns the connection is subscribed to. */
  readonly topics: ReadonlySet<string>;
}

/** Counters the outbound path bumps; plain fields, read when a snapshot is taken. */
export class OutboundStats {
  /** Frames not queued because the connection's socket buffer was over `maxBufferedBytes`. */
  dropped = 0;
}

const WS_OPEN = 1;

/**
 * One client connection: identity, subscriptions and its outbound queue.
 *
 * Outbound frames are queued and written in one go once per event-loop turn (see
 * `OutboundFlush`): a loopback socket write costs about 5 us of CPU whatever its size, so a
 * connection that receives ten messages in a turn costs one write instead of ten. Frames are
 * written in the order they were queued, so per-connection order holds for topic messages and
 * system messages alike. Every frame to this socket goes through `send`; ws itself only writes
 * control frames (close, pong), which carry no order guarantee relative to data.
 */
export class WseConnection implements WseConnectionInfo, TopicSubscriber {
  readonly topics = new Set<string>();
  readonly connectedAt = new Date();
  /** Last fan-out sequence number delivered here: how a message reaches it once (TopicRegistryService). */
  lastDeliverySeq = 0;
  lastActivityMs: number;

  private readonly pending: WireFrame[] = [];
  private readonly rawSocket: Socket;

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    readonly userId: string | null,
    readonly claims: WseClaims | null,
    private readonly maxBufferedBytes: number,
    private readonly stats: OutboundStats,
    now: number,
  ) {
    this.lastActivityMs = now;
    // ws keeps the underlying TCP socket in a private field. Writing our pre-built frames to it
    // directly is what makes one write per turn possible; ws exposes no cork of its own.
    this.rawSocket = (socket as unknown as { _socket: Socket })._socket;
  }

  /**
   * Queues a frame for this turn's write. Returns false, and drops the frame, when the socket is
   * not open or already holds more than `maxBufferedBytes` the client has not read.
   */
  send(frame: WireFrame): boolean {
    if (this.socket.readyState !== WS_OPEN) return false;
    if (this.rawSocket.writableLength > this.maxBufferedBytes) {
      this.stats.dropped++;
      return false;
    }
    if (this.pending.length === 0) outboundFlush.schedule(this);
    this.pending.push(frame);
    return true;
  }

  /** Writes every queued frame in one syscall (cork/uncork gathers them into one writev). */
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
      } else {
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
    this.flush();
    this.socket.close(code, reason);
  }
}

/**
 * The once-per-turn write of every connection that has frames queued. One `setImmediate` for
 * the whole process, not one per connection: everything delivered during a turn's I/O phase
 * (all Redis messages in a read, all publishes of a timer) goes out together right after it.
 */
class OutboundFlush {
  private dirty: WseConnection[] = [];
  private spare: WseConnection[] = [];
  private scheduled = false;
  private readonly run = (): void => this.flushAll();

  schedule(connection: WseConnection): void {
    this.dirty.push(connection);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private flushAll(): void {
    this.scheduled = false;
    // Swap the lists first: a write can trigger work that queues new frames for the next turn.
    const connections = this.dirty;
    this.dirty = this.spare;
    this.spare = connections;
    for (let i = 0; i < connections.length; i++) connections[i].flush();
    connections.length = 0;
  }
}

const outboundFlush = new OutboundFlush();
