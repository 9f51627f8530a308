import { describe, expect, it } from '@jest/globals';
import { ThrottledWarning } from './throttled-warning.js';

describe('ThrottledWarning', () => {
  it('logs the first occurrence at once, then one line per interval counting what it held back', () => {
    let now = 0;
    const lines: string[] = [];
    const warning = new ThrottledWarning(
      (line) => lines.push(line),
      10_000,
      () => now,
    );
    const record = (): void => warning.record((count) => `${count} dropped`);

    record();
    expect(lines).toEqual(['1 dropped']);
    for (let i = 0; i < 500; i++) record();
    now = 9_999;
    record();
    expect(lines).toEqual(['1 dropped']);
    now = 10_000;
    record();
    expect(lines).toEqual(['1 dropped', '502 dropped']);
    now = 25_000;
    record();
    expect(lines).toEqual(['1 dropped', '502 dropped', '1 dropped']);
  });
});
