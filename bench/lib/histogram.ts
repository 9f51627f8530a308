/**
 * A latency histogram with log-spaced buckets (2 % apart) from 1 us to about 100 s: bounded
 * memory whatever the sample count, and histograms of several processes add up exactly.
 */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 940;

export type SparseHistogram = [bucket: number, count: number][];

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  total = 0;
  /** Samples below 0 (clock offset between processes); counted in the lowest bucket. */
  negative = 0;

  /** Records a latency in milliseconds. */
  record(ms: number): void {
    const us = ms * 1000;
    if (us < 0) this.negative++;
    const bucket = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / LOG_GROWTH));
    this.counts[bucket]++;
    this.total++;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.negative = 0;
  }

  toSparse(): SparseHistogram {
    const sparse: SparseHistogram = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i] > 0) sparse.push([i, this.counts[i]]);
    return sparse;
  }

  add(sparse: SparseHistogram): void {
    for (const [bucket, count] of sparse) {
      this.counts[bucket] += count;
      this.total += count;
    }
  }

  /** The latency (ms) below which a fraction `q` of the samples lie; NaN without samples. */
  quantile(q: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = q * this.total;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return i === 0 ? 0.001 : GROWTH ** i / 1000;
    }
    return GROWTH ** (BUCKETS - 1) / 1000;
  }
}
