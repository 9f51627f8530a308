import { describe, expect, it } from '@jest/globals';
import { isDuplicate, missedCount, readRecoveryState, readStamp } from './stamp.js';

describe('readStamp', () => {
  it('reads tp, e and o of a stamped message', () => {
    expect(readStamp({ tp: 'chat:a', e: 'ep1', o: 7, text: 'hi' })).toEqual({ tp: 'chat:a', e: 'ep1', o: 7 });
  });

  it.each([
    ['a string', 'text'],
    ['null', null],
    ['an array', [1, 2]],
    ['no stamp', { text: 'hi' }],
    ['a numeric epoch', { tp: 'a', e: 1, o: 1 }],
    ['a string offset', { tp: 'a', e: 'x', o: '1' }],
    ['a fractional offset', { tp: 'a', e: 'x', o: 1.5 }],
    ['a negative offset', { tp: 'a', e: 'x', o: -1 }],
    ['a missing topic', { e: 'x', o: 1 }],
  ])('finds none in %s', (_label, value) => {
    expect(readStamp(value)).toBeUndefined();
  });
});

describe('readRecoveryState', () => {
  it('reads epoch and offset, and recovered and count when present', () => {
    expect(readRecoveryState({ epoch: 'e', offset: 3 })).toEqual({ epoch: 'e', offset: 3 });
    expect(readRecoveryState({ epoch: 'e', offset: 3, recovered: true, count: 2 })).toEqual({
      epoch: 'e',
      offset: 3,
      recovered: true,
      count: 2,
    });
  });

  it('refuses a malformed entry and ignores malformed optional fields', () => {
    expect(readRecoveryState(undefined)).toBeUndefined();
    expect(readRecoveryState({ epoch: 'e' })).toBeUndefined();
    expect(readRecoveryState({ epoch: 'e', offset: -2 })).toBeUndefined();
    expect(readRecoveryState({ epoch: 'e', offset: 1, recovered: 'yes', count: -1 })).toEqual({
      epoch: 'e',
      offset: 1,
    });
  });
});

describe('isDuplicate', () => {
  const seen = { e: 'ep1', o: 5, seen: true };

  it('drops an offset at or before the last delivered one of the same epoch', () => {
    expect(isDuplicate(seen, { tp: 't', e: 'ep1', o: 5 })).toBe(true);
    expect(isDuplicate(seen, { tp: 't', e: 'ep1', o: 1 })).toBe(true);
  });

  it('keeps the next offset, any offset of another epoch, and the first message of a topic', () => {
    expect(isDuplicate(seen, { tp: 't', e: 'ep1', o: 6 })).toBe(false);
    expect(isDuplicate(seen, { tp: 't', e: 'ep2', o: 1 })).toBe(false);
    expect(isDuplicate(undefined, { tp: 't', e: 'ep1', o: 1 })).toBe(false);
  });

  it('never drops because of a position only a subscribe answer reported', () => {
    expect(isDuplicate({ e: 'ep1', o: 5, seen: false }, { tp: 't', e: 'ep1', o: 5 })).toBe(false);
  });
});

describe('missedCount', () => {
  it('counts the offsets between the position and the current one, in one epoch', () => {
    expect(missedCount({ e: 'a', o: 4, seen: true }, { epoch: 'a', offset: 9 })).toBe(5);
    expect(missedCount({ e: 'a', o: 4, seen: true }, { epoch: 'a', offset: 4 })).toBe(0);
  });

  it('is unknown across epochs or without a position', () => {
    expect(missedCount({ e: 'a', o: 4, seen: true }, { epoch: 'b', offset: 9 })).toBeUndefined();
    expect(missedCount(undefined, { epoch: 'a', offset: 9 })).toBeUndefined();
    expect(missedCount({ e: 'a', o: 4, seen: true }, undefined)).toBeUndefined();
  });
});
