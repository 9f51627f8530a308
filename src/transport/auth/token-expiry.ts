import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { SystemFrames } from '../../protocol/outbound-frame.js';
import { WseCloseCode, WseErrorCode } from '../../wse.constants.js';
import { authFailures, closeReasons, logMessages } from '../../wse.messages.js';
import type { WseConnection } from '../wse-connection.js';

/** setTimeout's largest delay; a later expiry is reached in steps of it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Closes a connection when its token stops being acceptable (issue 16): at `exp` (or when it
 * reaches `maxTokenAgeSec`), plus the clock tolerance, the client gets one `AUTH_FAILED` frame
 * `Token has expired` and the close 4401 `token expired`, so it reconnects with a fresh token
 * (the WSE clients and ours refresh on 4401). A token is never refreshed in band: a connection
 * lives exactly as long as the token it was opened with.
 *
 * One unref'd timer per connection with an expiring token, cleared when the connection closes.
 */
@Injectable()
export class WseTokenExpiry implements OnModuleDestroy {
  private readonly logger = new Logger('WseGateway');
  private readonly timers = new Map<WseConnection, NodeJS.Timeout>();

  constructor(private readonly frames: SystemFrames) {}

  /** Arms the close of `connection` at `expiresAtMs` (epoch ms). */
  watch(connection: WseConnection, expiresAtMs: number): void {
    this.forget(connection);
    const delay = Math.max(0, expiresAtMs - Date.now());
    const timer = setTimeout(
      () => (delay > MAX_TIMER_MS ? this.watch(connection, expiresAtMs) : this.expire(connection)),
      Math.min(delay, MAX_TIMER_MS),
    );
    timer.unref();
    this.timers.set(connection, timer);
  }

  /** Disarms it (the connection closed). */
  forget(connection: WseConnection): void {
    const timer = this.timers.get(connection);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.timers.delete(connection);
  }

  /** Connections with an armed timer (for tests and the leak check). */
  get watched(): number {
    return this.timers.size;
  }

  onModuleDestroy(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private expire(connection: WseConnection): void {
    this.timers.delete(connection);
    this.logger.debug(logMessages.tokenExpiredClosed(connection.id));
    connection.send(this.frames.error(WseErrorCode.AUTH_FAILED, authFailures.expired()));
    connection.close(WseCloseCode.AUTH_FAILED, closeReasons.tokenExpired());
  }
}
