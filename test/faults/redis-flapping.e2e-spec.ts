import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RedisServer } from '../support/redis-server.js';
import { FaultRig, FAULT_REDIS, report, sleep, UNKNOWN_REASON, type DlqEntryView, anomaliesOf } from './fault-rig.js';

/**
 * A flapping Redis: killed and restarted four times in a row, down 1 s and up 3 s each time, so
 * the instances are often half way through reconnecting, re-subscribing or proving delivery
 * when the next kill comes. Whatever the phase, every message must end delivered everywhere or
 * in the DLQ, and nothing may be delivered twice.
 */

const RATE = 500;
const CYCLES = 4;
const DOWN_MS = 1_000;
const UP_MS = 3_000;
const PROBE_MS = FAULT_REDIS.probeIntervalMs!;

describe(`a flapping Redis (${CYCLES} times: killed, down ${DOWN_MS} ms, up ${UP_MS} ms) under ${RATE} publishes a second`, () => {
  let redis: RedisServer;
  let rig: FaultRig;
  let firstKillAt = 0;
  let lastRestartAt = 0;
  let deliveringAt = 0;
  let dlq: { peeked: DlqEntryView[]; drained: DlqEntryView[]; afterDrain: DlqEntryView[] };

  beforeAll(async () => {
    redis = await RedisServer.launch();
    rig = await FaultRig.start(redis.url, { ratePerSecond: RATE });
    rig.publisher.start();
    await rig.publisher.waitForAnswers(RATE, 10_000);
    await rig.deliveringFrom(rig.publisher.next - 1, 5_000);

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      await redis.stop();
      const killedAt = Date.now();
      if (cycle === 0) firstKillAt = killedAt;
      await sleep(DOWN_MS - (Date.now() - killedAt));
      await redis.start();
      lastRestartAt = Date.now();
      if (cycle < CYCLES - 1) await sleep(UP_MS - (Date.now() - lastRestartAt));
    }
    await Promise.all([
      rig.health.A.waitFor(200, lastRestartAt, 30_000),
      rig.health.B.waitFor(200, lastRestartAt, 30_000),
    ]);
    deliveringAt = await rig.deliveringFrom(rig.publisher.next, 30_000);
    await rig.publisher.waitForAnswers(RATE, 10_000);
    await rig.publisher.stop();
    await rig.settle();
    dlq = await rig.readDlq();
  }, 120_000);

  afterAll(async () => {
    if (rig !== undefined)
      report('flapping', {
        sent: rig.publisher.next,
        dlqByReason: dlq ? rig.account(dlq.drained).dlqByReason : undefined,
        deliveringAfterLastRestart: deliveringAt - lastRestartAt,
        timelineA: rig.health.A.describe(firstKillAt),
        timelineB: rig.health.B.describe(firstKillAt),
        resyncs: rig.receivers.map((r) => r.resyncs.length),
      });
    await rig?.close();
    await redis?.stop();
  });

  it('accounts for every message: delivered once to every receiver on A and B, or in the DLQ; none lost or doubled', () => {
    const result = rig.account(dlq.drained);
    expect(anomaliesOf(result)).toEqual({});
    expect(result.deliveredToAll + dlq.drained.length).toBe(result.sent);
    for (const reason of Object.keys(result.dlqByReason))
      expect(['not_connected', 'not_delivering', UNKNOWN_REASON]).toContain(reason);
    expect(result.deliveredToAll).toBeGreaterThan(RATE);
  });

  it('counts on the publishing instance what happened: published + dead-lettered = accepted', () => {
    const a = rig.a.snapshot();
    expect(a.redis_messages_published + a.redis_publish_errors).toBe(rig.publisher.answers.length);
    expect(a.redis_publish_errors).toBe(dlq.drained.length);
    expect(rig.b.snapshot().redis_publish_errors).toBe(0);
  });

  it('ends delivering on both instances within a backoff delay and a probe of the last restart, conn_breaker closed', () => {
    expect(deliveringAt - lastRestartAt).toBeLessThanOrEqual(3_600 + PROBE_MS + 1_000);
    expect(rig.a.snapshot().conn_breaker).toBe('CLOSED');
    expect(rig.b.snapshot().conn_breaker).toBe('CLOSED');
  });

  it('tells every subscribed connection about each gap with a resync, down_ms never above the time since the first kill', () => {
    for (const receiver of rig.receivers) {
      expect(receiver.resyncs.length).toBeGreaterThanOrEqual(1);
      for (const resync of receiver.resyncs) {
        expect(resync.downMs).toBeGreaterThanOrEqual(DOWN_MS - 200);
        expect(resync.downMs).toBeLessThanOrEqual(resync.at - firstKillAt + PROBE_MS + 200);
      }
    }
  });
});
