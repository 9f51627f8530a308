import { describe, expect, it } from '@jest/globals';
import { escapeGlob, publisherOptions, subscriberOptions } from './redis-connections.js';

describe('the ioredis options of the two connections', () => {
  const retry = (): number => 1000;

  it('publisher: no offline queue, commands on their way rejected at a disconnect and never resent by ioredis', () => {
    expect(publisherOptions(retry)).toMatchObject({
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: retry,
    });
  });

  it('subscriber: its subscribe commands wait for the connection, and ioredis restores them after each reconnection', () => {
    expect(subscriberOptions(retry)).toMatchObject({
      lazyConnect: true,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResubscribe: true,
      retryStrategy: retry,
    });
  });
});

describe('escapeGlob', () => {
  it('escapes the characters PSUBSCRIBE reads as a glob, so a prefix is matched literally', () => {
    expect(escapeGlob('wse:')).toBe('wse:');
    expect(escapeGlob('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f');
  });
});
