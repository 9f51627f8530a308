import { describe, expect, it } from '@jest/globals';
import { isStampable, readStamp, stampPayload, stampPrefix } from './stamp.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

describe('isStampable', () => {
  it.each([
    ['{"a":1}', true],
    ['{}', true],
    ['{ }', true],
    ['[1,2]', false],
    ['"text"', false],
    ['42', false],
    ['', false],
    ['{', false],
    [' {"a":1}', false],
    ['{"a":1}\n', false],
  ])('%j -> %s', (text, expected) => {
    expect(isStampable(bytes(text))).toBe(expected);
  });
});

describe('stampPayload', () => {
  const prefix = stampPrefix('chat:1', 'ab12.1');

  it('puts tp, e and o first, then the payload fields byte for byte', () => {
    const payload = bytes('{"t":"msg","p":{"text":"héllo €","n":[1,2]}}');
    const stamped = stampPayload(prefix, 7, payload);
    expect(stamped.toString('utf8')).toBe(
      '{"tp":"chat:1","e":"ab12.1","o":7,"t":"msg","p":{"text":"héllo €","n":[1,2]}}',
    );
    expect(JSON.parse(stamped.toString('utf8'))).toEqual({
      tp: 'chat:1',
      e: 'ab12.1',
      o: 7,
      t: 'msg',
      p: { text: 'héllo €', n: [1, 2] },
    });
  });

  it('stamps an empty object without a dangling comma', () => {
    expect(stampPayload(prefix, 1, bytes('{}')).toString('utf8')).toBe('{"tp":"chat:1","e":"ab12.1","o":1}');
    expect(JSON.parse(stampPayload(prefix, 2, bytes('{ \n}')).toString('utf8'))).toEqual({
      tp: 'chat:1',
      e: 'ab12.1',
      o: 2,
    });
  });

  it('escapes the topic as JSON text', () => {
    const stamped = stampPayload(stampPrefix('odd "topic" \\ ü', 'e1'), 3, bytes('{"x":1}'));
    expect(JSON.parse(stamped.toString('utf8'))).toEqual({ tp: 'odd "topic" \\ ü', e: 'e1', o: 3, x: 1 });
  });

  it('writes large offsets in full', () => {
    const stamped = stampPayload(prefix, Number.MAX_SAFE_INTEGER, bytes('{"x":1}'));
    expect(JSON.parse(stamped.toString('utf8')).o).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('leaves the payload it was given untouched', () => {
    const payload = bytes('{"x":1}');
    stampPayload(prefix, 1, payload);
    expect(payload.toString('utf8')).toBe('{"x":1}');
  });
});

describe('readStamp', () => {
  const topicJson = bytes(JSON.stringify('chat:1'));

  it('reads back the epoch and offset a stamp carries', () => {
    const stamped = stampPayload(stampPrefix('chat:1', 'ab12.1'), 12345, bytes('{"x":1}'));
    expect(readStamp(stamped, topicJson)).toEqual({ epoch: 'ab12.1', offset: 12345 });
    expect(readStamp(stampPayload(stampPrefix('chat:1', 'e'), 1, bytes('{}')), topicJson)).toEqual({
      epoch: 'e',
      offset: 1,
    });
  });

  it.each([
    ['a payload published from outside', '{"x":1,"tp":"chat:1","e":"ab","o":3}'],
    ['a stamp of another topic', '{"tp":"chat:2","e":"ab","o":3,"x":1}'],
    ['a non-object payload', '"text"'],
    ['a stamp without digits', '{"tp":"chat:1","e":"ab","o":x}'],
    ['a truncated stamp', '{"tp":"chat:1","e":"ab'],
  ])('finds no stamp in %s', (_what, text) => {
    expect(readStamp(bytes(text), topicJson)).toBeUndefined();
  });
});
