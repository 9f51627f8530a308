import { describe, expect, it, jest } from '@jest/globals';
import { InboundQueue } from './inbound-queue.js';

/** A promise settled from the outside. */
interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every settled job's `.catch().finally()` chain run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Jobs that record when they start and finish only when told to. */
class Jobs {
  readonly started: string[] = [];
  private readonly pending = new Map<string, Deferred>();

  job(name: string): () => Promise<void> {
    return () => {
      this.started.push(name);
      const d = deferred();
      this.pending.set(name, d);
      return d.promise;
    };
  }

  finish(name: string): void {
    this.pending.get(name)!.resolve();
  }

  fail(name: string, error: unknown): void {
    this.pending.get(name)!.reject(error);
  }
}

describe('InboundQueue', () => {
  it('starts jobs at once while under the concurrency limit', () => {
    const queue = new InboundQueue(10, 3, () => undefined);
    const jobs = new Jobs();
    expect(queue.offer(jobs.job('a'))).toBe(true);
    expect(queue.offer(jobs.job('b'))).toBe(true);
    expect(jobs.started).toEqual(['a', 'b']);
    expect(queue.depth).toBe(2);
  });

  it('runs at most `concurrency` jobs; the rest wait', () => {
    const queue = new InboundQueue(10, 2, () => undefined);
    const jobs = new Jobs();
    for (const name of ['a', 'b', 'c', 'd']) expect(queue.offer(jobs.job(name))).toBe(true);
    expect(jobs.started).toEqual(['a', 'b']);
    expect(queue.depth).toBe(4);
  });

  it('starts waiting jobs in arrival order as running ones finish', async () => {
    const queue = new InboundQueue(10, 2, () => undefined);
    const jobs = new Jobs();
    for (const name of ['a', 'b', 'c', 'd', 'e']) queue.offer(jobs.job(name));

    jobs.finish('b');
    await settle();
    expect(jobs.started).toEqual(['a', 'b', 'c']);
    expect(queue.depth).toBe(4);

    jobs.finish('a');
    await settle();
    expect(jobs.started).toEqual(['a', 'b', 'c', 'd']);
    expect(queue.depth).toBe(3);

    jobs.finish('c');
    jobs.finish('d');
    await settle();
    expect(jobs.started).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(queue.depth).toBe(1);

    jobs.finish('e');
    await settle();
    expect(queue.depth).toBe(0);
  });

  it('refuses jobs past its capacity, counting each drop, and never runs them', () => {
    const queue = new InboundQueue(3, 1, () => undefined);
    const jobs = new Jobs();
    expect(queue.offer(jobs.job('a'))).toBe(true);
    expect(queue.offer(jobs.job('b'))).toBe(true);
    expect(queue.offer(jobs.job('c'))).toBe(true);
    expect(queue.offer(jobs.job('d'))).toBe(false);
    expect(queue.offer(jobs.job('e'))).toBe(false);
    expect(queue.dropped).toBe(2);
    expect(queue.depth).toBe(3);
    expect(jobs.started).toEqual(['a']);
  });

  it('counts running jobs against the capacity too', () => {
    const queue = new InboundQueue(2, 5, () => undefined);
    const jobs = new Jobs();
    expect(queue.offer(jobs.job('a'))).toBe(true);
    expect(queue.offer(jobs.job('b'))).toBe(true);
    expect(queue.offer(jobs.job('c'))).toBe(false);
    expect(queue.dropped).toBe(1);
    expect(jobs.started).toEqual(['a', 'b']);
  });

  it('accepts jobs again once space frees up', async () => {
    const queue = new InboundQueue(1, 1, () => undefined);
    const jobs = new Jobs();
    queue.offer(jobs.job('a'));
    expect(queue.offer(jobs.job('b'))).toBe(false);
    jobs.finish('a');
    await settle();
    expect(queue.offer(jobs.job('c'))).toBe(true);
    expect(jobs.started).toEqual(['a', 'c']);
    expect(queue.dropped).toBe(1);
  });

  it('hands a rejecting job’s error to onJobError and frees its slot for the next job', async () => {
    const onJobError = jest.fn<(error: unknown) => void>();
    const queue = new InboundQueue(10, 1, onJobError);
    const jobs = new Jobs();
    queue.offer(jobs.job('a'));
    queue.offer(jobs.job('b'));
    expect(jobs.started).toEqual(['a']);

    const boom = new Error('handler failed');
    jobs.fail('a', boom);
    await settle();
    expect(onJobError).toHaveBeenCalledTimes(1);
    expect(onJobError).toHaveBeenCalledWith(boom);
    expect(jobs.started).toEqual(['a', 'b']);
    expect(queue.depth).toBe(1);

    jobs.finish('b');
    await settle();
    expect(onJobError).toHaveBeenCalledTimes(1);
    expect(queue.depth).toBe(0);
  });

  it('does not call onJobError for jobs that succeed', async () => {
    const onJobError = jest.fn<(error: unknown) => void>();
    const queue = new InboundQueue(10, 2, onJobError);
    const jobs = new Jobs();
    queue.offer(jobs.job('a'));
    jobs.finish('a');
    await settle();
    expect(onJobError).not.toHaveBeenCalled();
    expect(queue.dropped).toBe(0);
  });
});
