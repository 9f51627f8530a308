import { Injectable, Logger } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { WseCloseCode } from '../wse.constants.js';
import { closeReasons, logMessages } from '../wse.messages.js';
import { OutboundWriter } from './outbound-writer.js';
import type { WseConnection } from './wse-connection.js';

/** How long a slow consumer's close handshake may take before its socket is destroyed. */
const SLOW_CONSUMER_GRACE_MS = 1000;

/**
 * Slow consumers: a connection that keeps more than `maxBufferedBytes` unread loses frames at
 * once (WseConnection.send drops them and counts); one that stays over for
 * `slowConsumerTimeoutMs` is closed with 1013 `slow consumer`. Checked by the heartbeat's sweep.
 */
@Injectable()
export class WseSlowConsumers {
  private readonly logger = new Logger('WseGateway');

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly writer: OutboundWriter,
  ) {}

  /** Closes the connection if it has been slow for too long; true when it did. */
  closeIfStuck(connection: WseConnection, now: number): boolean {
    if (!this.isStuckSlow(connection, now)) return false;
    this.closeSlowConsumer(connection);
    return true;
  }

  /** Over `maxBufferedBytes` for `slowConsumerTimeoutMs`: the client has stopped keeping up. */
  private isStuckSlow(connection: WseConnection, now: number): boolean {
    if (!connection.isSlow) {
      connection.slowSince = 0;
      return false;
    }
    if (connection.slowSince === 0) connection.slowSince = now;
    return now - connection.slowSince >= this.options.slowConsumerTimeoutMs;
  }

  /**
   * Closes with 1013 `slow consumer`. The close frame waits behind the unread bytes, which a
   * stalled client may never read, so the socket is destroyed after a short grace: its buffered
   * memory is released either way.
   */
  private closeSlowConsumer(connection: WseConnection): void {
    this.writer.slowConsumersClosed++;
    this.logger.warn(logMessages.slowConsumerClosed(connection.id, connection.bufferedBytes));
    connection.close(WseCloseCode.TRY_AGAIN_LATER, closeReasons.slowConsumer());
    setTimeout(() => connection.socket.terminate(), SLOW_CONSUMER_GRACE_MS).unref();
  }
}
