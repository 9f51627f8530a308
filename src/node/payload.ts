/** Thrown when a payload cannot be put on the wire (undefined, a function, a circular object, a BigInt). */
export class WsePayloadError extends TypeError {
  override readonly name = 'WsePayloadError';
}

/**
 * The bytes of a payload, exactly as published (CONTRACT section 5): a Buffer as-is, a string
 * as its UTF-8 bytes, anything else serialized to JSON here, once per publish, never once per
 * recipient.
 */
export function encodePayload(data: unknown): Buffer {
  const serialized = serializePayload(data);
  return typeof serialized === 'string' ? Buffer.from(serialized, 'utf8') : serialized;
}

/**
 * The payload in its serialized form, before UTF-8 encoding: a Buffer as-is, a string as-is,
 * anything else as JSON text. What goes to Redis: ioredis writes a command whose arguments
 * are all strings as one string, cheaper than gathering Buffers.
 */
export function serializePayload(data: unknown): string | Buffer {
  if (Buffer.isBuffer(data) || typeof data === 'string') return data;
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw new WsePayloadError(`payload cannot be serialized to JSON: ${(error as Error).message}`);
  }
  if (json === undefined) throw new WsePayloadError(`payload of type ${typeof data} has no JSON form`);
  return json;
}
