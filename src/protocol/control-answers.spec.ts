import { describe, expect, it } from '@jest/globals';
import { pongPayload, syncCompletePayload } from './control-answers.js';

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
