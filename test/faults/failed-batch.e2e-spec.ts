import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RedisServer } from '../support/redis-server.js';
import { FaultRig, report, sleep, type DlqEntryView, anomaliesOf } from './fault-rig.js';

/**
 * One failed batch: 50 publishes of one tick travel as one command (the batch script), and Redis
 * refuses every PUBLISH in it (`ACL SETUSER default -publish`, for real, on the open
 * connections). Issue 10: a failed batch counted one pub_breaker failure per message, so one
 * failed batch of 10 opened pub_breaker and sent the next 60 s of publishes to the DLQ while
 * Redis was healthy, and /health ignored the open breaker.
 *
 * The seed counts pub_breaker failures per PUBLISH command: a batch is one command, so three
 * attempts of one batch are three failures (threshold 10). The probe is slowed to once every
 * 30 s so that no probe falls into the 300 ms during which PUBLISH is refused: this case is
 * about the publish path alone.
 */

const BATCH = 50;

describe(`a batch of ${BATCH} publishes that Redis refuses (ACL -publish) on every attempt`, () => {
  let redis: RedisServer;
  let rig: FaultRig;
  let failed: number[] = [];
  let after: number[] = [];
  let refusedAt = 0;
  let dlq: { peeked: DlqEntryView[]; drained: DlqEntryView[]; afterDrain: DlqEntryView[] };

  beforeAll(async () => {
    redis = await RedisServer.launch();
    rig = await FaultRig.start(redis.url, { redis: { probeIntervalMs: 30_000 } });

    await redis.command('ACL', 'SETUSER', 'default', '-publish');
    refusedAt = Date.now();
    failed = rig.publisher.burst(BATCH);
    const deadline = Date.now() + 5_000;
    while (rig.a.snapshot().redis_dlq_size < BATCH) {
      if (Date.now() > deadline)
        throw new Error(`only ${rig.a.snapshot().redis_dlq_size} of ${BATCH} in the DLQ after 5 s`);
      await sleep(10);
    }
    await redis.command('ACL', 'SETUSER', 'default', '+publish');
    // Redis is healthy again: the very next batch must go through, breaker or not.
    after = rig.publisher.burst(BATCH);
    await rig.deliveringFrom(after[BATCH - 1], 5_000);
    await rig.settle();
    dlq = await rig.readDlq();
  }, 60_000);

  afterAll(async () => {
    if (rig !== undefined)
      report('failed-batch', {
        dlqByReason: dlq ? rig.account(dlq.drained).dlqByReason : undefined,
        pubBreaker: [...new Set(rig.health.A.samples.map((s) => s.pubBreaker))],
        timelineA: rig.health.A.describe(refusedAt),
      });
    await rig?.close();
    await redis?.stop();
  });

  it('puts the 50 refused messages in the DLQ with the NOPERM error after their 3 attempts, and delivers none', () => {
    expect(dlq.drained.map((entry) => Number(/\d+/.exec(entry.payload ?? '')?.[0]))).toEqual(failed);
    for (const entry of dlq.drained) {
      expect(entry.reason).toBe('publish_failed');
      // Redis words a refusal inside a script its own way.
      expect(entry.error).toMatch(/NOPERM|can't run this command/);
    }
    const result = rig.account(dlq.drained);
    expect(anomaliesOf(result, ['lostSilently', 'duplicates', 'deliveredButUnsent'])).toEqual({});
  });

  it('delivers the next batch at once to every receiver on A and B: pub_breaker counted 3 failures, not 150', () => {
    for (const receiver of rig.receivers) expect(after.filter((seq) => !receiver.seqs.includes(seq))).toEqual([]);
    expect(rig.a.snapshot().pub_breaker).toBe('CLOSED');
    expect(new Set(rig.health.A.samples.map((s) => s.pubBreaker))).toEqual(new Set(['CLOSED']));
  });

  it('counts on the publishing instance: 50 published, 50 dead-lettered (plus the warm-up message)', () => {
    const a = rig.a.snapshot();
    expect(a.redis_publish_errors).toBe(BATCH);
    expect(a.redis_messages_published).toBe(BATCH + 1);
  });

  it('keeps /health 200 on both instances throughout: the connections and the subscribers were fine', () => {
    expect(rig.health.A.samples.filter((s) => s.status !== 200)).toEqual([]);
    expect(rig.health.B.samples.filter((s) => s.status !== 200)).toEqual([]);
  });
});

describe('pub_breaker opened by 10 failed commands (one attempt each, ACL -publish)', () => {
  let redis: RedisServer;
  let rig: FaultRig;

  beforeAll(async () => {
    redis = await RedisServer.launch();
    rig = await FaultRig.start(redis.url, {
      redis: { probeIntervalMs: 30_000, publishAttempts: 1, breaker: { resetTimeoutMs: 1_500 } },
    });
  }, 30_000);
  afterAll(async () => {
    await rig?.close();
    await redis?.stop();
  });

  it('answers /health 503 with the breaker states in the body while it is open, 200 once it has closed', async () => {
    await redis.command('ACL', 'SETUSER', 'default', '-publish');
    for (let i = 0; i < 10; i++) {
      rig.publisher.burst(1);
      const target = i + 1;
      const deadline = Date.now() + 2_000;
      while (rig.a.snapshot().redis_publish_errors < target) {
        if (Date.now() > deadline) throw new Error(`publish ${target} not dead-lettered within 2 s`);
        await sleep(5);
      }
    }
    await redis.command('ACL', 'SETUSER', 'default', '+publish');
    expect(rig.a.snapshot().pub_breaker).toBe('OPEN');

    const answer = await rig.a.getHealth();
    expect(answer.status).toBe(503);
    expect((answer.body.details as Record<string, Record<string, unknown>>).wse).toMatchObject({
      status: 'down',
      pub_breaker: 'OPEN',
      conn_breaker: 'CLOSED',
    });
    // While open, a publish goes to the DLQ at once, naming the breaker.
    const [seq] = rig.publisher.burst(1);
    const entries = (await rig.a.api('GET', '/api/dlq?peek=true')).body.entries as DlqEntryView[];
    expect(entries.find((e) => e.payload === `{"seq":${seq}}`)).toMatchObject({ reason: 'breaker_open' });

    // Half-open after 1.5 s; three successful commands close it (one publish each, three ticks).
    const openedAt = Date.now();
    while (rig.a.snapshot().pub_breaker === 'OPEN') {
      if (Date.now() - openedAt > 5_000) throw new Error('pub_breaker still open after 5 s');
      await sleep(20);
    }
    const [first] = rig.publisher.burst(1);
    for (let i = 0; i < 2; i++) {
      await sleep(0);
      rig.publisher.burst(1);
    }
    await rig.deliveringFrom(first + 2, 5_000);
    expect(rig.a.snapshot().pub_breaker).toBe('CLOSED');
    await rig.waitForHealth('A', 200, 2_000);
  }, 30_000);
});
