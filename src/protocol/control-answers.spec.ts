import { describe, expect, it } from '@jest/globals';
import { echoable, MAX_ECHO_DEPTH, MAX_ECHO_NODES, pongPayload, syncCompletePayload } from './control-answers.js';

describe('pongPayload', () => {
  it('echoes client_timestamp and timestamp, in this order, with the server time', () => {
    const payload = pongPayload({ client_timestamp: 1, timestamp: 2 }, 3);
    expect(payload).toEqual({ client_timestamp: 1, timestamp: 2, server_timestamp: 3 });
    expect(Object.keys(payload)).toEqual(['client_timestamp', 'timestamp', 'server_timestamp']);
  });

  it("echoes a WSE client's p.timestamp as timestamp, client_timestamp null", () => {
    expect(pongPayload({ timestamp: 1764237600000 }, 5)).toEqual({
      client_timestamp: null,
      timestamp: 1764237600000,
      server_timestamp: 5,
    });
  });

  it('gives null for both when the client sent neither', () => {
    expect(pongPayload({}, 5)).toEqual({ client_timestamp: null, timestamp: null, server_timestamp: 5 });
  });

  it('echoes values of any JSON type unchanged', () => {
    expect(pongPayload({ client_timestamp: { a: [1] }, timestamp: 'x' }, 5)).toEqual({
      client_timestamp: { a: [1] },
      timestamp: 'x',
      server_timestamp: 5,
    });
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

  it('answers null for 100,000 nested arrays without overflowing the stack, in a PONG too', () => {
    const deep = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000)) as unknown;
    expect(echoable(deep)).toBeNull();
    expect(JSON.stringify(pongPayload({ client_timestamp: deep, timestamp: deep }, 1))).toBe(
      '{"client_timestamp":null,"timestamp":null,"server_timestamp":1}',
    );
  });

  it(`refuses a flat value of more than ${MAX_ECHO_NODES} values`, () => {
    expect(echoable(Array.from({ length: MAX_ECHO_NODES - 1 }, (_, i) => i))).toHaveLength(MAX_ECHO_NODES - 1);
    expect(echoable(Array.from({ length: MAX_ECHO_NODES + 1 }, (_, i) => i))).toBeNull();
  });
});

describe('syncCompletePayload', () => {
  const at = new Date('2026-12-01T10:00:00.000Z');

  it("is WSE's snapshot_complete, echoing the requested topics", () => {
    expect(
      syncCompletePayload(
        { topics: ['a', 'b'], include_snapshots: true, include_history: false, last_sequence: 0 },
        'conn-1',
        at,
        100,
        'Initial sync complete',
      ),
    ).toEqual({
      message: 'Initial sync complete',
      success: true,
      snapshots_sent: [],
      topics: ['a', 'b'],
      count: 0,
      details: {
        topics: ['a', 'b'],
        last_sequence_processed: 0,
        connection_id: 'conn-1',
        timestamp: '2026-12-01T10:00:00.000Z',
      },
    });
  });

  it('keeps only string topics, at most maxTopics of them', () => {
    const payload = syncCompletePayload({ topics: ['a', 1, null, 'b', 'c'] }, 'c', at, 2, 'm');
    expect(payload.topics).toEqual(['a', 'b']);
    expect(payload.details.topics).toEqual(['a', 'b']);
  });

  it('answers a request without topics or last_sequence', () => {
    const payload = syncCompletePayload({ topics: 'a' }, 'c', at, 100, 'm');
    expect(payload.topics).toEqual([]);
    expect(payload.details.last_sequence_processed).toBe(0);
  });

  it('echoes last_sequence', () => {
    expect(syncCompletePayload({ last_sequence: 42 }, 'c', at, 100, 'm').details.last_sequence_processed).toBe(42);
  });
});
