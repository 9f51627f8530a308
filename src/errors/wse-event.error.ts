/**
 * Throw from an `@OnWseEvent` handler to answer the client with an `error` frame carrying this
 * code and message (for example `INVALID_MESSAGE` for a payload the handler cannot use). Any
 * other error is logged and answered with `INTERNAL_ERROR`, without its details; guards and pipes
 * answer `FORBIDDEN` and `INVALID_PAYLOAD` (see the README, "Guards, pipes, interceptors, filters").
 */
export class WseEventError extends Error {
  override readonly name = 'WseEventError';

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
