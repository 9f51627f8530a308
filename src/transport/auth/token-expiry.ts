import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { SystemFrames } from '../../protocol/outbound-frame.js';
import { WseCloseCode, WseErrorCode } from '../../wse.constants.js';
import { authFailures, closeReasons, logMessages } from '../../wse.messages.js';
import type { WseConnection } from '../wse-connection.js';

/** Width of an expiry bucket: a connection is closed at most this much after its token expired. */
export const EXPIRY_RESOLUTION_MS = 1_000;

/** What the expiry needs of a connection: its bucket is kept on it, so forgetting it is a lookup. */
type Watched = Pick<WseConnection, 'id' | 'send' | 'close' | 'expiryBucketMs' | 'expirySlot'>;

/**
 * Closes a connection when its token stops being acceptable (issue 16): at `exp` (or when it
 * reaches `maxTokenAgeSec`), plus the clock tolerance, the client gets one `AUTH_FAILED` frame
 * `Token has expired` and the close 4401 `token expired`, so it reconnects with a fresh token
 * (the WSE clients and ours refresh on 4401). A token is never refreshed in band: a connection
 * lives exactly as long as the token it was opened with.
 *
 * A coarse timer wheel: connections are kept in buckets of `EXPIRY_RESOLUTION_MS`, by the end
 * of the bucket their expiry falls in, and one unref'd timer, running only while something is
 * watched, closes a bucket's connections when its end has passed. So a connection is never
 * closed before its token expired and at most one bucket (plus the timer's slack) after; `exp`
 * and the tolerance are whole seconds, so with 1 s buckets the close comes right at the
 * second. A bucket is an array, the connection's place in it kept on the connection: arming
 * is a push and disarming a swap with the last, with no timer, no hashing and no Map entry per
 * connection (all three showed in the accept profile).
 */
@Injectable()
export class WseTokenExpiry implements OnModuleDestroy {
  private readonly logger = new Logger('WseGateway');
  /** Connections by the end of their bucket (epoch ms, a multiple of the resolution). */
  private readonly buckets = new Map<number, Watched[]>();
  /** Every bucket ending at or before this has been closed. */
  private cursor = 0;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly frames: SystemFrames) {}

  /** Arms the close of `connection` at `expiresAtMs` (epoch ms). */
  watch(connection: Watched, expiresAtMs: number): void {
    this.forget(connection);
    if (this.count === 0) {
      // Nothing watched: no bucket holds anything, the wheel starts over from now.
      this.cursor = Math.floor(Date.now() / EXPIRY_RESOLUTION_MS) * EXPIRY_RESOLUTION_MS;
    }
    // An expiry already behind the cursor (a slow connect guard) goes to the next bucket due.
    const end = Math.max(
      Math.ceil(expiresAtMs / EXPIRY_RESOLUTION_MS) * EXPIRY_RESOLUTION_MS,
      this.cursor + EXPIRY_RESOLUTION_MS,
    );
    let bucket = this.buckets.get(end);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(end, bucket);
    }
    connection.expiryBucketMs = end;
    connection.expirySlot = bucket.length;
    bucket.push(connection);
    this.count++;
    if (this.timer === undefined) this.schedule();
  }

  /** Disarms it (the connection closed). */
  forget(connection: Watched): void {
    const end = connection.expiryBucketMs;
    if (end === undefined) return;
    connection.expiryBucketMs = undefined;
    const bucket = this.buckets.get(end);
    const slot = connection.expirySlot;
    if (bucket === undefined || bucket[slot] !== connection) return;
    const last = bucket.pop() as Watched;
    if (last !== connection) {
      bucket[slot] = last;
      last.expirySlot = slot;
    }
    this.count--;
    if (bucket.length === 0) this.buckets.delete(end);
    if (this.count === 0) this.stop();
  }

  /** Connections with an armed expiry (for tests and the leak check). */
  get watched(): number {
    return this.count;
  }

  onModuleDestroy(): void {
    this.stop();
    for (const bucket of this.buckets.values()) for (const connection of bucket) connection.expiryBucketMs = undefined;
    this.buckets.clear();
    this.count = 0;
  }

  private schedule(): void {
    const delay = Math.max(0, this.cursor + EXPIRY_RESOLUTION_MS - Date.now());
    this.timer = setTimeout(() => this.tick(), delay);
    this.timer.unref();
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Closes every bucket whose end has passed (a timer may fire a millisecond early: then none). */
  private tick(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.count > 0 && this.cursor + EXPIRY_RESOLUTION_MS <= now) {
      this.cursor += EXPIRY_RESOLUTION_MS;
      const bucket = this.buckets.get(this.cursor);
      if (bucket === undefined) continue;
      this.buckets.delete(this.cursor);
      this.count -= bucket.length;
      for (const connection of bucket) {
        connection.expiryBucketMs = undefined;
        this.expire(connection);
      }
    }
    if (this.count > 0 && this.timer === undefined) this.schedule();
  }

  private expire(connection: Watched): void {
    this.logger.debug(logMessages.tokenExpiredClosed(connection.id));
    connection.send(this.frames.error(WseErrorCode.AUTH_FAILED, authFailures.expired()));
    connection.close(WseCloseCode.AUTH_FAILED, closeReasons.tokenExpired());
  }
}
