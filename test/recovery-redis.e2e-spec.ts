import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { WseModuleOptions } from '../src/index.js';
import { startRedisApp, uniquePrefix, untilWhole, type RedisApp } from './support/redis-app.js';
import { RedisServer } from './support/redis-server.js';
import { eventually, TestClient, type Envelope } from './support/ws-client.js';

/**
 * History and recovery through Redis (CONTRACT section 11, multi-instance): two engine apps on
 * one real redis-server and one prefix. Offsets come from Redis, so a client recovers on any
 * instance what was first published and delivered on another; recovery during publishes ends
 * exactly contiguous; trimming and expiry answer recovered:false; a Redis restart (persistence
 * off) starts a new epoch, and the resync frame lists the positions to recover from.
 */

interface Stamped {
  tp: string;
  e: string;
  o: number;
  n?: number;
}

interface RecoveryEntry {
  epoch?: string;
  offset?: number;
  recovered: boolean;
  count: number;
  reason?: string;
}

const TOPIC = 'chat:lobby';

// Both routings (CONTRACT section 9): in interest routing the instance recovering a topic may not
// follow it yet, so the subscription must be live in Redis before the history is read.
describe.each(['pattern', 'interest'] as const)(
  'history and recovery through Redis, two instances (%s routing)',
  (routing) => {
    let redis: RedisServer;
    const apps: RedisApp[] = [];
    const clients: TestClient[] = [];

    /** Two apps on one fresh prefix, both delivering and knowing each other. */
    async function pair(recovery: WseModuleOptions['recovery'] = {}): Promise<[RedisApp, RedisApp]> {
      const prefix = uniquePrefix('rec');
      const options = { recovery: { topics: ['chat:*'], ...recovery } };
      const both = await Promise.all([
        startRedisApp({ url: redis.url, prefix, routing }, options),
        startRedisApp({ url: redis.url, prefix, routing }, options),
      ]);
      apps.push(...both);
      await untilWhole(both);
      return both;
    }

    async function connect(app: RedisApp): Promise<TestClient> {
      const { client } = await TestClient.ready(app.wsUrl);
      clients.push(client);
      return client;
    }

    async function subscribe(
      client: TestClient,
      topics: string[],
      extra: Record<string, unknown> = {},
    ): Promise<Envelope> {
      client.send({ t: 'subscription', p: { action: 'subscribe', topics, ...extra } });
      return client.nextOfType('subscription_update');
    }

    function entryOf(answer: Envelope, topic = TOPIC): RecoveryEntry {
      return (answer.p.recovery as Record<string, RecoveryEntry>)[topic];
    }

    async function stamped(client: TestClient, count: number, timeoutMs = 3_000): Promise<Stamped[]> {
      return (await client.take(count, timeoutMs)).map((frame) => frame.json as Stamped);
    }

    /** A client on `app` subscribed to TOPIC that received `count` messages published on `from`. */
    async function seen(app: RedisApp, from: RedisApp, count: number): Promise<{ client: TestClient; last: Stamped }> {
      const client = await connect(app);
      await subscribe(client, [TOPIC]);
      for (let n = 1; n <= count; n++) from.publisher.publish(TOPIC, { n });
      const messages = await stamped(client, count);
      return { client, last: messages[count - 1] };
    }

    beforeAll(async () => {
      redis = await RedisServer.launch();
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((client) => client.close()));
      await Promise.all(apps.splice(0).map((app) => app.close()));
    });
    afterAll(async () => {
      await redis.stop();
    });

    it('advertises recovery and stamps every instance’s copy of a message the same', async () => {
      const [a, b] = await pair();
      const onA = await connect(a);
      const onB = await connect(b);
      const answers = await Promise.all([subscribe(onA, [TOPIC]), subscribe(onB, ['chat:*'])]);
      expect(entryOf(answers[0])).toEqual({ epoch: expect.any(String), offset: 0, recovered: false, count: 0 });
      b.publisher.publish(TOPIC, { n: 1, text: 'ü' });
      const [textA, textB] = await Promise.all([onA.next(), onB.next()]);
      expect(textA.text).toBe(textB.text);
      expect(textA.json).toEqual({ tp: TOPIC, e: entryOf(answers[0]).epoch, o: 1, n: 1, text: 'ü' });
    });

    it('recovers on B the messages first seen on A, then delivers live ones once', async () => {
      const [a, b] = await pair();
      const { client, last } = await seen(a, a, 3);
      await client.close();
      for (let n = 4; n <= 8; n++) a.publisher.publish(TOPIC, { n });
      // Wait until a message published after them is back: the five are in Redis then.
      const witness = await connect(a);
      await subscribe(witness, [TOPIC]);
      a.publisher.publish(TOPIC, { n: 9 });
      await eventually(() => witness.frames.some((f) => (f.json as Stamped).n === 9), 3_000, 'n 9 on the witness');
      expect((witness.frames.find((f) => (f.json as Stamped).n === 9)?.json as Stamped).o).toBe(9);

      const back = await connect(b);
      const answer = await subscribe(back, [TOPIC], {
        recover: true,
        recovery: { [TOPIC]: { epoch: last.e, offset: last.o } },
      });
      expect(answer.p).toMatchObject({ success_topics: [TOPIC], recovered: true });
      expect(entryOf(answer)).toEqual({ epoch: last.e, offset: 9, recovered: true, count: 6 });
      expect((await stamped(back, 6)).map((m) => [m.o, m.n])).toEqual([
        [4, 4],
        [5, 5],
        [6, 6],
        [7, 7],
        [8, 8],
        [9, 9],
      ]);
      a.publisher.publish(TOPIC, { n: 10 });
      expect((await stamped(back, 1))[0]).toMatchObject({ o: 10, n: 10 });
      await back.expectNothing(200);
    });

    it('ends exactly contiguous when a client recovers on B while 50 publishes are in flight on A', async () => {
      const [a, b] = await pair({ size: 500, maxReplay: 500 });
      const { client, last } = await seen(a, a, 5);
      await client.close();
      const control = await connect(b);
      await subscribe(control, [TOPIC]);
      for (let n = 6; n <= 20; n++) a.publisher.publish(TOPIC, { n });
      let n = 20;
      const publishing = new Promise<void>((resolve) => {
        const step = (): void => {
          // A few per turn of the event loop, so batches of several are in flight at once.
          for (let i = 0; i < 5 && n < 70; i++) a.publisher.publish(TOPIC, { n: ++n });
          if (n < 70) setImmediate(step);
          else resolve();
        };
        setImmediate(step);
      });
      const back = await connect(b);
      const answer = await subscribe(back, [TOPIC], {
        recover: true,
        recovery: { [TOPIC]: { epoch: last.e, offset: last.o } },
      });
      await publishing;
      expect(entryOf(answer)).toMatchObject({ recovered: true });
      const received = await stamped(back, 65, 10_000);
      // A connection subscribed all along saw the same 65, once each: the bus itself sent no copy twice.
      expect((await stamped(control, 65, 10_000)).map((m) => m.o)).toEqual(received.map((m) => m.o));
      expect(received.map((m) => m.o)).toEqual(Array.from({ length: 65 }, (_, i) => 6 + i));
      expect(received.map((m) => m.n)).toEqual(Array.from({ length: 65 }, (_, i) => 6 + i));
      await back.expectNothing(200);
      await control.expectNothing(0);
    });

    it('answers recovered:false with the current position when the range was trimmed', async () => {
      const [a, b] = await pair({ size: 4 });
      const { client, last } = await seen(a, a, 10);
      await client.close();
      const back = await connect(b);
      const answer = await subscribe(back, [TOPIC], {
        recover: true,
        recovery: { [TOPIC]: { epoch: last.e, offset: 5 } },
      });
      expect(entryOf(answer)).toEqual({
        epoch: last.e,
        offset: 10,
        recovered: false,
        count: 0,
        reason: 'messages after this offset are no longer held (trimmed or expired)',
      });
      await back.expectNothing(200);
    });

    it('answers recovered:false once the messages expired', async () => {
      const [a, b] = await pair({ ttlMs: 500 });
      const { client, last } = await seen(a, a, 3);
      await client.close();
      const seenAt = Date.now();
      // Expiry is the passing of time itself: wait past it, with a margin.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, seenAt + 700 - Date.now())));
      const back = await connect(b);
      const answer = await subscribe(back, [TOPIC], {
        recover: true,
        recovery: { [TOPIC]: { epoch: last.e, offset: 1 } },
      });
      expect(entryOf(answer)).toMatchObject({ recovered: false, count: 0 });
    });

    it('takes the WSE client form of the request (t: subscription_update)', async () => {
      const [a, b] = await pair();
      const { client, last } = await seen(a, b, 2);
      await client.close();
      b.publisher.publish(TOPIC, { n: 3 });
      const back = await connect(a);
      back.send({
        t: 'subscription_update',
        p: {
          action: 'subscribe',
          topics: [TOPIC],
          recover: true,
          recovery: { [TOPIC]: { epoch: last.e, offset: last.o } },
        },
      });
      const answer = await back.nextOfType('subscription_update');
      // n: 3 may still be on its way into Redis: the answer covers what Redis held when it read.
      const entry = entryOf(answer);
      expect(entry.recovered).toBe(true);
      const received = await stamped(back, 1);
      expect(received[0]).toMatchObject({ o: 3, n: 3 });
    });

    it('starts a new epoch after Redis restarts empty, and lists positions in the resync frame', async () => {
      const [a, b] = await pair();
      const { client, last } = await seen(a, a, 2);
      await redis.stop();
      await redis.start();
      await untilWhole([a, b]);
      const resync = await client.nextOfType('resync', 10_000);
      const positions = resync.p.recovery as Record<string, { epoch: string; offset: number }>;
      expect(resync.p.topics).toEqual([TOPIC]);
      expect(positions[TOPIC].offset).toBe(0);
      expect(positions[TOPIC].epoch).not.toBe(last.e);
      a.publisher.publish(TOPIC, { n: 1 });
      const after = (await stamped(client, 1))[0];
      expect(after).toMatchObject({ o: 1, n: 1, e: positions[TOPIC].epoch });
      const back = await connect(b);
      const answer = await subscribe(back, [TOPIC], {
        recover: true,
        recovery: { [TOPIC]: { epoch: last.e, offset: last.o } },
      });
      expect(entryOf(answer)).toEqual({
        epoch: after.e,
        offset: 1,
        recovered: false,
        count: 0,
        reason: 'epoch changed: the history this position belongs to is gone',
      });
    }, 30_000);

    it('never gives two messages one offset across a frozen Redis (SIGSTOP longer than the publish deadline)', async () => {
      const [a, b] = await pair({ size: 500, maxReplay: 500 });
      const client = await connect(b);
      await subscribe(client, [TOPIC]);
      for (let n = 1; n <= 10; n++) a.publisher.publish(TOPIC, { n });
      await stamped(client, 10);
      await redis.pause();
      try {
        for (let n = 11; n <= 20; n++) a.publisher.publish(TOPIC, { n });
        // Past the publish deadline (1 s): those ten have an unknown outcome and are never resent.
        await eventually(() => a.redis.dlqSize >= 10, 5_000, 'the frozen publishes to be given up');
      } finally {
        await redis.resume();
      }
      await untilWhole([a, b]);
      for (let n = 21; n <= 25; n++) a.publisher.publish(TOPIC, { n });
      await eventually(() => client.frames.some((f) => (f.json as Stamped | undefined)?.n === 25), 10_000, 'n 25');
      const received = client.frames
        .map((f) => f.json as Stamped)
        .filter((m) => m?.tp === TOPIC)
        .map((m) => [m.o, m.n] as const);
      const offsets = received.map(([o]) => o);
      expect(offsets[0]).toBe(11);
      // Whatever Redis ran of the frozen ten ran once each, in order: offsets strictly increase,
      // each message has one offset, and the history holds exactly what was delivered.
      for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBe(offsets[i - 1] + 1);
      expect(new Set(received.map(([, n]) => n)).size).toBe(received.length);
      const epoch = (client.frames.find((f) => (f.json as Stamped | undefined)?.tp === TOPIC)?.json as Stamped).e;
      const back = await connect(a);
      const answer = await subscribe(back, [TOPIC], { recover: true, recovery: { [TOPIC]: { epoch, offset: 10 } } });
      const entry = entryOf(answer);
      expect(entry).toMatchObject({ recovered: true, offset: 10 + offsets.length });
      const replayed = await stamped(back, entry.count);
      expect(replayed.map((m) => [m.o, m.n])).toEqual(received.slice(0).map(([o, n]) => [o, n]));
    }, 30_000);

    it('delivers an outside PUBLISH on a history topic unstamped', async () => {
      const [a] = await pair();
      const client = await connect(a);
      await subscribe(client, [TOPIC]);
      await redis.command('PUBLISH', `${a.prefix}${TOPIC}`, '{"from":"outside"}');
      expect((await client.next()).text).toBe('{"from":"outside"}');
    });
  },
);
