import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { SystemFrames, type WireFrame } from '../../protocol/outbound-frame.js';
import { EXPIRY_RESOLUTION_MS, WseTokenExpiry } from './token-expiry.js';

const START = 1_750_000_000_000;

/** A connection as the expiry sees it, recording what it was sent and how it was closed. */
class FakeConnection {
  expiryBucketMs: number | undefined;
  expirySlot = 0;
  readonly sent: string[] = [];
  closed: { code: number; reason: string; atMs: number } | undefined;

  constructor(readonly id: string) {}

  send(frame: WireFrame): boolean {
    this.sent.push(frame.subarray(2).toString('utf8'));
    return true;
  }

  close(code: number, reason: string): void {
    this.closed ??= { code, reason, atMs: Date.now() };
  }
}

describe('WseTokenExpiry', () => {
  let expiry: WseTokenExpiry;

  beforeEach(() => {
    jest.useFakeTimers({ now: START });
    // The close's debug line, once per expired connection.
    jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    expiry = new WseTokenExpiry(new SystemFrames(false, false, () => 'id'));
  });

  afterEach(() => {
    expiry.onModuleDestroy();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  const watch = (id: string, expiresAtMs: number): FakeConnection => {
    const connection = new FakeConnection(id);
    expiry.watch(connection, expiresAtMs);
    return connection;
  };

  it('closes with one AUTH_FAILED frame and 4401 "token expired" at a whole-second expiry, not before', () => {
    const connection = watch('a', START + 5_000);
    jest.advanceTimersByTime(4_999);
    expect(connection.closed).toBeUndefined();
    expect(connection.sent).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(connection.sent).toEqual([
      '{"c":"WSE","t":"error","p":{"code":"AUTH_FAILED","message":"Token has expired"},"v":1}',
    ]);
    expect(connection.closed).toEqual({ code: 4401, reason: 'token expired', atMs: START + 5_000 });
    expect(expiry.watched).toBe(0);
  });

  it('closes an expiry inside a second at the end of that second: never early, at most one bucket late', () => {
    const connection = watch('a', START + 2_300);
    jest.advanceTimersByTime(2_999);
    expect(connection.closed).toBeUndefined();
    jest.advanceTimersByTime(1);
    expect(connection.closed?.atMs).toBe(START + 3_000);
    expect(connection.closed!.atMs - (START + 2_300)).toBeLessThanOrEqual(EXPIRY_RESOLUTION_MS);
  });

  it('closes each connection of a shared bucket, and buckets in the order they end', () => {
    const late = watch('late', START + 3_000);
    const early = [watch('e1', START + 1_000), watch('e2', START + 1_000)];
    expect(expiry.watched).toBe(3);
    jest.advanceTimersByTime(1_000);
    expect(early.map((c) => c.closed?.code)).toEqual([4401, 4401]);
    expect(late.closed).toBeUndefined();
    expect(expiry.watched).toBe(1);
    jest.advanceTimersByTime(2_000);
    expect(late.closed?.atMs).toBe(START + 3_000);
  });

  it('does not close a forgotten connection, and stops its timer once nothing is watched', () => {
    const connection = watch('a', START + 1_000);
    expiry.forget(connection);
    expiry.forget(connection);
    expect(expiry.watched).toBe(0);
    expect(connection.expiryBucketMs).toBeUndefined();
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(5_000);
    expect(connection.closed).toBeUndefined();
  });

  it('forgets connections in any order from a shared bucket, and closes exactly the others', () => {
    const all = Array.from({ length: 50 }, (_, i) => watch(`c${i}`, START + 2_000));
    const forgotten = new Set([0, 49, 17, 18, 3, 48, 25]);
    for (const i of forgotten) expiry.forget(all[i]);
    expect(expiry.watched).toBe(43);
    jest.advanceTimersByTime(2_000);
    all.forEach((c, i) => expect([c.id, c.closed?.code]).toEqual([c.id, forgotten.has(i) ? undefined : 4401]));
    expect(expiry.watched).toBe(0);
  });

  it('runs one timer for many connections', () => {
    for (let i = 0; i < 1_000; i++) watch(`c${i}`, START + 60_000 + i * 7);
    expect(jest.getTimerCount()).toBe(1);
    expect(expiry.watched).toBe(1_000);
  });

  it('re-arms a watched connection at its new expiry only', () => {
    const connection = watch('a', START + 1_000);
    expiry.watch(connection, START + 4_000);
    expect(expiry.watched).toBe(1);
    jest.advanceTimersByTime(3_999);
    expect(connection.closed).toBeUndefined();
    jest.advanceTimersByTime(1);
    expect(connection.closed?.atMs).toBe(START + 4_000);
  });

  it('closes an expiry already past (a slow connect guard) within one bucket', () => {
    const connection = watch('a', START - 10_000);
    jest.advanceTimersByTime(EXPIRY_RESOLUTION_MS);
    expect(connection.closed?.code).toBe(4401);
  });

  it('closes an expiry an hour away at its second', () => {
    const connection = watch('a', START + 3_600_000);
    jest.advanceTimersByTime(3_599_999);
    expect(connection.closed).toBeUndefined();
    jest.advanceTimersByTime(1);
    expect(connection.closed?.atMs).toBe(START + 3_600_000);
  });

  it('starts over from the current second after a quiet time', () => {
    expiry.forget(watch('a', START + 1_000));
    jest.advanceTimersByTime(60_000);
    const connection = watch('b', START + 62_000);
    jest.advanceTimersByTime(1_999);
    expect(connection.closed).toBeUndefined();
    jest.advanceTimersByTime(1);
    expect(connection.closed?.atMs).toBe(START + 62_000);
  });

  it('forgets everything at shutdown', () => {
    const connection = watch('a', START + 1_000);
    expiry.onModuleDestroy();
    expect(expiry.watched).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(2_000);
    expect(connection.closed).toBeUndefined();
  });
});
