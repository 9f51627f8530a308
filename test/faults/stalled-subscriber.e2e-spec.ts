import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RedisServer } from '../support/redis-server.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { FaultRig, FAULT_REDIS, report, seqOf, sleep, type DlqEntryView } from './fault-rig.js';

/**
 * The other kind of failure the delivery probe exists for: Redis is fine, but one instance's
 * subscriber connection silently stopped receiving (a half-open TCP connection: B's socket is
 * open, Redis keeps writing to it, nothing arrives). B reaches Redis through a TCP proxy that
 * holds back everything Redis sends on B's subscriber connection.
 *
 * While the connection is stalled Redis still counts B's subscriber as a receiver, so A cannot
 * know: what A publishes then reaches A only and is reported delivered. B's probe must notice
 * within a probe interval plus its timeout, replace the subscriber connection at once, and tell
 * B's subscribed connections with a resync whose down_ms covers every message they missed.
 * While B's new connection subscribes, Redis counts one receiver: those messages are in A's DLQ
 * as `partial`. Contrast the freeze suite: there the subscriber must be kept, because a frozen
 * Redis still holds what it was waiting for.
 */

const RATE = 500;
const PROBE_MS = FAULT_REDIS.probeIntervalMs!;
const PROBE_TIMEOUT_MS = FAULT_REDIS.probeTimeoutMs!;
const MARGIN_MS = 1_000;

describe("B's subscriber connection silently stops receiving (half-open), Redis healthy", () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let rig: FaultRig;
  let stalledAt = 0;
  let reconnectsBefore = 0;
  let recoveredAt = 0;
  let dlq: { peeked: DlqEntryView[]; drained: DlqEntryView[]; afterDrain: DlqEntryView[] };

  beforeAll(async () => {
    redis = await RedisServer.launch();
    proxy = await TcpProxy.start(redis.port);
    rig = await FaultRig.start(redis.url, { ratePerSecond: RATE, urls: { a: redis.url, b: proxy.url } });
    rig.publisher.start();
    await rig.publisher.waitForAnswers(RATE, 10_000);
    await rig.deliveringFrom(rig.publisher.next - 1, 5_000);
    reconnectsBefore = rig.b.snapshot().redis_reconnect_count;

    const stalled = proxy.stall((c) => /psubscribe/i.test(c.sentText()));
    if (stalled !== 1) throw new Error(`expected to stall B's one subscriber connection, stalled ${stalled}`);
    stalledAt = Date.now();

    // B's connections hear it (resync) once B has replaced the subscriber and proven delivery
    // again; the 503 in between may be too short for the 100 ms health samples to catch.
    const deadline = Date.now() + PROBE_MS + PROBE_TIMEOUT_MS + 5 * MARGIN_MS;
    while (!rig.receivers.filter((r) => r.instance === 'B').every((r) => r.resyncs.length > 0)) {
      if (Date.now() > deadline) throw new Error("B's connections got no resync after the stall");
      await sleep(10);
    }
    recoveredAt = Math.max(...rig.receivers.filter((r) => r.instance === 'B').map((r) => r.resyncs[0].at));
    await rig.deliveringFrom(rig.publisher.next, 10_000);
    await rig.publisher.waitForAnswers(RATE, 10_000);
    await rig.publisher.stop();
    await rig.settle();
    dlq = await rig.readDlq();
  }, 90_000);

  afterAll(async () => {
    if (rig !== undefined)
      report('stalled-subscriber', {
        recoveredAfterStall: recoveredAt - stalledAt,
        missedOnB: rig.receivers
          .filter((r) => r.instance === 'B')
          .map((r) => rig.publisher.next - new Set(r.seqs).size),
        resyncDownMs: rig.receivers.map((r) => r.resyncs.map((x) => x.downMs)),
        timelineB: rig.health.B.describe(stalledAt),
      });
    await rig?.close();
    await proxy?.close();
    await redis?.stop();
  });

  it('notices within a probe interval plus the probe timeout and replaces only the subscriber connection of B', () => {
    expect(recoveredAt - stalledAt).toBeLessThanOrEqual(PROBE_MS + PROBE_TIMEOUT_MS + MARGIN_MS);
    expect(rig.b.snapshot().redis_reconnect_count).toBeGreaterThan(reconnectsBefore);
    // A was never affected.
    expect(rig.health.A.samples.filter((s) => s.status !== 200)).toEqual([]);
  });

  it('delivers everything on A, nothing twice anywhere, and dead-letters as partial only what reached A alone', () => {
    const result = rig.account(dlq.drained);
    expect({
      duplicates: result.duplicates,
      dlqDuplicates: result.dlqDuplicates,
      unevenInstance: result.unevenInstance,
    }).toEqual({
      duplicates: [],
      dlqDuplicates: [],
      unevenInstance: [],
    });
    for (const reason of Object.keys(result.dlqByReason)) expect(reason).toBe('partial');
    const onA = new Set(rig.receivers.find((r) => r.instance === 'A')!.seqs);
    const onB = new Set(rig.receivers.find((r) => r.instance === 'B')!.seqs);
    const partial = dlq.drained.map((entry) => seqOf(entry)!);
    expect(partial.filter((seq) => !onA.has(seq) || onB.has(seq))).toEqual([]);
  });

  it("covers every message B missed by A's DLQ (partial) or by B's resync", () => {
    const partial = new Set(dlq.drained.map((entry) => seqOf(entry)!));
    const answers = new Map(rig.publisher.answers.map((a) => [a.seq, a]));
    for (const receiver of rig.receivers) {
      const got = new Set(receiver.seqs);
      const missed = [...answers.keys()].filter((seq) => !got.has(seq) && !partial.has(seq));
      if (receiver.instance === 'A') {
        expect({ name: receiver.name, missed }).toEqual({ name: receiver.name, missed: [] });
        expect(receiver.resyncs).toEqual([]);
        continue;
      }
      expect(missed.length).toBeGreaterThan(0);
      expect(receiver.resyncs).toHaveLength(1);
      const [resync] = receiver.resyncs;
      const gapStart = resync.at - resync.downMs;
      // Every message B missed was published inside the gap its resync announced.
      const outside = missed.filter((seq) => {
        const answer = answers.get(seq)!;
        return answer.answeredAt < gapStart - 100 || answer.requestedAt > resync.at;
      });
      expect({ name: receiver.name, outside }).toEqual({ name: receiver.name, outside: [] });
    }
  });
});
