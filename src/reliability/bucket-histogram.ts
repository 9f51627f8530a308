/**
 * A histogram the hot path can afford: fixed bucket bounds, counts in a typed array, no
 * allocation and no labels. `observe` is a short linear scan; prom-client reads the counts when
 * it is scraped (WseMetricsService), so a publish never calls into prom-client.
 */
export class BucketHistogram {
  /** Non-cumulative counts; the last slot is for values above every bound (+Inf). */
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i] > bounds[i - 1])) throw new RangeError('histogram bounds must increase');
    }
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative counts per bound, then +Inf: the Prometheus `le` series. */
  cumulative(): number[] {
    const result: number[] = [];
    let running = 0;
    for (let i = 0; i < this.counts.length; i++) {
      running += this.counts[i];
      result.push(running);
    }
    return result;
  }
}
