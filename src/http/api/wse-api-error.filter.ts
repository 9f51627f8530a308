import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { WsePayloadError } from '../../node/payload.js';
import { WseTopicError } from '../../errors/wse-topic.error.js';
import { apiErrors } from './api-errors.js';

/**
 * A payload with no JSON form (a 100,000-deep array) or an invalid topic that got past the body
 * checks is the caller's mistake: 400 naming the field, never a 500.
 */
@Catch(WsePayloadError, WseTopicError)
export class WseApiErrorFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: WsePayloadError | WseTopicError, host: ArgumentsHost): void {
    const body =
      error instanceof WseTopicError ? apiErrors.invalidTopic('topic', error.reason) : apiErrors.badData(error.message);
    this.adapterHost.httpAdapter.reply(host.switchToHttp().getResponse(), body, 400);
  }
}
