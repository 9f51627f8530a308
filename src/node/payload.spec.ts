import { describe, expect, it } from '@jest/globals';
import { encodePayload, WsePayloadError } from './payload.js';

function payloadErrorOf(data: unknown): WsePayloadError {
  try {
    encodePayload(data);
  } catch (error) {
    expect(error).toBeInstanceOf(WsePayloadError);
    return error as WsePayloadError;
  }
  throw new Error('encodePayload accepted the payload');
}

describe('encodePayload', () => {
  it('sends a string as-is, as its UTF-8 bytes', () => {
    const bytes = encodePayload('héllo €');
    expect(bytes).toEqual(Buffer.from([0x68, 0xc3, 0xa9, 0x6c, 0x6c, 0x6f, 0x20, 0xe2, 0x82, 0xac]));
  });

  it('does not re-serialize a string that already holds JSON', () => {
    expect(encodePayload('{"a":1}').toString('utf8')).toBe('{"a":1}');
  });

  it('sends an empty string as zero bytes', () => {
    expect(encodePayload('')).toEqual(Buffer.alloc(0));
  });

  it('passes a Buffer through, the same instance', () => {
    const buffer = Buffer.from([0x01, 0x02, 0xff]);
    expect(encodePayload(buffer)).toBe(buffer);
  });

  it('serializes an object to JSON', () => {
    expect(encodePayload({ a: 1, b: [true, null], c: 'é' }).toString('utf8')).toBe('{"a":1,"b":[true,null],"c":"é"}');
  });

  it('serializes an object exactly once', () => {
    let calls = 0;
    const data = {
      toJSON(): unknown {
        calls++;
        return { n: calls };
      },
    };
    expect(encodePayload(data).toString('utf8')).toBe('{"n":1}');
    expect(calls).toBe(1);
  });

  it.each([
    [42, '42'],
    [null, 'null'],
    [true, 'true'],
    [[1, 'a'], '[1,"a"]'],
  ])('serializes %j as %s', (data, json) => {
    expect(encodePayload(data).toString('utf8')).toBe(json);
  });

  it.each([
    ['undefined', undefined, 'payload of type undefined has no JSON form'],
    ['a function', () => 1, 'payload of type function has no JSON form'],
    ['a symbol', Symbol('s'), 'payload of type symbol has no JSON form'],
  ])('refuses %s', (_label, data, message) => {
    const error = payloadErrorOf(data);
    expect(error.name).toBe('WsePayloadError');
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(message);
  });

  it('refuses a BigInt', () => {
    expect(payloadErrorOf(10n).message).toMatch(/^payload cannot be serialized to JSON: /);
    expect(payloadErrorOf({ big: 10n }).message).toMatch(/^payload cannot be serialized to JSON: .*BigInt/);
  });

  it('refuses a circular object', () => {
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    expect(payloadErrorOf(circular).message).toMatch(/^payload cannot be serialized to JSON: .*circular/i);
  });
});
