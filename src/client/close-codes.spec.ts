import { describe, expect, it } from '@jest/globals';
import { closeAction, WSE_CLOSE_CODES } from './close-codes.js';

describe('the close-code table', () => {
  it.each([
    [4401, 'auth'],
    [1008, 'stop'],
    [1009, 'stop'],
    [1000, 'retry'],
    [1001, 'retry'],
    [1006, 'retry'],
    [1011, 'retry'],
    [1012, 'retry'],
    [1013, 'retry'],
    [4000, 'retry'],
    [4300, 'retry'],
  ])('%i: %s', (code, action) => {
    expect(closeAction(code)).toBe(action);
    expect(WSE_CLOSE_CODES[code]).toBe(action);
  });

  it('retries a code it does not list', () => {
    expect(closeAction(1014)).toBe('retry');
    expect(closeAction(4999)).toBe('retry');
    expect(WSE_CLOSE_CODES[4999]).toBeUndefined();
  });

  it('has exactly three codes that are not retried', () => {
    const notRetried = Object.entries(WSE_CLOSE_CODES)
      .filter(([, action]) => action !== 'retry')
      .map(([code]) => Number(code));
    expect(notRetried).toEqual([1008, 1009, 4401]);
  });

  it('cannot be changed at run time', () => {
    expect(Object.isFrozen(WSE_CLOSE_CODES)).toBe(true);
  });
});
