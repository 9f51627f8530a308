import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { ProtocolViolations, violationKind } from './protocol-violations.js';

describe('ProtocolViolations', () => {
  let lines: string[];
  let violations: ProtocolViolations;

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    lines = [];
    violations = new ProtocolViolations((line) => lines.push(line), 10_000);
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('counts each violation by kind and in total', () => {
    violations.record('invalid_utf8');
    violations.record('invalid_utf8');
    violations.record('rsv_bits');
    expect([
      violations.count,
      violations.of('invalid_utf8'),
      violations.of('rsv_bits'),
      violations.of('oversize'),
    ]).toEqual([3, 2, 1, 0]);
  });

  it('logs the first violation at once, then one line per 10 s with the count since the last line', () => {
    violations.record('oversize');
    for (let i = 0; i < 5_000; i++) violations.record('unmasked');
    expect(lines).toEqual([
      '1 protocol violation(s) from clients since the last report (last: oversize); their connections were closed',
    ]);
    jest.advanceTimersByTime(10_000);
    violations.record('bad_opcode');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe(
      '5001 protocol violation(s) from clients since the last report (last: bad_opcode); their connections were closed',
    );
  });

  it("reads the kind from ws's error code, anything unknown as other", () => {
    const error = (code: string): Error => Object.assign(new Error('x'), { code });
    expect(violationKind(error('WS_ERR_INVALID_UTF8'))).toBe('invalid_utf8');
    expect(violationKind(error('WS_ERR_UNEXPECTED_RSV_1'))).toBe('rsv_bits');
    expect(violationKind(error('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'))).toBe('oversize');
    expect(violationKind(error('WS_ERR_EXPECTED_MASK'))).toBe('unmasked');
    expect(violationKind(error('WS_ERR_INVALID_OPCODE'))).toBe('bad_opcode');
    expect(violationKind(error('ECONNRESET'))).toBe('other');
    expect(violationKind(new Error('no code'))).toBe('other');
    expect(violationKind(undefined)).toBe('other');
  });
});
