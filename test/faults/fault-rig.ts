import { appendFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import type { WseRedisOptions } from '../../src/index.js';
import { httpCall, startRedisApp, uniquePrefix, type RedisApp } from '../support/redis-app.js';
import { TestClient } from '../support/ws-client.js';

/**
 * The rig every fault suite runs on (issue 10): two instances A and B on one real redis-server,
 * an exact and a pattern subscriber on each, and an HTTP publisher on A sending numbered
 * messages (`{"seq":n}`) at a steady rate. While a fault is applied the rig samples `GET /health`
 * on both instances; afterwards it accounts for every sequence number: delivered on A, on B, or
 * in A's dead letter queue with its reason.
 */

export const FAULT_TOPIC = 'fault:seq';
export const FAULT_PATTERN = 'fault:*';
export const API_KEY = 'faults-api-key';

/**
 * The Redis settings of the suite: the library's defaults for the probe (every 1 s, lost after
 * 1 s) and the backoff (1 s, x1.5, ±20 %, capped at 3 s), so the attempt in progress when Redis
 * returns is at most 3.6 s away (see the README's reliability section); a DLQ large enough that
 * nothing is evicted, so every message can be accounted for.
 */
/** Both routings (CONTRACT section 9): the fault suites that run in each. */
export const ROUTINGS = ['pattern', 'interest'] as const;

export const FAULT_REDIS: Readonly<WseRedisOptions> = Object.freeze({
  probeIntervalMs: 1_000,
  probeTimeoutMs: 1_000,
  reconnect: { initialDelayMs: 1_000, multiplier: 1.5, maxDelayMs: 3_000, jitter: 0.2 },
  dlqCapacity: 100_000,
});

/** DLQ reasons that say the message was never handed to Redis: a replay cannot duplicate it. */
export const UNSENT_REASONS: ReadonlySet<string> = new Set([
  'not_connected',
  'not_delivering',
  'not_answering',
  'breaker_open',
  'backlog_full',
  'publish_failed',
  'shutdown',
]);
/** Handed to Redis, no reply before the deadline or the connection dropped meanwhile. */
export const UNKNOWN_REASON = 'outcome_unknown';
/** Redis counted fewer receivers than there are instances. */
export const PARTIAL_REASON = 'partial';

export type InstanceName = 'A' | 'B';

export interface DlqEntryView {
  readonly channel: string;
  readonly payload?: string;
  readonly payload_base64?: string;
  readonly error: string;
  readonly reason?: string;
  readonly failed_at?: string;
}

/** A subscriber: every sequence number it received (in order) and every resync. */
export class SeqReceiver {
  readonly seqs: number[] = [];
  readonly arrivals: number[] = [];
  readonly resyncs: { at: number; downMs: number; topics: string[] }[] = [];
  /** Frames that were neither a numbered message nor a known system frame. */
  readonly unexpected: string[] = [];

  constructor(
    readonly name: string,
    readonly instance: InstanceName,
    readonly client: TestClient,
  ) {
    client.socket.on('message', (data: Buffer) => {
      const text = data.toString();
      // The TestClient queue is not used here; keep it from growing.
      client.frames.length = 0;
      if (text.startsWith('{"seq":')) {
        this.seqs.push((JSON.parse(text) as { seq: number }).seq);
        this.arrivals.push(Date.now());
        return;
      }
      const envelope = JSON.parse(text) as { t?: string; p?: { down_ms?: number; topics?: string[] } };
      if (envelope.t === 'resync') {
        this.resyncs.push({ at: Date.now(), downMs: envelope.p?.down_ms ?? -1, topics: envelope.p?.topics ?? [] });
      } else if (envelope.t !== 'ping') {
        this.unexpected.push(text);
      }
    });
  }

  /** When this receiver first got a sequence number at or above `seq`; undefined if never. */
  firstArrivalFrom(seq: number): number | undefined {
    const index = this.seqs.findIndex((s) => s >= seq);
    return index < 0 ? undefined : this.arrivals[index];
  }

  /** When this receiver first got any message after time `at`. */
  firstArrivalAfter(at: number): number | undefined {
    return this.arrivals.find((t) => t > at);
  }
}

/** One `GET /health` sample of one instance. */
export interface HealthSample {
  readonly at: number;
  readonly status: number;
  readonly connBreaker?: string;
  readonly pubBreaker?: string;
  readonly inFlight?: number;
  readonly reconnects?: number;
}

/** `GET /health` of one instance every `periodMs`, kept in order. */
export class HealthTimeline {
  readonly samples: HealthSample[] = [];
  /** Why samples failed (status -1), for failure messages. */
  readonly errors: string[] = [];
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    readonly instance: InstanceName,
    private readonly app: RedisApp,
    private readonly periodMs = 100,
  ) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** The time of the first sample at or after `from` with `status`; undefined if none. */
  firstAt(status: number, from: number): number | undefined {
    return this.samples.find((s) => s.at >= from && s.status === status)?.at;
  }

  /** Samples taken in [from, to). */
  between(from: number, to: number): HealthSample[] {
    return this.samples.filter((s) => s.at >= from && s.at < to);
  }

  /** Waits until a sample at or after `from` has `status`, at most `timeoutMs`; resolves with its time. */
  async waitFor(status: number, from: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.firstAt(status, from);
      if (at !== undefined) return at;
      if (Date.now() > deadline)
        throw new Error(`${this.instance}: GET /health did not answer ${status} within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  /** "200 until t1, 503 until t2, ..." relative to `origin`, for failure messages and the report. */
  describe(origin: number): string {
    const parts: string[] = [];
    let last: number | undefined;
    for (const sample of this.samples) {
      if (sample.status === last) continue;
      parts.push(`${sample.status}@${sample.at - origin}ms`);
      last = sample.status;
    }
    return parts.join(' ');
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const started = Date.now();
      let status: number;
      let wse: Record<string, unknown> = {};
      try {
        const answer = await httpCall(`${this.app.httpUrl}/health`, 'GET');
        status = answer.status;
        wse = ((answer.body.details as Record<string, Record<string, unknown>> | undefined)?.wse ?? {}) as Record<
          string,
          unknown
        >;
      } catch (error) {
        status = -1;
        this.errors.push(`${Date.now()}: ${(error as Error).message} ${String((error as Error).cause ?? '')}`);
      }
      this.samples.push({
        at: started,
        status,
        connBreaker: wse.conn_breaker as string | undefined,
        pubBreaker: wse.pub_breaker as string | undefined,
        inFlight: wse.redis_publish_in_flight as number | undefined,
        reconnects: wse.redis_reconnect_count as number | undefined,
      });
      await sleep(Math.max(0, started + this.periodMs - Date.now()));
    }
  }
}

/** What became of one publish request. */
export interface PublishAnswer {
  readonly seq: number;
  readonly requestedAt: number;
  readonly answeredAt: number;
  /** HTTP status, or -1 when the request itself failed. */
  readonly status: number;
}

/**
 * Publishes `{"seq": n}` on FAULT_TOPIC on A at `ratePerSecond`, n = 0, 1, 2, ...: every
 * `httpEvery`-th through `POST /api/publish` (which must answer 202), the others in-process
 * through WsePublisher (a 2-core machine shared with other work cannot serve 500 HTTP requests a
 * second and still measure anything). At most `maxOutstanding` HTTP requests are open at once:
 * past that the publisher waits for its next turn (the count of waits is kept).
 */
export class SeqPublisher {
  readonly answers: PublishAnswer[] = [];
  next = 0;
  skipped = 0;
  private outstanding = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Keep-alive connections, a bounded pool: node:http is far lighter than fetch at this rate. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });
  private startedAt = 0;
  private issued = 0;

  constructor(
    private readonly app: RedisApp,
    readonly ratePerSecond: number,
    /** Every `httpEvery`-th message goes through `POST /api/publish`, the rest in-process. */
    private readonly httpEvery = 10,
    private readonly maxOutstanding = 64,
  ) {}

  start(): void {
    this.startedAt = Date.now();
    this.issued = 0;
    this.timer = setInterval(() => this.tick(), 10);
  }

  /** Stops sending and waits for every open request to be answered (at most 10 s). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + 10_000;
    while (this.outstanding > 0) {
      if (Date.now() > deadline) throw new Error(`${this.outstanding} publish requests still open after 10 s`);
      await sleep(10);
    }
    this.agent.destroy();
  }

  /** Publishes `count` messages in one tick, in-process (they travel in one batch command). */
  burst(count: number): number[] {
    const seqs: number[] = [];
    const at = Date.now();
    for (let i = 0; i < count; i++) {
      const seq = this.next++;
      this.app.publisher.publish(FAULT_TOPIC, { seq });
      this.answers.push({ seq, requestedAt: at, answeredAt: at, status: 202 });
      seqs.push(seq);
    }
    return seqs;
  }

  /** Waits until `count` more messages have been answered than when called, at most `timeoutMs`. */
  async waitForAnswers(count: number, timeoutMs: number): Promise<void> {
    const target = this.answers.length + count;
    const deadline = Date.now() + timeoutMs;
    while (this.answers.length < target) {
      if (Date.now() > deadline) throw new Error(`publisher: ${count} answers not reached within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  private tick(): void {
    const due = Math.floor(((Date.now() - this.startedAt) * this.ratePerSecond) / 1000) - this.issued;
    const at = Date.now();
    for (let i = 0; i < due; i++) {
      this.issued++;
      const seq = this.next++;
      if (seq % this.httpEvery !== 0) {
        // In-process, as domain code publishes (WsePublisher.publish): what one tick publishes
        // travels as one batch command.
        this.app.publisher.publish(FAULT_TOPIC, { seq });
        this.answers.push({ seq, requestedAt: at, answeredAt: at, status: 202 });
      } else if (this.outstanding >= this.maxOutstanding) {
        this.skipped++;
        this.next--;
        this.issued--;
        return;
      } else {
        this.send(seq);
      }
    }
  }

  private send(seq: number): void {
    this.outstanding++;
    const requestedAt = Date.now();
    const body = `{"topic":"${FAULT_TOPIC}","data":{"seq":${seq}}}`;
    const done = (status: number): void => {
      this.outstanding--;
      this.answers.push({ seq, requestedAt, answeredAt: Date.now(), status });
    };
    const request = httpRequest(
      `${this.app.httpUrl}/api/publish`,
      {
        method: 'POST',
        agent: this.agent,
        timeout: 5_000,
        headers: {
          authorization: `Bearer ${API_KEY}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        response.resume();
        response.once('end', () => done(response.statusCode ?? -1));
        response.once('error', () => done(-1));
      },
    );
    request.once('timeout', () => request.destroy(new Error('timeout')));
    request.once('error', (error: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed just as it was reused: the request never reached
      // the server (Node's documented case for a retry), so it is sent again, same number.
      if (request.reusedSocket && error.code === 'ECONNRESET') {
        this.outstanding--;
        this.send(seq);
      } else {
        done(-1);
      }
    });
    request.end(body);
  }
}

/** The verdict over every sequence number. Each list holds sequence numbers (or "seq@receiver"). */
export interface Accounting {
  readonly sent: number;
  /** Delivered once to every receiver on both instances, not in the DLQ. */
  readonly deliveredToAll: number;
  /** DLQ entries of A by reason. */
  readonly dlqByReason: Record<string, number>;
  /** Neither in the DLQ nor delivered to every receiver. */
  readonly lostSilently: number[];
  /** A receiver got it more than once. */
  readonly duplicates: string[];
  /** More than one DLQ entry for the same message. */
  readonly dlqDuplicates: number[];
  /** The DLQ says it was never sent, yet a receiver got it: a replay would deliver it twice. */
  readonly deliveredButUnsent: number[];
  /** Outcome unknown and delivered to some receivers but not all. */
  readonly unknownPartial: number[];
  /** Two receivers of one instance disagree (a local fan-out fault). */
  readonly unevenInstance: number[];
  /** A publish request answered with something other than 202. */
  readonly notAccepted: string[];
}

/** The lists of an Accounting that must stay empty: each is a way to lose or double a message. */
export type AnomalyKey =
  | 'lostSilently'
  | 'duplicates'
  | 'dlqDuplicates'
  | 'deliveredButUnsent'
  | 'unknownPartial'
  | 'unevenInstance'
  | 'notAccepted';

/** Every anomaly but `unknownPartial`, which only suites that ask for all-or-none check. */
export const ANOMALIES: readonly AnomalyKey[] = [
  'lostSilently',
  'duplicates',
  'dlqDuplicates',
  'deliveredButUnsent',
  'unevenInstance',
  'notAccepted',
];

/**
 * The non-empty ones of the given anomaly lists, so a suite asserts `toEqual({})` and a failure
 * shows exactly which sequence numbers went wrong, and how.
 */
export function anomaliesOf(
  result: Accounting,
  keys: readonly AnomalyKey[] = ANOMALIES,
): Partial<Record<AnomalyKey, readonly (number | string)[]>> {
  const found: Partial<Record<AnomalyKey, readonly (number | string)[]>> = {};
  for (const key of keys) if (result[key].length > 0) found[key] = result[key];
  return found;
}

export interface RigOptions {
  /** Redis options over FAULT_REDIS (the url is the rig's). */
  readonly redis?: WseRedisOptions;
  /** Redis URL of each instance (default: the server's). */
  readonly urls?: { readonly a: string; readonly b: string };
  readonly ratePerSecond?: number;
}

/** Two instances on one Redis, receivers on both, a publisher on A, health sampled on both. */
export class FaultRig {
  readonly receivers: SeqReceiver[] = [];
  readonly health: Record<InstanceName, HealthTimeline>;
  readonly publisher: SeqPublisher;

  private constructor(
    readonly a: RedisApp,
    readonly b: RedisApp,
    ratePerSecond: number,
  ) {
    this.health = { A: new HealthTimeline('A', a), B: new HealthTimeline('B', b) };
    this.publisher = new SeqPublisher(a, ratePerSecond);
  }

  /** `url` undefined: the instances connect as `options.redis` says (e.g. `cluster.nodes`). */
  static async start(url: string | undefined, options: RigOptions = {}): Promise<FaultRig> {
    const prefix = uniquePrefix('f');
    const redis: WseRedisOptions = {
      ...FAULT_REDIS,
      ...options.redis,
      reconnect: { ...FAULT_REDIS.reconnect, ...options.redis?.reconnect },
      prefix,
    };
    const appOptions = { apiKey: API_KEY, pingIntervalMs: 600_000, idleTimeoutMs: 600_000 };
    const urlOf = (own: string | undefined): WseRedisOptions => {
      const chosen = own ?? url;
      return chosen === undefined ? redis : { ...redis, url: chosen };
    };
    const a = await startRedisApp(urlOf(options.urls?.a), appOptions);
    const b = await startRedisApp(urlOf(options.urls?.b), appOptions);
    const rig = new FaultRig(a, b, options.ratePerSecond ?? 500);
    await Promise.all([rig.waitForHealth('A', 200, 15_000), rig.waitForHealth('B', 200, 15_000)]);
    for (const [app, instance] of [
      [a, 'A'],
      [b, 'B'],
    ] as const) {
      for (const [suffix, topic] of [
        ['exact', FAULT_TOPIC],
        ['pattern', FAULT_PATTERN],
      ] as const) {
        const { client } = await TestClient.ready(app.wsUrl);
        const update = await client.subscribe([topic]);
        if ((update.p.success_topics as string[])[0] !== topic)
          throw new Error(`subscribing ${topic} on ${instance} failed: ${JSON.stringify(update.p)}`);
        rig.receivers.push(new SeqReceiver(`${instance}-${suffix}`, instance, client));
      }
    }
    // Both instances deliver to every receiver before anything is measured: one message through.
    await rig.deliverOne();
    rig.health.A.start();
    rig.health.B.start();
    return rig;
  }

  app(instance: InstanceName): RedisApp {
    return instance === 'A' ? this.a : this.b;
  }

  /** Sends one numbered message in-process and waits until every receiver has it. */
  async deliverOne(timeoutMs = 10_000): Promise<void> {
    const [seq] = this.publisher.burst(1);
    const deadline = Date.now() + timeoutMs;
    while (!this.receivers.every((r) => r.seqs.includes(seq))) {
      if (Date.now() > deadline) throw new Error(`message ${seq} did not reach every receiver within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  /** Waits until every receiver has a message sent after `seq`, at most `timeoutMs`; resolves with the time. */
  async deliveringFrom(seq: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const times = this.receivers.map((r) => r.firstArrivalFrom(seq));
      if (times.every((t) => t !== undefined)) return Math.max(...(times as number[]));
      if (Date.now() > deadline)
        throw new Error(
          `not every receiver got a message from #${seq} on within ${timeoutMs} ms: ${this.receivers
            .map((r) => `${r.name} last #${r.seqs[r.seqs.length - 1]}`)
            .join(', ')}`,
        );
      await sleep(10);
    }
  }

  /**
   * After the publisher stopped: waits until A has an outcome for every publish (published or
   * dead-lettered, per its counters) and no receiver got anything for `quietMs`, at most
   * `timeoutMs`. Does not throw on timeout: the accounting then shows what is missing.
   */
  async settle(quietMs = 500, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const sent = this.publisher.answers.length;
    let lastCount = -1;
    let quietSince = Date.now();
    while (Date.now() < deadline) {
      const snapshot = this.a.snapshot();
      const outcomes = snapshot.redis_messages_published + snapshot.redis_publish_errors;
      const count = this.receivers.reduce((n, r) => n + r.seqs.length, 0);
      if (count !== lastCount) {
        lastCount = count;
        quietSince = Date.now();
      }
      // The rig's own warm-up messages are part of `sent`: they went through the same path.
      if (outcomes >= sent && Date.now() - quietSince >= quietMs) return;
      await sleep(20);
    }
  }

  /** A's DLQ read without draining (`?peek=true`), then drained; both must agree. */
  async readDlq(): Promise<{ peeked: DlqEntryView[]; drained: DlqEntryView[]; afterDrain: DlqEntryView[] }> {
    const peeked = (await this.a.api('GET', '/api/dlq?peek=true')).body.entries as DlqEntryView[];
    const drained = (await this.a.api('GET', '/api/dlq')).body.entries as DlqEntryView[];
    const afterDrain = (await this.a.api('GET', '/api/dlq')).body.entries as DlqEntryView[];
    return { peeked, drained, afterDrain };
  }

  /** Accounts for every sequence number sent so far against the receivers and `dlq`. */
  account(dlq: readonly DlqEntryView[], options: { unknownAllOrNone?: boolean } = {}): Accounting {
    const sent = this.publisher.next;
    const received = this.receivers.map((r) => countBySeq(r.seqs, sent));
    const dlqBySeq = new Map<number, DlqEntryView[]>();
    const dlqByReason: Record<string, number> = {};
    for (const entry of dlq) {
      const seq = seqOf(entry);
      const reason = reasonOf(entry);
      dlqByReason[reason] = (dlqByReason[reason] ?? 0) + 1;
      if (seq === undefined) continue;
      dlqBySeq.set(seq, [...(dlqBySeq.get(seq) ?? []), entry]);
    }
    const result = {
      sent,
      deliveredToAll: 0,
      dlqByReason,
      lostSilently: [] as number[],
      duplicates: [] as string[],
      dlqDuplicates: [] as number[],
      deliveredButUnsent: [] as number[],
      unknownPartial: [] as number[],
      unevenInstance: [] as number[],
      notAccepted: this.publisher.answers.filter((a) => a.status !== 202).map((a) => `#${a.seq}: ${a.status}`),
    };
    for (let seq = 0; seq < sent; seq++) {
      const counts = received.map((byseq) => byseq[seq]);
      counts.forEach((n, i) => {
        if (n > 1) result.duplicates.push(`#${seq}x${n}@${this.receivers[i].name}`);
      });
      for (const instance of ['A', 'B'] as const) {
        const got = this.receivers.map((r, i) => (r.instance === instance ? counts[i] > 0 : undefined));
        const mine = got.filter((g) => g !== undefined);
        if (mine.some((g) => g) && !mine.every((g) => g)) result.unevenInstance.push(seq);
      }
      const everyone = counts.every((n) => n >= 1);
      const anyone = counts.some((n) => n >= 1);
      const entries = dlqBySeq.get(seq) ?? [];
      if (entries.length > 1) result.dlqDuplicates.push(seq);
      if (entries.length === 0) {
        if (everyone) result.deliveredToAll++;
        else result.lostSilently.push(seq);
        continue;
      }
      const reason = reasonOf(entries[0]);
      if (UNSENT_REASONS.has(reason) && anyone) result.deliveredButUnsent.push(seq);
      if (reason === UNKNOWN_REASON && options.unknownAllOrNone && anyone && !everyone) result.unknownPartial.push(seq);
    }
    return result;
  }

  /** Publish answers whose request and answer both fall inside [from, to). */
  acceptedBetween(from: number, to: number): PublishAnswer[] {
    return this.publisher.answers.filter((a) => a.requestedAt >= from && a.answeredAt < to && a.status === 202);
  }

  async waitForHealth(instance: InstanceName, status: number, timeoutMs: number): Promise<void> {
    const app = this.app(instance);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const last = (await app.getHealth().catch(() => ({ status: -1 }))).status;
      if (last === status) return;
      if (Date.now() > deadline)
        throw new Error(`${instance}: GET /health did not answer ${status} within ${timeoutMs} ms (last ${last})`);
      await sleep(20);
    }
  }

  async close(): Promise<void> {
    await this.publisher.stop().catch(() => undefined);
    await Promise.all([this.health.A.stop(), this.health.B.stop()]);
    await Promise.all(this.receivers.map((r) => r.client.close()));
    await Promise.all([this.a.close(), this.b.close()]);
  }
}

/** The sequence number in a DLQ entry's payload (text or base64). */
export function seqOf(entry: DlqEntryView): number | undefined {
  const text = entry.payload ?? (entry.payload_base64 && Buffer.from(entry.payload_base64, 'base64').toString());
  const match = /^\{"seq":(\d+)\}$/.exec(text ?? '');
  return match ? Number(match[1]) : undefined;
}

/** An entry's reason; entries without one (older builds) are named from their error text. */
export function reasonOf(entry: DlqEntryView): string {
  if (entry.reason !== undefined) return entry.reason;
  if (entry.error === 'Redis is not connected') return 'not_connected';
  if (/circuit breaker/.test(entry.error)) return 'breaker_open';
  if (/shutting down/.test(entry.error)) return 'shutdown';
  return 'publish_failed';
}

function countBySeq(seqs: readonly number[], size: number): Uint16Array {
  const counts = new Uint16Array(size);
  for (const seq of seqs) if (seq < size) counts[seq]++;
  return counts;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Appends one JSON line of measured figures to `$WSE_FAULT_REPORT` when it is set (the figures
 * quoted in the README's reliability table come from such a run); does nothing otherwise.
 */
export function report(fault: string, figures: Record<string, unknown>): void {
  const path = process.env.WSE_FAULT_REPORT;
  if (path) appendFileSync(path, `${JSON.stringify({ fault, ...figures })}\n`);
}
