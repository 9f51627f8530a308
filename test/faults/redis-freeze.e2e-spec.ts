import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RedisServer } from '../support/redis-server.js';
import {
  FaultRig,
  FAULT_REDIS,
  report,
  sleep,
  UNKNOWN_REASON,
  type DlqEntryView,
  anomaliesOf,
  ANOMALIES,
  ROUTINGS,
} from './fault-rig.js';

/**
 * Redis frozen for 8 s: the process is stopped (SIGSTOP) with every socket open, then continued
 * (SIGCONT). Nothing is answered meanwhile; what the instances wrote waits in the kernel and is
 * executed when Redis continues. Issue 10: about half the publishes of the freeze were lost
 * silently, commands piled up without bound, /health stayed 200 until the end, resync.down_ms
 * said 1.3 s for a 9 s gap.
 */

const RATE = 500;
const FREEZE_MS = 8_000;
const PROBE_MS = FAULT_REDIS.probeIntervalMs!;
/** Slack for a loaded 2-core machine: event-loop delays, HTTP round trips, the 100 ms sampling. */
const MARGIN_MS = 1_000;

describe.each(ROUTINGS)(
  `Redis frozen for ${FREEZE_MS / 1000} s (SIGSTOP, then SIGCONT) under ${RATE} publishes a second on A (%s routing)`,
  (routing) => {
    let redis: RedisServer;
    let rig: FaultRig;
    let frozenAt = 0;
    let resumedAt = 0;
    let dlq: { peeked: DlqEntryView[]; drained: DlqEntryView[]; afterDrain: DlqEntryView[] };
    const reconnectsBefore = { A: 0, B: 0 };

    beforeAll(async () => {
      redis = await RedisServer.launch();
      rig = await FaultRig.start(redis.url, { ratePerSecond: RATE, redis: { routing } });

      rig.publisher.start();
      await rig.publisher.waitForAnswers(RATE, 10_000); // a second of normal traffic first
      await rig.deliveringFrom(rig.publisher.next - 1, 5_000);
      reconnectsBefore.A = rig.a.snapshot().redis_reconnect_count;
      reconnectsBefore.B = rig.b.snapshot().redis_reconnect_count;

      await redis.pause();
      frozenAt = Date.now();
      await sleep(FREEZE_MS - (Date.now() - frozenAt)); // the fault itself lasts 8 s
      resumedAt = Date.now();
      await redis.resume();

      await Promise.all([rig.health.A.waitFor(200, resumedAt, 10_000), rig.health.B.waitFor(200, resumedAt, 10_000)]);
      await rig.deliveringFrom(rig.publisher.next, 10_000);
      await rig.publisher.waitForAnswers(RATE, 10_000); // a second of traffic after recovery
      await rig.publisher.stop();
      await rig.settle();
      dlq = await rig.readDlq();
    }, 90_000);

    afterAll(async () => {
      report('freeze', figures());
      await rig?.close();
      await redis?.stop();
    });

    function figures(): Record<string, unknown> {
      if (rig === undefined) return {};
      const snapshot = rig.a.snapshot() as unknown as Record<string, unknown>;
      return {
        sent: rig.publisher.next,
        skippedByPublisher: rig.publisher.skipped,
        dlqByReason: dlq ? rig.account(dlq.drained).dlqByReason : undefined,
        inFlightPeak: snapshot.redis_publish_in_flight_peak,
        firstDown: { A: since(rig.health.A.firstAt(503, frozenAt)), B: since(rig.health.B.firstAt(503, frozenAt)) },
        upAfterResume: {
          A: (rig.health.A.firstAt(200, resumedAt) ?? NaN) - resumedAt,
          B: (rig.health.B.firstAt(200, resumedAt) ?? NaN) - resumedAt,
        },
        timelineA: rig.health.A.describe(frozenAt),
        healthErrors: rig.health.A.errors.slice(0, 3),
        timelineB: rig.health.B.describe(frozenAt),
        resyncDownMs: rig.receivers.map((r) => r.resyncs.map((x) => x.downMs)),
      };
    }

    function since(at: number | undefined): number {
      return at === undefined ? NaN : at - frozenAt;
    }

    it('accounts for every message: delivered once to every receiver on A and B, or in the DLQ; none lost or doubled', () => {
      const result = rig.account(dlq.drained, { unknownAllOrNone: true });

      expect(anomaliesOf(result, [...ANOMALIES, 'unknownPartial'])).toEqual({});
      expect(result.deliveredToAll + dlq.drained.length).toBe(result.sent);
      // A freeze of 8 s at 500/s: most of the freeze's messages are refused at once as
      // not_answering; only what was on its way when Redis stopped has an unknown outcome. Right
      // after SIGCONT Redis answers again before the probe has come back through the subscriber:
      // a publish in that moment is refused as not_delivering (sent nowhere, as the others).
      const reasons = Object.keys(result.dlqByReason).sort();
      expect(reasons).toEqual(expect.arrayContaining(['not_answering', UNKNOWN_REASON]));
      expect(reasons.filter((reason) => !['not_answering', 'not_delivering', UNKNOWN_REASON].includes(reason))).toEqual(
        [],
      );
    });

    it('counts on the publishing instance what happened: published + dead-lettered = accepted, and B published nothing', () => {
      const a = rig.a.snapshot();
      const b = rig.b.snapshot();
      expect(a.redis_messages_published + a.redis_publish_errors).toBe(rig.publisher.answers.length);
      expect(a.redis_publish_errors).toBe(dlq.drained.length);
      expect({ errors: b.redis_publish_errors, dlq: b.redis_dlq_size }).toEqual({ errors: 0, dlq: 0 });
    });

    it('bounds what is in flight: at most about a second of publishes, and nothing once Redis is known not to answer', () => {
      const peak = (rig.a.snapshot() as unknown as Record<string, unknown>).redis_publish_in_flight_peak;
      expect(typeof peak).toBe('number');
      expect(peak as number).toBeLessThanOrEqual(2 * RATE);
      const frozenSamples = rig.health.A.between(frozenAt + 2_500, resumedAt);
      expect(frozenSamples.length).toBeGreaterThan(20);
      expect(frozenSamples.filter((s) => s.inFlight !== 0)).toEqual([]);
    });

    it('moves each publish of the freeze to the DLQ within about a second of its acceptance', () => {
      const bySeq = new Map(rig.publisher.answers.map((a) => [a.seq, a]));
      const lateness: number[] = [];
      for (const entry of dlq.drained) {
        const seq = Number(/\d+/.exec(entry.payload ?? '')?.[0]);
        const answer = bySeq.get(seq);
        expect(entry.failed_at).toEqual(expect.any(String));
        if (answer === undefined || answer.requestedAt > resumedAt - 2_000) continue;
        lateness.push(Date.parse(entry.failed_at!) - answer.requestedAt);
      }
      expect(lateness.length).toBeGreaterThan(0);
      expect(Math.max(...lateness)).toBeLessThanOrEqual(1_000 + 500);
    });

    it('reads the DLQ without draining with ?peek=true; the plain read drains it', () => {
      expect(dlq.peeked).toEqual(dlq.drained);
      expect(dlq.afterDrain).toEqual([]);
    });

    it('answers 503 on both instances within 3 s of the freeze and until it ends, 200 again soon after', () => {
      for (const timeline of [rig.health.A, rig.health.B]) {
        const down = timeline.firstAt(503, frozenAt);
        expect({ instance: timeline.instance, down: since(down) }).toEqual({
          instance: timeline.instance,
          down: expect.any(Number),
        });
        expect(down! - frozenAt).toBeLessThanOrEqual(3_000);
        // No 200 between the first 503 and the end of the freeze.
        expect(timeline.between(down!, resumedAt).filter((s) => s.status !== 503)).toEqual([]);
        const up = timeline.firstAt(200, resumedAt);
        expect(up! - resumedAt).toBeLessThanOrEqual(PROBE_MS + MARGIN_MS);
      }
    });

    it('keeps the subscriber connections through the freeze: a frozen Redis is not a dead subscriber', () => {
      expect(rig.a.snapshot().redis_reconnect_count).toBe(reconnectsBefore.A);
      expect(rig.b.snapshot().redis_reconnect_count).toBe(reconnectsBefore.B);
    });

    it('sends each subscribed connection one resync whose down_ms covers the whole gap', () => {
      for (const receiver of rig.receivers) {
        expect({ name: receiver.name, resyncs: receiver.resyncs.length }).toEqual({ name: receiver.name, resyncs: 1 });
        const [resync] = receiver.resyncs;
        expect(resync.downMs).toBeGreaterThanOrEqual(FREEZE_MS - 200);
        // At most one probe interval before the freeze (the last delivery proven) plus the recovery.
        expect(resync.downMs).toBeLessThanOrEqual(resync.at - frozenAt + PROBE_MS + 200);
      }
    });

    it('leaves only what was on its way when Redis stopped with an unknown outcome: about a second of traffic', () => {
      // Written before the freeze was noticed and executed once Redis continued (to every receiver,
      // as the accounting checks): they are in the DLQ as outcome_unknown, never to be replayed blindly.
      const unknown = dlq.drained.filter((e) => e.reason === UNKNOWN_REASON);
      expect(unknown.length).toBeGreaterThan(0);
      expect(unknown.length).toBeLessThanOrEqual(2 * RATE);
    });
  },
);
