/**
 * The sentences of the protocol layer: why an inbound frame is malformed. Re-exported by
 * `wse.messages.ts`, where every other sentence of the library lives.
 */

/** `p.message` of `INVALID_MESSAGE` errors. */
export const invalidMessages = {
  notUtf8: () => 'Frame is not valid UTF-8',
  notJson: () => 'Frame is not valid JSON',
  notObject: () => 'Frame must be a JSON object',
  missingType: () => 'Frame must have a string field "t"',
  payloadNotObject: () => 'Field "p" must be an object when present',
  badSubscriptionAction: () => 'subscription: p.action must be "subscribe" or "unsubscribe"',
  badSubscriptionTopics: () => 'subscription: p.topics must be an array of strings',
  tooManyTopics: (max: number) => `subscription: at most ${max} topics per message`,
  unanswerable: () => 'Frame could not be handled',
  msgpackMalformed: (detail: string) => `MessagePack frame (M:) is malformed: ${detail}`,
  msgpackOff: () => 'MessagePack frames (M:) are not accepted by this server',
  zlibMalformed: () => 'Compressed frame (C:) is not valid zlib data',
  zlibTooLarge: (maxBytes: number) => `Compressed frame (C:) inflates to more than ${maxBytes} bytes`,
  compressionOff: () => 'Compressed frames (C:) are not accepted by this server',
  encryptedUnsupported: () => 'Encrypted frames (E:) are not supported by this server',
};
