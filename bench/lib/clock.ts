import { performance } from 'node:perf_hooks';

/**
 * Epoch milliseconds with microsecond resolution. Every process on the machine derives it from
 * the same system clock (its `timeOrigin`) plus a monotonic offset, so a timestamp taken in the
 * publishing process can be compared with one taken in a load client.
 */
export function clockMs(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The published message: `{"t":"bench","p":{"seq":n,"ts":epochMs,"pad":"..."}}`, about 100 bytes. */
export interface BenchMessage {
  readonly t: 'bench';
  readonly p: { readonly seq: number; readonly ts: number; readonly pad: string };
}

/** Padding that brings a typical message (6-digit seq, timestamp with 3 decimals) to 100 bytes. */
const PAD = 'x'.repeat(100 - JSON.stringify({ t: 'bench', p: { seq: 123456, ts: 1732712345678.123, pad: '' } }).length);

export function benchMessage(seq: number, ts: number): BenchMessage {
  return { t: 'bench', p: { seq, ts: Math.round(ts * 1000) / 1000, pad: PAD } };
}

export const BENCH_MESSAGE_BYTES = JSON.stringify(benchMessage(123456, 1732712345678.123)).length;

const TS_KEY = Buffer.from('"ts":');

/**
 * Reads the `ts` field from a message's bytes without JSON.parse: the load clients parse only
 * the sampled frames, and only this field. NaN when it is not there.
 */
export function readTimestamp(buffer: Buffer, start: number, end: number): number {
  const at = buffer.indexOf(TS_KEY, start);
  if (at < 0 || at >= end) return Number.NaN;
  let i = at + TS_KEY.length;
  let whole = 0;
  for (; i < end; i++) {
    const c = buffer[i];
    if (c < 0x30 || c > 0x39) break;
    whole = whole * 10 + (c - 0x30);
  }
  if (buffer[i] !== 0x2e) return whole;
  let fraction = 0;
  let scale = 1;
  for (i++; i < end; i++) {
    const c = buffer[i];
    if (c < 0x30 || c > 0x39) break;
    fraction = fraction * 10 + (c - 0x30);
    scale *= 10;
  }
  return whole + fraction / scale;
}
