import { HttpException, HttpStatus } from '@nestjs/common';
import { WseEventError } from '../../errors/wse-event.error.js';
import { WseErrorCode } from '../../wse.constants.js';
import { errorMessages } from '../../wse.messages.js';

/** The `error` frame answering an event whose pipeline ended in an exception. */
export interface EventErrorAnswer {
  readonly code: string;
  readonly message: string;
  /** More fields of `p` (the validation errors of INVALID_PAYLOAD). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** An unexpected failure: logged with its stack, and its details never sent. */
  readonly internal: boolean;
}

/**
 * Maps what an event's pipeline threw to the client's answer:
 *
 * - `WseEventError`: its own code and message.
 * - A 403 or 401 `HttpException` (a guard returning false throws `ForbiddenException`; an
 *   authentication guard typically throws `UnauthorizedException`): `FORBIDDEN`, with the
 *   exception's message.
 * - A 400 `HttpException` (what a `ValidationPipe` throws): `INVALID_PAYLOAD`, listing the
 *   pipe's messages in `p.errors`, and in `p.fields` by property when the pipe groups them
 *   (`new ValidationPipe({ errorFormat: 'grouped' })`).
 * - Anything else: `INTERNAL_ERROR` with a fixed sentence; the error is logged, not sent.
 */
export function eventErrorAnswer(error: unknown, eventType: string): EventErrorAnswer {
  if (error instanceof WseEventError) return { code: error.code, message: error.message, internal: false };
  if (error instanceof HttpException) {
    const status = error.getStatus();
    if (status === HttpStatus.FORBIDDEN || status === HttpStatus.UNAUTHORIZED) {
      return { code: WseErrorCode.FORBIDDEN, message: error.message, internal: false };
    }
    if (status === HttpStatus.BAD_REQUEST) return invalidPayload(error, eventType);
  }
  return { code: WseErrorCode.INTERNAL_ERROR, message: errorMessages.handlerFailed(eventType), internal: true };
}

/** The pipe's findings, in the two shapes `ValidationPipe` produces (`list` and `grouped`). */
function invalidPayload(error: HttpException, eventType: string): EventErrorAnswer {
  const response = error.getResponse();
  const found =
    typeof response === 'object' && response !== null ? (response as { message?: unknown }).message : response;
  if (typeof found === 'string') return { code: WseErrorCode.INVALID_PAYLOAD, message: found, internal: false };
  const message = errorMessages.invalidPayload(eventType);
  if (Array.isArray(found)) {
    return { code: WseErrorCode.INVALID_PAYLOAD, message, extra: { errors: found.map(String) }, internal: false };
  }
  if (typeof found === 'object' && found !== null) {
    const fields: Record<string, string[]> = {};
    for (const [field, messages] of Object.entries(found)) {
      fields[field] = Array.isArray(messages) ? messages.map(String) : [String(messages)];
    }
    return {
      code: WseErrorCode.INVALID_PAYLOAD,
      message,
      extra: { errors: Object.values(fields).flat(), fields },
      internal: false,
    };
  }
  return { code: WseErrorCode.INVALID_PAYLOAD, message, internal: false };
}
