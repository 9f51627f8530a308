import { deflateSync } from 'node:zlib';
import { afterEach, describe, expect, it } from '@jest/globals';
import { encode } from '@msgpack/msgpack';
import { invalidMessages } from '../wse.messages.js';
import {
  inboundControl,
  parseInboundFrame,
  parseSubscriptionRequest,
  type InboundDecodeOptions,
} from './inbound-frame.js';

const text = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Every WSE format on, with a small inflation cap. */
const ALL: InboundDecodeOptions = { msgpack: true, compression: true, maxInflatedBytes: 1024 };

describe('parseInboundFrame', () => {
  describe('a well-formed frame', () => {
    it('keeps t, p, id and cid', () => {
      expect(
        parseInboundFrame(text('{"t":"chat","p":{"msg":"hi"},"id":"1","cid":"c-2","v":1,"c":"U"}'), false, ALL),
      ).toEqual({
        ok: true,
        frame: { t: 'chat', p: { msg: 'hi' }, id: '1', cid: 'c-2' },
      });
    });

    it('gives an empty, frozen p when the client sent none, or null', () => {
      for (const json of ['{"t":"ping"}', '{"t":"ping","p":null}']) {
        const result = parseInboundFrame(text(json), false, ALL);
        expect(result).toEqual({ ok: true, frame: { t: 'ping', p: {}, id: undefined, cid: undefined } });
        if (result.ok) expect(Object.isFrozen(result.frame.p)).toBe(true);
      }
    });

    it('drops an id or cid that is not a string', () => {
      expect(parseInboundFrame(text('{"t":"x","id":5,"cid":{"a":1}}'), false, ALL)).toEqual({
        ok: true,
        frame: { t: 'x', p: {}, id: undefined, cid: undefined },
      });
    });

    it('accepts a binary frame holding valid UTF-8 JSON', () => {
      expect(parseInboundFrame(text('{"t":"héllo","p":{"x":"€"}}'), true, ALL)).toEqual({
        ok: true,
        frame: { t: 'héllo', p: { x: '€' }, id: undefined, cid: undefined },
      });
    });
  });

  describe('malformed input', () => {
    it.each([
      ['not JSON', 'hello', invalidMessages.notJson()],
      ['truncated JSON', '{"t":"x"', invalidMessages.notJson()],
      ['an empty frame', '', invalidMessages.notJson()],
      ['a JSON array', '[{"t":"x"}]', invalidMessages.notObject()],
      ['a JSON number', '42', invalidMessages.notObject()],
      ['a JSON string', '"ping"', invalidMessages.notObject()],
      ['JSON null', 'null', invalidMessages.notObject()],
      ['JSON true', 'true', invalidMessages.notObject()],
      ['an object without t', '{"p":{}}', invalidMessages.missingType()],
      ['a numeric t', '{"t":1}', invalidMessages.missingType()],
      ['a null t', '{"t":null}', invalidMessages.missingType()],
      ['an object t', '{"t":{"x":1}}', invalidMessages.missingType()],
      ['an empty t', '{"t":""}', invalidMessages.missingType()],
      ['p as an array', '{"t":"x","p":[1,2]}', invalidMessages.payloadNotObject()],
      ['p as a string', '{"t":"x","p":"hello"}', invalidMessages.payloadNotObject()],
      ['p as a number', '{"t":"x","p":3}', invalidMessages.payloadNotObject()],
      ['p as a boolean', '{"t":"x","p":false}', invalidMessages.payloadNotObject()],
    ])('answers %s with its INVALID_MESSAGE text', (_label, json, message) => {
      expect(parseInboundFrame(text(json), false, ALL)).toEqual({ ok: false, message });
    });

    it('names the texts exactly as documented', () => {
      expect(invalidMessages.notJson()).toBe('Frame is not valid JSON');
      expect(invalidMessages.notObject()).toBe('Frame must be a JSON object');
      expect(invalidMessages.missingType()).toBe('Frame must have a string field "t"');
      expect(invalidMessages.payloadNotObject()).toBe('Field "p" must be an object when present');
      expect(invalidMessages.notUtf8()).toBe('Frame is not valid UTF-8');
    });

    it('refuses a binary frame that is not valid UTF-8', () => {
      const frame = Buffer.concat([text('{"t":"'), Buffer.from([0xff, 0xfe, 0xc3]), text('"}')]);
      expect(parseInboundFrame(frame, true, ALL)).toEqual({ ok: false, message: invalidMessages.notUtf8() });
    });

    it('refuses a binary frame that is UTF-8 but not JSON', () => {
      expect(parseInboundFrame(text('hello'), true, ALL)).toEqual({ ok: false, message: invalidMessages.notJson() });
    });
  });

  describe('hostile input', () => {
    afterEach(() => {
      // Clean up if a test below ever polluted the prototype, so the others still mean something.
      delete (Object.prototype as Record<string, unknown>).polluted;
    });

    it('keeps __proto__ as plain data and does not pollute Object.prototype', () => {
      const result = parseInboundFrame(
        text('{"t":"x","__proto__":{"polluted":true},"p":{"__proto__":{"polluted":true}}}'),
        false,
        ALL,
      );
      expect(result.ok).toBe(true);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      if (result.ok) {
        expect(Object.getPrototypeOf(result.frame.p)).toBe(Object.prototype);
        expect((result.frame.p as Record<string, unknown>).polluted).toBeUndefined();
        expect(Object.keys(result.frame.p)).toEqual(['__proto__']);
      }
    });

    it('does not read t through a __proto__ key', () => {
      expect(parseInboundFrame(text('{"__proto__":{"t":"sneaky"}}'), false, ALL)).toEqual({
        ok: false,
        message: invalidMessages.missingType(),
      });
      expect(({} as Record<string, unknown>).t).toBeUndefined();
    });

    it('does not pollute Object.prototype through constructor.prototype', () => {
      const result = parseInboundFrame(
        text(
          '{"t":"x","constructor":{"prototype":{"polluted":true}},"p":{"constructor":{"prototype":{"polluted":true}}}}',
        ),
        false,
        ALL,
      );
      expect(result.ok).toBe(true);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype.constructor).toBe(Object);
    });

    it('returns a result for deeply nested input without throwing', () => {
      const depth = 10_000;
      const json = `{"t":"deep","p":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
      let result: ReturnType<typeof parseInboundFrame> | undefined;
      expect(() => {
        result = parseInboundFrame(text(json), false, ALL);
      }).not.toThrow();
      expect(result?.ok).toBe(true);
      if (result?.ok) expect(result.frame.t).toBe('deep');
    });

    it('returns a result for deeply nested broken input without throwing', () => {
      const json = `{"t":"deep","p":{"a":${'['.repeat(10_000)}}}`;
      expect(parseInboundFrame(text(json), false, ALL)).toEqual({ ok: false, message: invalidMessages.notJson() });
    });
  });
});

describe('parseSubscriptionRequest', () => {
  it.each(['subscribe', 'unsubscribe'] as const)('accepts %s with an array of strings', (action) => {
    expect(parseSubscriptionRequest({ action, topics: ['a', 'user:*'] })).toEqual({
      ok: true,
      action,
      topics: ['a', 'user:*'],
    });
  });

  it('accepts an empty topic list', () => {
    expect(parseSubscriptionRequest({ action: 'subscribe', topics: [] })).toEqual({
      ok: true,
      action: 'subscribe',
      topics: [],
    });
  });

  it.each([
    ['no action', { topics: ['a'] }],
    ['an unknown action', { action: 'join', topics: ['a'] }],
    ['an action in another case', { action: 'Subscribe', topics: ['a'] }],
    ['a non-string action', { action: 1, topics: ['a'] }],
  ])('refuses %s', (_label, p) => {
    expect(parseSubscriptionRequest(p)).toEqual({ ok: false, message: invalidMessages.badSubscriptionAction() });
  });

  it.each([
    ['no topics', { action: 'subscribe' }],
    ['topics as a string', { action: 'subscribe', topics: 'a' }],
    ['topics as an object', { action: 'unsubscribe', topics: { 0: 'a' } }],
    ['a number among the topics', { action: 'subscribe', topics: ['a', 1] }],
    ['null among the topics', { action: 'subscribe', topics: [null] }],
  ])('refuses %s', (_label, p) => {
    expect(parseSubscriptionRequest(p)).toEqual({ ok: false, message: invalidMessages.badSubscriptionTopics() });
  });

  it('names the texts exactly as documented', () => {
    expect(invalidMessages.badSubscriptionAction()).toBe('subscription: p.action must be "subscribe" or "unsubscribe"');
    expect(invalidMessages.badSubscriptionTopics()).toBe('subscription: p.topics must be an array of strings');
  });
});

describe("WSE's formats (docs/PROTOCOL.md, Compatibility with WSE clients)", () => {
  const hello = { t: 'client_hello', p: { client_version: '1.4.4', protocol_version: 1 }, id: 'id-1', v: 1 };
  const expected = { ok: true, frame: { t: 'client_hello', p: hello.p, id: 'id-1', cid: undefined } };

  describe('category prefixes', () => {
    it.each([
      ['WSE{', `WSE${JSON.stringify(hello)}`],
      ['S{', `S${JSON.stringify(hello)}`],
      ['U{', `U${JSON.stringify(hello)}`],
    ])('strips %s on a text frame', (_label, json) => {
      expect(parseInboundFrame(text(json), false, ALL)).toEqual(expected);
    });

    it('strips a prefix on a binary frame too', () => {
      expect(parseInboundFrame(text(`WSE${JSON.stringify(hello)}`), true, ALL)).toEqual(expected);
    });

    it('reads a prefix before an array as what it is: not an object', () => {
      expect(parseInboundFrame(text('WSE[{"t":"x"}]'), false, ALL)).toEqual({
        ok: false,
        message: invalidMessages.notObject(),
      });
    });

    it.each([['WS{"t":"x"}'], ['WSE {"t":"x"}'], ['X{"t":"x"}'], ['u{"t":"x"}'], ['Sx']])(
      'does not take %s for a prefix',
      (json) => {
        expect(parseInboundFrame(text(json), false, ALL)).toEqual({ ok: false, message: invalidMessages.notJson() });
      },
    );
  });

  describe('type and payload', () => {
    it('stand for t and p when those are absent', () => {
      expect(parseInboundFrame(text('{"type":"chat","payload":{"a":1}}'), false, ALL)).toEqual({
        ok: true,
        frame: { t: 'chat', p: { a: 1 }, id: undefined, cid: undefined },
      });
    });

    it('give way to t and p when both are present', () => {
      expect(parseInboundFrame(text('{"t":"a","type":"b","p":{"x":1},"payload":{"y":2}}'), false, ALL)).toEqual({
        ok: true,
        frame: { t: 'a', p: { x: 1 }, id: undefined, cid: undefined },
      });
    });

    it('do not rescue a present but invalid t', () => {
      expect(parseInboundFrame(text('{"t":null,"type":"b"}'), false, ALL)).toEqual({
        ok: false,
        message: invalidMessages.missingType(),
      });
    });

    it('check payload as they check p', () => {
      expect(parseInboundFrame(text('{"type":"a","payload":[1]}'), false, ALL)).toEqual({
        ok: false,
        message: invalidMessages.payloadNotObject(),
      });
    });
  });

  describe('M: MessagePack', () => {
    const packed = (value: unknown): Buffer => Buffer.concat([text('M:'), Buffer.from(encode(value))]);

    it('decodes a MessagePack frame', () => {
      expect(parseInboundFrame(packed(hello), true, ALL)).toEqual(expected);
    });

    it('refuses a malformed one with the decoder detail', () => {
      expect(parseInboundFrame(Buffer.from([0x4d, 0x3a, 0xc1]), true, ALL)).toEqual({
        ok: false,
        message: invalidMessages.msgpackMalformed('Unrecognized type byte: 0xc1'),
      });
    });

    it('refuses a truncated one', () => {
      expect(parseInboundFrame(Buffer.from([0x4d, 0x3a, 0x82, 0xa1, 0x74]), true, ALL)).toEqual({
        ok: false,
        message: invalidMessages.msgpackMalformed('truncated data'),
      });
    });

    it('refuses bytes after the value', () => {
      expect(parseInboundFrame(Buffer.concat([packed({ t: 'x' }), Buffer.from([0x01])]), true, ALL)).toEqual({
        ok: false,
        message: invalidMessages.msgpackMalformed('Extra 1 of 6 byte(s) found at buffer[5]'),
      });
    });

    it('refuses a length field claiming more entries than the frame has bytes', () => {
      // array32 of 2^32-1 elements in a 5-byte frame
      const result = parseInboundFrame(Buffer.from([0x4d, 0x3a, 0xdd, 0xff, 0xff, 0xff, 0xff]), true, ALL);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.message).toMatch(/^MessagePack frame \(M:\) is malformed: Max length exceeded/);
    });

    it('refuses a __proto__ key', () => {
      const proto = Buffer.concat([text('M:'), Buffer.from([0x81, 0xa9]), text('__proto__'), Buffer.from([0x80])]);
      expect(parseInboundFrame(proto, true, ALL)).toEqual({
        ok: false,
        message: invalidMessages.msgpackMalformed('The key __proto__ is not allowed'),
      });
      expect(({} as Record<string, unknown>).t).toBeUndefined();
    });

    it.each([
      ['an array', [1, 2], invalidMessages.notObject()],
      ['binary data', new Uint8Array([1]), invalidMessages.notObject()],
      ['a map without t', { p: {} }, invalidMessages.missingType()],
      ['p as binary data', { t: 'x', p: new Uint8Array([1]) }, invalidMessages.payloadNotObject()],
    ])('checks the shape of %s like JSON', (_label, value, message) => {
      expect(parseInboundFrame(packed(value), true, ALL)).toEqual({ ok: false, message });
    });

    it('is refused when switched off', () => {
      expect(parseInboundFrame(packed(hello), true, { ...ALL, msgpack: false })).toEqual({
        ok: false,
        message: invalidMessages.msgpackOff(),
      });
    });

    it('is only looked for in binary frames', () => {
      expect(parseInboundFrame(text('M:{}'), false, ALL)).toEqual({ ok: false, message: invalidMessages.notJson() });
    });
  });

  describe('C: zlib', () => {
    const compressed = (bytes: Buffer): Buffer => Buffer.concat([text('C:'), deflateSync(bytes)]);

    it.each([
      ['JSON', JSON.stringify(hello)],
      ['prefixed JSON', `WSE${JSON.stringify(hello)}`],
    ])('inflates %s', (_label, json) => {
      expect(parseInboundFrame(compressed(text(json)), true, ALL)).toEqual(expected);
    });

    it('inflates MessagePack (what the v2 SDK builds with prepareForSending)', () => {
      expect(parseInboundFrame(compressed(Buffer.from(encode(hello))), true, ALL)).toEqual(expected);
    });

    it('refuses a frame inflating past the cap, however small it is', () => {
      const bomb = compressed(Buffer.alloc(1025, 0x20));
      expect(bomb.length).toBeLessThan(64);
      expect(parseInboundFrame(bomb, true, ALL)).toEqual({ ok: false, message: invalidMessages.zlibTooLarge(1024) });
      expect(invalidMessages.zlibTooLarge(1024)).toBe('Compressed frame (C:) inflates to more than 1024 bytes');
    });

    it('accepts a frame inflating to exactly the cap', () => {
      const json = JSON.stringify({ t: 'x', p: { pad: '' } });
      const padded = JSON.stringify({ t: 'x', p: { pad: 'a'.repeat(1024 - json.length) } });
      expect(padded.length).toBe(1024);
      expect(parseInboundFrame(compressed(text(padded)), true, ALL).ok).toBe(true);
    });

    it.each([
      ['not zlib', Buffer.from('C:hello')],
      ['truncated zlib', compressed(text(JSON.stringify(hello))).subarray(0, 10)],
      ['an empty payload', Buffer.from('C:')],
    ])('refuses %s', (_label, frame) => {
      expect(parseInboundFrame(frame, true, ALL)).toEqual({ ok: false, message: invalidMessages.zlibMalformed() });
    });

    it('refuses inflated bytes that are not UTF-8', () => {
      expect(parseInboundFrame(compressed(Buffer.from([0x7b, 0xff, 0xfe])), true, ALL)).toEqual({
        ok: false,
        message: invalidMessages.notUtf8(),
      });
    });

    it('refuses inflated MessagePack when MessagePack is off', () => {
      expect(parseInboundFrame(compressed(Buffer.from(encode(hello))), true, { ...ALL, msgpack: false })).toEqual({
        ok: false,
        message: invalidMessages.msgpackOff(),
      });
    });

    it('is refused when switched off', () => {
      expect(parseInboundFrame(compressed(text('{"t":"x"}')), true, { ...ALL, compression: false })).toEqual({
        ok: false,
        message: invalidMessages.compressionOff(),
      });
    });
  });

  it('names E: frames as unsupported', () => {
    expect(parseInboundFrame(Buffer.from([0x45, 0x3a, 0x00, 0x01]), true, ALL)).toEqual({
      ok: false,
      message: invalidMessages.encryptedUnsupported(),
    });
  });
});

describe('inboundControl', () => {
  it.each([
    ['ping', 'ping'],
    ['PING', 'ping'],
    ['PONG', 'pong'],
    ['pong', 'pong'],
    ['client_hello', 'client_hello'],
    ['subscription', 'subscription'],
    ['subscription_update', 'subscription'],
    ['SUBSCRIPTION_UPDATE', 'subscription'],
    ['sync_request', 'sync_request'],
  ])('reads %s as %s', (t, control) => {
    expect(inboundControl(t)).toBe(control);
  });

  it.each(['chat_message', 'subscribe', 'sync', 'batch', ''])('leaves %s to the application', (t) => {
    expect(inboundControl(t)).toBeUndefined();
  });
});
