import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { InterestSubscriptions, type InterestCommands, type InterestKind } from './interest-subscriptions.js';

interface Sent {
  readonly op: 'subscribe' | 'unsubscribe';
  readonly kind: InterestKind;
  readonly names: string[];
  resolve(): void;
  reject(error: Error): void;
}

/** Records each command and lets the test answer it, as Redis would, when it chooses. */
class RecordingCommands implements InterestCommands {
  readonly sent: Sent[] = [];
  subscribe(kind: InterestKind, names: string[]): Promise<unknown> {
    return this.record('subscribe', kind, names);
  }
  unsubscribe(kind: InterestKind, names: string[]): Promise<unknown> {
    return this.record('unsubscribe', kind, names);
  }
  private record(op: Sent['op'], kind: InterestKind, names: string[]): Promise<unknown> {
    return new Promise<void>((resolve, reject) => this.sent.push({ op, kind, names, resolve, reject }));
  }
}

describe('InterestSubscriptions', () => {
  let commands: RecordingCommands;
  let refused: string[];
  let issued: number;
  let interest: InterestSubscriptions;

  beforeEach(() => {
    jest.useFakeTimers();
    commands = new RecordingCommands();
    refused = [];
    issued = 0;
    interest = new InterestSubscriptions({
      maxPerCommand: 3,
      onCommand: () => issued++,
      onRefused: (kind, names, message) => refused.push(`${kind} ${names.join(',')}: ${message}`),
    });
    interest.attach(commands);
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  /** Runs the pending tick (setImmediate) and the promise callbacks behind it. */
  async function tick(): Promise<void> {
    jest.advanceTimersByTime(1);
    await Promise.resolve();
    await Promise.resolve();
  }

  it('sends the changes of one tick as one command per kind, subscribing each name once however many hold it', async () => {
    interest.retain('channel', 'wse:a');
    interest.retain('channel', 'wse:a');
    interest.retain('channel', 'wse:b');
    interest.retain('pattern', 'wse:x:*');
    expect(commands.sent).toHaveLength(0);
    await tick();
    expect(commands.sent.map((c) => [c.op, c.kind, c.names])).toEqual([
      ['subscribe', 'channel', ['wse:a', 'wse:b']],
      ['subscribe', 'pattern', ['wse:x:*']],
    ]);
    expect(issued).toBe(2);
    expect(interest.size).toBe(3);
  });

  it('unsubscribes only when the last holder leaves, and a name that came and went within a tick costs nothing', async () => {
    interest.retain('channel', 'wse:a');
    interest.retain('channel', 'wse:a');
    interest.retain('channel', 'wse:gone');
    interest.release('channel', 'wse:gone');
    await tick();
    expect(commands.sent.map((c) => c.names)).toEqual([['wse:a']]);
    interest.release('channel', 'wse:a');
    await tick();
    expect(commands.sent).toHaveLength(1);
    interest.release('channel', 'wse:a');
    await tick();
    expect(commands.sent.map((c) => [c.op, c.names])).toEqual([
      ['subscribe', ['wse:a']],
      ['unsubscribe', ['wse:a']],
    ]);
    expect(interest.size).toBe(0);
  });

  it('bounds each command to maxPerCommand names and sends the rest in the next ticks', async () => {
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) interest.retain('channel', name);
    await tick();
    await tick();
    await tick();
    expect(commands.sent.map((c) => c.names)).toEqual([['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]);
  });

  it('is active only once Redis answered, and whenActive resolves then (not before)', async () => {
    interest.retain('channel', 'wse:a');
    const active = interest.whenActive('channel', 'wse:a', 10_000);
    expect(active).toBeDefined();
    let resolved = false;
    void active!.then(() => (resolved = true));
    await tick();
    expect(interest.isActive('channel', 'wse:a')).toBe(false);
    expect(resolved).toBe(false);
    commands.sent[0].resolve();
    await Promise.resolve();
    await Promise.resolve();
    expect(interest.isActive('channel', 'wse:a')).toBe(true);
    expect(resolved).toBe(true);
    expect(interest.whenActive('channel', 'wse:a', 10_000)).toBeUndefined();
  });

  it('gives up waiting after the timeout while Redis does not answer', async () => {
    interest.retain('pattern', 'wse:*');
    let resolved = false;
    void interest.whenActive('pattern', 'wse:*', 500)!.then(() => (resolved = true));
    await tick();
    jest.advanceTimersByTime(498);
    await Promise.resolve();
    expect(resolved).toBe(false);
    jest.advanceTimersByTime(1);
    await Promise.resolve();
    expect(resolved).toBe(true);
    expect(interest.isActive('pattern', 'wse:*')).toBe(false);
  });

  it('does not take an older SUBSCRIBE answer for a newer one after an unsubscribe in between', async () => {
    interest.retain('channel', 'wse:a');
    await tick();
    interest.release('channel', 'wse:a');
    await tick();
    interest.retain('channel', 'wse:a');
    await tick();
    expect(commands.sent.map((c) => c.op)).toEqual(['subscribe', 'unsubscribe', 'subscribe']);
    commands.sent[0].resolve();
    await Promise.resolve();
    await Promise.resolve();
    expect(interest.isActive('channel', 'wse:a')).toBe(false);
    commands.sent[2].resolve();
    await Promise.resolve();
    await Promise.resolve();
    expect(interest.isActive('channel', 'wse:a')).toBe(true);
  });

  it('reports a refused command and answers its waiters', async () => {
    interest.retain('channel', 'wse:secret');
    let resolved = false;
    void interest.whenActive('channel', 'wse:secret', 10_000)!.then(() => (resolved = true));
    await tick();
    commands.sent[0].reject(new Error('NOPERM'));
    await Promise.resolve();
    await Promise.resolve();
    expect(resolved).toBe(true);
    expect(refused).toEqual(['channel wse:secret: NOPERM']);
    expect(interest.isActive('channel', 'wse:secret')).toBe(false);
  });

  it('subscribes everything held again on a new connection, and sends nothing while detached', async () => {
    interest.retain('channel', 'wse:a');
    interest.retain('pattern', 'wse:b:*');
    await tick();
    interest.attach(undefined);
    interest.retain('channel', 'wse:c');
    await tick();
    expect(commands.sent).toHaveLength(2);
    const next = new RecordingCommands();
    interest.attach(next);
    await tick();
    expect(next.sent.map((c) => [c.kind, c.names])).toEqual([
      ['channel', ['wse:a', 'wse:c']],
      ['pattern', ['wse:b:*']],
    ]);
  });
});
