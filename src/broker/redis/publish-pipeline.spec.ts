import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CircuitBreaker } from '../../reliability/circuit-breaker.js';
import type { DeadLetterReason } from '../../reliability/dead-letter-queue.js';
import type { BatchReply } from './publish-batch.js';
import type { BatchMessage } from './redis-history.js';
import { PublishPipeline, type CommandSender, type PublishPipelineOptions, type Refusal } from './publish-pipeline.js';

const OPTIONS: PublishPipelineOptions = {
  publishAttempts: 3,
  publishRetryDelayMs: 100,
  publishTimeoutMs: 1_000,
  maxInFlightMessages: 1_000,
  maxInFlightBytes: 1_000_000,
};
const BREAKER = { failureThreshold: 10, resetTimeoutMs: 60_000, halfOpenMaxCalls: 3 };

interface SentCommand {
  readonly kind: 'single' | 'batch' | 'history';
  readonly expected: number;
  readonly payloads: string[];
  resolve(value: number | BatchReply): void;
  reject(error: Error): void;
}

/** A publisher connection the test answers by hand. */
class FakeSender implements CommandSender {
  writable = true;
  readonly sent: SentCommand[] = [];

  publish(_channel: string, payload: string | Buffer): Promise<number> {
    return new Promise<number>((resolve, reject) =>
      this.sent.push({ kind: 'single', expected: -1, payloads: [String(payload)], resolve: resolve as never, reject }),
    );
  }
  publishBatch(expected: number, args: (string | Buffer)[]): Promise<BatchReply> {
    return new Promise<BatchReply>((resolve, reject) =>
      this.sent.push({
        kind: 'batch',
        expected,
        payloads: args.filter((_, i) => i % 2 === 1).map(String),
        resolve: resolve as never,
        reject,
      }),
    );
  }
  publishHistoryBatch(expected: number, messages: readonly BatchMessage[]): Promise<BatchReply> {
    return new Promise<BatchReply>((resolve, reject) =>
      this.sent.push({
        kind: 'history',
        expected,
        payloads: messages.map((m) => (m.topic === undefined ? String(m.payload) : `${m.topic}:${String(m.payload)}`)),
        resolve: resolve as never,
        reject,
      }),
    );
  }
}

/** Records what the pipeline reports (wired into a PipelineHost in create()). */
class FakeHost {
  refusal: Refusal | undefined;
  expected = 2;
  published = 0;
  readonly dead: { payload: string; reason: DeadLetterReason; error: string }[] = [];
  readonly answering: boolean[] = [];

  gate(): Refusal | undefined {
    return this.refusal;
  }
  expectedReceivers(): number {
    return this.expected;
  }
  readonly publishedFn = (): void => {
    this.published++;
  };
  deadLetter(_channel: string, payload: string | Buffer, reason: DeadLetterReason, error: string): void {
    this.dead.push({ payload: String(payload), reason, error });
  }
  answeringChanged(notAnswering: boolean): void {
    this.answering.push(notAnswering);
  }
  reasons(): DeadLetterReason[] {
    return this.dead.map((d) => d.reason);
  }
}

function replyError(message: string): Error {
  return Object.assign(new Error(message), { name: 'ReplyError' });
}

/** Lets the tick's batch go out (process.nextTick) and promise callbacks run (a reply's `then`). */
async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => process.nextTick(resolve));
    for (let j = 0; j < 5; j++) await Promise.resolve();
  }
}

describe('PublishPipeline', () => {
  let sender: FakeSender;
  let host: FakeHost;
  let breaker: CircuitBreaker;
  let pipeline: PublishPipeline;

  function create(options: Partial<PublishPipelineOptions> = {}): void {
    breaker = new CircuitBreaker('pub_breaker', BREAKER, () => Date.now());
    pipeline = new PublishPipeline(
      { ...OPTIONS, ...options },
      breaker,
      sender,
      {
        gate: () => host.gate(),
        expectedReceivers: () => host.expectedReceivers(),
        published: host.publishedFn,
        deadLetter: (c, p, r, e) => host.deadLetter(c, p, r, e),
        answeringChanged: (n) => host.answeringChanged(n),
      },
      () => Date.now(),
    );
    pipeline.start();
  }

  beforeEach(() => {
    // process.nextTick stays real: the batch of a tick goes out on it.
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['nextTick'] });
    sender = new FakeSender();
    host = new FakeHost();
    create();
  });
  afterEach(async () => {
    const stopped = pipeline.stop(0);
    await jest.advanceTimersByTimeAsync(50);
    await stopped;
    jest.useRealTimers();
  });

  function publish(...payloads: string[]): void {
    for (const payload of payloads) pipeline.publish('wse:t', payload);
  }

  it('sends what one tick publishes as one batch command, telling it how many receivers to expect', async () => {
    publish('a', 'b', 'c');
    expect(sender.sent).toHaveLength(0);
    await flush();
    expect(sender.sent.map((c) => [c.kind, c.expected, c.payloads])).toEqual([['batch', 2, ['a', 'b', 'c']]]);
    expect(pipeline.inFlight).toBe(3);
    sender.sent[0].resolve([]);
    await flush();
    expect([host.published, pipeline.inFlight, pipeline.inFlightBytes, pipeline.peakInFlight]).toEqual([3, 0, 0, 3]);
  });

  it('sends a lone publish as a single PUBLISH and checks its receiver count', async () => {
    publish('a');
    await flush();
    publish('b');
    await flush();
    sender.sent[0].resolve(2);
    sender.sent[1].resolve(1);
    await flush();
    expect(host.published).toBe(1);
    expect(host.dead).toEqual([
      { payload: 'b', reason: 'partial', error: 'received by 1 of 2 expected subscribers: an instance missed it' },
    ]);
  });

  it('dead-letters as partial the batch messages Redis says reached too few subscribers', async () => {
    publish('a', 'b', 'c');
    await flush();
    sender.sent[0].resolve([-2, 1]);
    await flush();
    expect(host.published).toBe(2);
    expect(host.reasons()).toEqual(['partial']);
    expect(host.dead[0].payload).toBe('b');
    expect(breaker.state).toBe('CLOSED');
  });

  describe('history topics', () => {
    it('sends a tick holding a history message as one history command, plain messages in their place', async () => {
      pipeline.publish('wse:news', 'a');
      pipeline.publish('wse:chat', '{"n":1}', 'chat');
      pipeline.publish('wse:news', 'b');
      await flush();
      expect(sender.sent.map((c) => [c.kind, c.expected, c.payloads])).toEqual([
        ['history', 2, ['a', 'chat:{"n":1}', 'b']],
      ]);
      sender.sent[0].resolve([]);
      await flush();
      expect(host.published).toBe(3);
    });

    it('sends a lone history message through the history command too', async () => {
      pipeline.publish('wse:chat', '{"n":1}', 'chat');
      await flush();
      expect(sender.sent.map((c) => c.kind)).toEqual(['history']);
    });

    it('retries a refused history message (the script undid it) and never resends an unknown outcome', async () => {
      pipeline.publish('wse:chat', '{"n":1}', 'chat');
      pipeline.publish('wse:chat', '{"n":2}', 'chat');
      await flush();
      sender.sent[0].resolve([2, 'OOM command not allowed']);
      await flush();
      await jest.advanceTimersByTimeAsync(OPTIONS.publishRetryDelayMs);
      expect(sender.sent.map((c) => [c.kind, c.payloads])).toEqual([
        ['history', ['chat:{"n":1}', 'chat:{"n":2}']],
        ['history', ['chat:{"n":2}']],
      ]);
      sender.sent[1].reject(new Error('Connection is closed.'));
      await flush();
      expect(host.reasons()).toEqual(['outcome_unknown']);
      expect(sender.sent).toHaveLength(2);
    });
  });

  describe('bounds', () => {
    it(`refuses past maxInFlightMessages at once as backlog_full`, async () => {
      create({ maxInFlightMessages: 3 });
      publish('a', 'b', 'c', 'd');
      expect(host.reasons()).toEqual(['backlog_full']);
      expect(host.dead[0].payload).toBe('d');
      await flush();
      sender.sent[0].resolve([]);
      await flush();
      publish('e');
      expect(host.dead).toHaveLength(1);
    });

    it('refuses past maxInFlightBytes at once as backlog_full', () => {
      create({ maxInFlightBytes: 10 });
      publish('12345', '12345', '1');
      expect(host.reasons()).toEqual(['backlog_full']);
      expect(pipeline.inFlightBytes).toBe(10);
    });
  });

  describe('the deadline', () => {
    it('gives up a command without reply after publishTimeoutMs, with every command after it, as outcome_unknown', async () => {
      publish('a', 'b');
      await flush();
      jest.advanceTimersByTime(500);
      publish('c');
      await flush();
      jest.advanceTimersByTime(499);
      expect(host.dead).toEqual([]);
      jest.advanceTimersByTime(101); // the sweep runs every 100 ms
      expect(host.reasons()).toEqual(['outcome_unknown', 'outcome_unknown', 'outcome_unknown']);
      expect(host.dead[0].error).toBe(
        'no reply from Redis within 1000 ms: the message may or may not have been published',
      );
      expect(pipeline.inFlight).toBe(0);
      expect(pipeline.notAnswering).toBe(true);
      expect(host.answering).toEqual([true]);
    });

    it('measures the deadline from the last reply: a queue Redis works through is not given up', async () => {
      publish('a');
      await flush();
      publish('b');
      await flush();
      jest.advanceTimersByTime(900);
      sender.sent[0].resolve(2); // 'a' answered after 900 ms; 'b' now waits behind nothing
      await flush();
      jest.advanceTimersByTime(900); // 'b' sent 1,800 ms ago, but Redis answered 900 ms ago
      expect(host.dead).toEqual([]);
      jest.advanceTimersByTime(200);
      expect(host.reasons()).toEqual(['outcome_unknown']);
    });

    it('refuses new publishes as not_answering until Redis answers anything, a late reply included', async () => {
      publish('a');
      await flush();
      jest.advanceTimersByTime(1_100);
      publish('b');
      expect(host.reasons()).toEqual(['outcome_unknown', 'not_answering']);
      expect(sender.sent).toHaveLength(1);
      // The late reply changes nothing for 'a' (its outcome is given) but Redis answers again.
      sender.sent[0].resolve(2);
      await flush();
      expect(pipeline.lateReplies).toBe(1);
      expect(host.published).toBe(0);
      expect(pipeline.notAnswering).toBe(false);
      publish('c');
      await flush();
      expect(sender.sent).toHaveLength(2);
    });

    it('does not count unanswered commands against pub_breaker', async () => {
      for (let i = 0; i < 20; i++) {
        publish(`m${i}`);
        await flush();
        jest.advanceTimersByTime(1_100);
        pipeline.onConnected();
      }
      expect(breaker.state).toBe('CLOSED');
    });
  });

  describe('failures', () => {
    it('retries a refused command after 100 ms and 200 ms, then dead-letters it as publish_failed', async () => {
      publish('a', 'b');
      await flush();
      sender.sent[0].resolve([1, 'NOPERM no', 2, 'NOPERM no']);
      await flush();
      jest.advanceTimersByTime(99);
      await flush();
      expect(sender.sent).toHaveLength(1);
      jest.advanceTimersByTime(1);
      await flush();
      expect(sender.sent).toHaveLength(2);
      sender.sent[1].resolve([1, 'NOPERM no', 2, 'NOPERM no']);
      await flush();
      jest.advanceTimersByTime(200);
      await flush();
      sender.sent[2].resolve([1, 'NOPERM no', 2, 'NOPERM no']);
      await flush();
      expect(host.reasons()).toEqual(['publish_failed', 'publish_failed']);
      expect(host.dead[0].error).toBe('NOPERM no');
    });

    it('counts one pub_breaker failure per refused command, however many messages it holds', async () => {
      create({ publishAttempts: 1 });
      for (let i = 0; i < 9; i++) {
        publish(...Array.from({ length: 50 }, (_, k) => `m${i}-${k}`));
        await flush();
        sender.sent[i].resolve(Array.from({ length: 50 }, (_, k) => [k + 1, 'NOPERM no']).flat());
        await flush();
      }
      expect(host.dead).toHaveLength(450);
      expect(breaker.state).toBe('CLOSED');
      publish('last');
      await flush();
      sender.sent[9].reject(replyError('NOPERM no'));
      await flush();
      expect(breaker.state).toBe('OPEN');
      publish('after');
      expect(host.dead[host.dead.length - 1]).toEqual({
        payload: 'after',
        reason: 'breaker_open',
        error: 'circuit breaker pub_breaker is open',
      });
    });

    it('counts no pub_breaker failure for a command Redis ran with only some messages refused (a cluster shard down)', async () => {
      create({ publishAttempts: 1 });
      for (let i = 0; i < 12; i++) {
        publish(`ok${i}`, `refused${i}`);
        await flush();
        sender.sent[i].resolve([2, 'CLUSTERDOWN the shard is down']);
        await flush();
      }
      expect(host.reasons()).toEqual(Array.from({ length: 12 }, () => 'publish_failed'));
      expect(host.published).toBe(12);
      expect(breaker.state).toBe('CLOSED');
    });

    it('never resends a command lost with its connection: outcome_unknown at once', async () => {
      publish('a', 'b');
      await flush();
      sender.sent[0].reject(new Error('Reached the max retries per request limit (which is 0).'));
      await flush();
      jest.advanceTimersByTime(1_000);
      await flush();
      expect(sender.sent).toHaveLength(1);
      expect(host.reasons()).toEqual(['outcome_unknown', 'outcome_unknown']);
      expect(breaker.state).toBe('CLOSED');
    });

    it('treats a script error other than a refusal as outcome unknown (it may have published part of the batch)', async () => {
      publish('a', 'b');
      await flush();
      sender.sent[0].reject(replyError('ERR Error running script: killed by user'));
      await flush();
      expect(host.reasons()).toEqual(['outcome_unknown', 'outcome_unknown']);
    });
  });

  it('refuses what the gate refuses, and what comes while not connected', () => {
    host.refusal = { reason: 'not_delivering', error: 'not proven' };
    publish('a');
    host.refusal = undefined;
    sender.writable = false;
    publish('b');
    expect(host.reasons()).toEqual(['not_delivering', 'not_connected']);
    expect(pipeline.inFlight).toBe(0);
  });

  it('lets a half-open breaker through per command: three successful commands close it', async () => {
    create({ publishAttempts: 1 });
    for (let i = 0; i < 10; i++) {
      publish(`f${i}`);
      await flush();
      sender.sent[i].reject(replyError('NOPERM no'));
      await flush();
    }
    expect(breaker.state).toBe('OPEN');
    jest.advanceTimersByTime(60_000);
    expect(breaker.state).toBe('HALF_OPEN');
    for (let i = 0; i < 3; i++) {
      publish(`ok${i}a`, `ok${i}b`);
      await flush();
    }
    publish('fourth command');
    await flush();
    expect(host.dead[host.dead.length - 1].reason).toBe('breaker_open');
    for (let i = 10; i < 13; i++) sender.sent[i].resolve([]);
    await flush();
    expect(breaker.state).toBe('CLOSED');
    expect(host.published).toBe(6);
  });

  it('at stop, dead-letters retries as shutdown and unanswered commands as outcome_unknown, leaving no timer', async () => {
    publish('sent');
    await flush();
    publish('refused');
    await flush();
    sender.sent[1].reject(replyError('NOPERM no')); // a retry now waits 100 ms
    await flush();
    const stopped = pipeline.stop(100);
    await jest.advanceTimersByTimeAsync(200);
    await stopped;
    expect(host.dead.map((d) => [d.payload, d.reason])).toEqual([
      ['refused', 'shutdown'],
      ['sent', 'outcome_unknown'],
    ]);
    expect(jest.getTimerCount()).toBe(0);
    create();
  });
});
