import { describe, expect, it } from '@jest/globals';
import type { BatchReply } from './publish-batch.js';
import { isRedirection, LATE, outcomeOfOne, publishByMaster, SHORT, type ByMasterSender } from './sharded-batch.js';

interface Pending<T> {
  readonly indexes: number[];
  resolve(value: T): void;
  reject(error: Error): void;
}

/** A cluster the test answers by hand: message i is owned by `owners[i]`. */
class HandSender implements ByMasterSender {
  grouped = true;
  readonly groups: Pending<BatchReply>[] = [];
  readonly alones: Pending<string | undefined>[] = [];

  constructor(private readonly owners: readonly (string | undefined)[]) {}

  ownerOf(index: number): string | undefined {
    return this.owners[index];
  }
  group(indexes: readonly number[]): Promise<BatchReply> {
    return new Promise((resolve, reject) => this.groups.push({ indexes: [...indexes], resolve, reject }));
  }
  alone(index: number): Promise<string | undefined> {
    return new Promise((resolve, reject) => this.alones.push({ indexes: [index], resolve, reject }));
  }
  sendAlone(error: unknown): boolean {
    return isRedirection(error) || (error instanceof Error && error.message.startsWith('NOPERM'));
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('publishByMaster', () => {
  it('sends one command per master holding two messages or more, in order, and a lone one by itself', async () => {
    const sender = new HandSender(['m1', 'm2', 'm1', 'm3', 'm1', 'm2']);
    const done = publishByMaster(6, sender, 1_000);
    expect(sender.groups.map((g) => g.indexes)).toEqual([
      [0, 2, 4],
      [1, 5],
    ]);
    expect(sender.alones.map((a) => a.indexes)).toEqual([[3]]);
    for (const group of sender.groups) group.resolve([]);
    sender.alones[0].resolve(undefined);
    expect(await done).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
  });

  it('sends alone what has no known owner, and everything while scripts are refused', async () => {
    const sender = new HandSender([undefined, 'm1', 'm1']);
    sender.grouped = false;
    const done = publishByMaster(3, sender, 1_000);
    expect(sender.groups).toEqual([]);
    expect(sender.alones.map((a) => a.indexes[0])).toEqual([0, 1, 2]);
    sender.alones.forEach((a) => a.resolve(undefined));
    expect(await done).toEqual([undefined, undefined, undefined]);
  });

  it('sends a message refused inside its group again alone; a short one is SHORT', async () => {
    const sender = new HandSender(['m1', 'm1', 'm1']);
    const done = publishByMaster(3, sender, 1_000);
    // Position 2 (index 1) refused: its slot is not on that node; position 3 short.
    sender.groups[0].resolve([2, 'ERR Script attempted to access a non local key', -3, -1]);
    await tick();
    expect(sender.alones.map((a) => a.indexes[0])).toEqual([1]);
    sender.alones[0].resolve(undefined);
    expect(await done).toEqual([undefined, undefined, SHORT]);
  });

  it('sends a redirected or refused-script group alone, and refuses every message of a group with another error', async () => {
    const sender = new HandSender(['m1', 'm2', 'm1', 'm2']);
    const done = publishByMaster(4, sender, 1_000);
    sender.groups[0].reject(new Error('MOVED 3999 127.0.0.1:7001'));
    sender.groups[1].reject(new Error('Connection is closed.'));
    await tick();
    expect(sender.alones.map((a) => a.indexes[0])).toEqual([0, 2]);
    sender.alones[0].resolve(undefined);
    sender.alones[1].reject(new Error('NOPERM channel'));
    expect(await done).toEqual([undefined, 'Connection is closed.', 'NOPERM channel', 'Connection is closed.']);
  });

  it('ends what got no answer in time as LATE with one timer, and ignores a later answer', async () => {
    const sender = new HandSender(['m1', 'm1', 'm2', 'm2']);
    const done = publishByMaster(4, sender, 30);
    sender.groups[0].resolve([]);
    const outcomes = await done;
    expect(outcomes).toEqual([undefined, undefined, LATE, LATE]);
    sender.groups[1].resolve([]);
    await tick();
    expect(outcomes).toEqual([undefined, undefined, LATE, LATE]);
  });

  it('resolves at once for an empty batch', async () => {
    expect(await publishByMaster(0, new HandSender([]), 1_000)).toEqual([]);
  });
});

describe('outcomeOfOne and isRedirection', () => {
  it('reads a one-message reply', () => {
    expect(outcomeOfOne([])).toBeUndefined();
    expect(outcomeOfOne([1, 'NOPERM no'])).toBe('NOPERM no');
    expect(outcomeOfOne([-1, -1])).toBe(SHORT);
  });

  it('tells a redirection from a refusal', () => {
    for (const text of ['MOVED 1 a:1', 'ASK 1 a:1', 'CROSSSLOT Keys', 'TRYAGAIN x', 'CLUSTERDOWN x'])
      expect(isRedirection(new Error(text))).toBe(true);
    expect(isRedirection(new Error('Too many Cluster redirections. Last error: x'))).toBe(true);
    expect(isRedirection(new Error('NOPERM no'))).toBe(false);
    expect(isRedirection(new Error('Connection is closed.'))).toBe(false);
    expect(isRedirection('MOVED')).toBe(false);
  });
});
