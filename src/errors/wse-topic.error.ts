/** Thrown by `WsePublisher` when asked to publish to a topic the contract does not allow. */
export class WseTopicError extends TypeError {
  override readonly name = 'WseTopicError';

  constructor(
    readonly topic: unknown,
    readonly reason: string,
  ) {
    super(`Cannot publish to ${JSON.stringify(topic)}: ${reason}`);
  }
}
