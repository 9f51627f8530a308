import { afterEach, describe, expect, it } from '@jest/globals';
import { invalidMessages } from '../wse.messages.js';
import {
  echoable,
  MAX_ECHO_DEPTH,
  MAX_ECHO_NODES,
  parseInboundFrame,
  parseSubscriptionRequest,
} from './inbound-frame.js';

const text = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('parseInboundFrame', () => {
  describe('a well-formed frame', () => {
    it('keeps t, p, id and cid', () => {
      expect(
        parseInboundFrame(text('{"t":"chat","p":{"msg":"hi"},"id":"1","cid":"c-2","v":1,"c":"U"}'), false),
      ).toEqual({
        ok: true,
        frame: { t: 'chat', p: { msg: 'hi' }, id: '1', cid: 'c-2' },
      });
    });

    it('gives an empty, frozen p when the client sent none, or null', () => {
      for (const json of ['{"t":"ping"}', '{"t":"ping","p":null}']) {
        const result = parseInboundFrame(text(json), false);
        expect(result).toEqual({ ok: true, frame: { t: 'ping', p: {}, id: undefined, cid: undefined } });
        if (result.ok) expect(Object.isFrozen(result.frame.p)).toBe(true);
      }
    });

    it('drops an id or cid that is not a string', () => {
      expect(parseInboundFrame(text('{"t":"x","id":5,"cid":{"a":1}}'), false)).toEqual({
        ok: true,
        frame: { t: 'x', p: {}, id: undefined, cid: undefined },
      });
    });

    it('accepts a binary frame holding valid UTF-8 JSON', () => {
      expect(parseInboundFrame(text('{"t":"héllo","p":{"x":"€"}}'), true)).toEqual({
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
      expect(parseInboundFrame(text(json), false)).toEqual({ ok: false, message });
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
      expect(parseInboundFrame(frame, true)).toEqual({ ok: false, message: invalidMessages.notUtf8() });
    });

    it('refuses a binary frame that is UTF-8 but not JSON', () => {
      expect(parseInboundFrame(text('hello'), true)).toEqual({ ok: false, message: invalidMessages.notJson() });
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
      expect(parseInboundFrame(text('{"__proto__":{"t":"sneaky"}}'), false)).toEqual({
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
        result = parseInboundFrame(text(json), false);
      }).not.toThrow();
      expect(result?.ok).toBe(true);
      if (result?.ok) expect(result.frame.t).toBe('deep');
    });

    it('returns a result for deeply nested broken input without throwing', () => {
      const json = `{"t":"deep","p":{"a":${'['.repeat(10_000)}}}`;
      expect(parseInboundFrame(text(json), false)).toEqual({ ok: false, message: invalidMessages.notJson() });
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

describe('echoable', () => {
  it('passes numbers, strings, booleans and null through, and turns undefined into null', () => {
    expect([echoable(1_700_000_000_000), echoable('2024-01-01T00:00:00Z'), echoable(true), echoable(null)]).toEqual([
      1_700_000_000_000,
      '2024-01-01T00:00:00Z',
      true,
      null,
    ]);
    expect(echoable(undefined)).toBeNull();
  });

  it('passes a small object or array through unchanged', () => {
    const value = { a: [1, { b: 'x' }], c: null };
    expect(echoable(value)).toBe(value);
  });

  it(`keeps a value ${MAX_ECHO_DEPTH} levels deep and refuses one level more`, () => {
    const nested = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth));
    expect(echoable(nested(MAX_ECHO_DEPTH))).toEqual(nested(MAX_ECHO_DEPTH));
    expect(echoable(nested(MAX_ECHO_DEPTH + 1))).toBeNull();
  });

  it('answers null for 100,000 nested arrays without overflowing the stack', () => {
    const deep = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000)) as unknown;
    expect(echoable(deep)).toBeNull();
  });

  it(`refuses a flat value of more than ${MAX_ECHO_NODES} values`, () => {
    expect(echoable(Array.from({ length: MAX_ECHO_NODES - 1 }, (_, i) => i))).toHaveLength(MAX_ECHO_NODES - 1);
    expect(echoable(Array.from({ length: MAX_ECHO_NODES + 1 }, (_, i) => i))).toBeNull();
  });
});
