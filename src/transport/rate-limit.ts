import { Injectable, Logger } from '@nestjs/common';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { SystemFrames } from '../protocol/outbound-frame.js';
import { WseCloseCode, WseErrorCode } from '../wse.constants.js';
import { closeReasons, errorMessages, logMessages } from '../wse.messages.js';
import type { WseConnection } from './wse-connection.js';

/**
 * The inbound rate limit: one token per frame from the connection's TokenBucket. Below the
 * warning mark the client is told once (`rate_limit_warning`); with the bucket empty the frame
 * is refused with `RATE_LIMITED` and a `retry_after`, answered once per streak so a flood does
 * not make the server flood back; `closeAfterRejected` refusals in a row close the connection
 * with 1008.
 */
@Injectable()
export class WseRateLimiter {
  private readonly logger = new Logger('WseGateway');
  /** Inbound frames refused by the rate limit (a plain field, read on scrape). */
  rateLimited = 0;

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly frames: SystemFrames,
  ) {}

  /** True when the frame may be handled; false when it was refused (and the client told). */
  admit(connection: WseConnection): boolean {
    const bucket = connection.bucket;
    const limits = this.options.rateLimit;
    if (bucket === undefined || limits === undefined) return true;
    if (bucket.take()) {
      connection.rejectedInARow = 0;
      const remaining = bucket.remaining;
      if (remaining < limits.capacity * limits.warnBelowFraction) {
        if (!connection.rateWarningSent) {
          connection.rateWarningSent = true;
          connection.send(
            this.frames.frame('rate_limit_warning', {
              remaining,
              capacity: limits.capacity,
              refill_per_second: limits.refillPerSecond,
            }),
          );
        }
      } else {
        connection.rateWarningSent = false;
      }
      return true;
    }
    this.rateLimited++;
    if (++connection.rejectedInARow >= limits.closeAfterRejected) {
      this.logger.warn(logMessages.rateLimitClosed(connection.id));
      connection.close(WseCloseCode.POLICY_VIOLATION, closeReasons.rateLimitExceeded());
    } else if (connection.rejectedInARow === 1) {
      connection.send(
        this.frames.error(WseErrorCode.RATE_LIMITED, errorMessages.rateLimited(), {
          retry_after: Math.ceil(bucket.retryAfterSeconds() * 1000) / 1000,
        }),
      );
    }
    return false;
  }
}
