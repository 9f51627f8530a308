import type { CircuitBreaker } from '../../reliability/circuit-breaker.js';
import type { Clock } from '../../reliability/clock.js';
import type { DeadLetterReason } from '../../reliability/dead-letter-queue.js';
import { redisMessages } from '../../wse.messages.js';
import { isReplyError } from './delivery-probe.js';
import { MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, type BatchReply } from './publish-batch.js';
import type { BatchMessage } from './redis-history.js';

/** A message as published: JSON text (or any string) or bytes; Redis gets its UTF-8 form. */
export type RedisPayload = string | Buffer;

/** Why a publish cannot go, with the sentence for the DLQ entry. */
export interface Refusal {
  readonly reason: DeadLetterReason;
  readonly error: string;
}

/** The publishing connection, as the pipeline uses it. */
export interface CommandSender {
  /** True when a command written now goes straight to Redis. */
  readonly writable: boolean;
  /** Send a lone message through `publishBatch` as well (a cluster publishes every message its own way). */
  readonly batchesOnly?: boolean;
  /** One PUBLISH; resolves with the number of subscribers that received it. */
  publish(channel: string, payload: RedisPayload): Promise<number>;
  /** Many PUBLISHes in one command; resolves with the exceptions (see publish-batch.ts). */
  publishBatch(expected: number, channelsAndPayloads: RedisPayload[]): Promise<BatchReply>;
  /**
   * A command holding messages on history topics (and maybe plain ones), in order: the history
   * script (history-scripts.ts), with the same reply as `publishBatch`.
   */
  publishHistoryBatch(expected: number, messages: readonly BatchMessage[]): Promise<BatchReply>;
}

/** What the pipeline asks of the service around it, and tells it. */
export interface PipelineHost {
  /** Why nothing may be published now (connection, delivery, peers), or undefined. */
  gate(): Refusal | undefined;
  /** Subscribers each message must reach: the live instances. */
  expectedReceivers(): number;
  /** Each publish that reached every instance, counted once. */
  published(): void;
  /** Each publish that did not, once, with why. */
  deadLetter(channel: string, payload: RedisPayload, reason: DeadLetterReason, error: string): void;
  /** The pipeline started or stopped considering Redis not answering. */
  answeringChanged(notAnswering: boolean): void;
}

export interface PublishPipelineOptions {
  readonly publishAttempts: number;
  readonly publishRetryDelayMs: number;
  readonly publishTimeoutMs: number;
  readonly maxInFlightMessages: number;
  readonly maxInFlightBytes: number;
}

/** One publish on its way. The only object made per message. */
interface PendingPublish {
  readonly channel: string;
  readonly payload: RedisPayload;
  /** Set for a message on a history topic: numbered, kept and stamped by Redis as it goes. */
  readonly topic?: string;
  /** Which attempt this is (1 = the first). */
  attempt: number;
}

/** One command sent, waiting for its reply; replies come in the order commands were sent. */
interface Command {
  readonly items: PendingPublish[];
  readonly sentAt: number;
  readonly expected: number;
  /** Settled by its reply, or given up at its deadline (a late reply is then ignored). */
  done: boolean;
}

/** How a failed command ended for the messages in it. */
type Failure = 'refused' | 'unsent' | 'unknown';

/**
 * The publish path (issue 10): every publish it accepts ends as exactly one of published (Redis
 * ran it and every live instance's subscriber received it) or a dead letter with a reason, and
 * the counters say which.
 *
 * - Batching: publishes of one tick travel together, in commands of at most MAX_BATCH_MESSAGES
 *   and MAX_BATCH_BYTES (publish-batch.ts).
 * - Bounds: at most `maxInFlightMessages` publishes and `maxInFlightBytes` payload bytes between
 *   acceptance and outcome (this tick's batch, commands on their way, retries waiting); past
 *   either, `backlog_full` at once.
 * - Deadline: a command without reply for `publishTimeoutMs`, with no other reply meanwhile
 *   either, is given up, with every command sent after it (replies come in order, so none of
 *   them can be answered first): their messages end as `outcome_unknown`, since Redis may still
 *   run them. From then until Redis answers anything, new publishes end as `not_answering` at
 *   once instead of piling up.
 * - Retries: only for failures known not to have published anything (an error reply, or a
 *   command that could not be written): up to `publishAttempts`, `publishRetryDelayMs` then
 *   twice that. A command lost with its connection has an unknown outcome and is never resent;
 *   ioredis does not resend either (`autoResendUnfulfilledCommands: false`).
 * - pub_breaker: one failure per command Redis refused (a batch is one command, however many
 *   messages it holds), one success per command it ran. Unanswered or lost commands are the
 *   connection's business: they neither open nor close it.
 * - Receivers: a message that reached fewer subscribers than `expectedReceivers()` ends as
 *   `partial`: some instance missed it.
 */
export class PublishPipeline {
  /** Publishes accepted and without an outcome yet. */
  inFlight = 0;
  /** Their payload sizes (bytes, or characters of text). */
  inFlightBytes = 0;
  /** The highest `inFlight` since start. */
  peakInFlight = 0;
  /** Replies that came after their command's deadline (they changed nothing). */
  lateReplies = 0;
  /** When Redis last answered a command (0: never): progress, as the deadline measures it. */
  lastReplyAt = 0;
  private notAnsweringValue = false;
  private batch: PendingPublish[] = [];
  private readonly sendBatchSoon = (): void => this.sendBatch();
  /** Commands sent and not settled, oldest first. */
  private readonly commands: Command[] = [];
  private readonly retryTimers = new Map<NodeJS.Timeout, PendingPublish[]>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly timeoutText: string;

  constructor(
    private readonly options: PublishPipelineOptions,
    private readonly breaker: CircuitBreaker,
    private readonly sender: CommandSender,
    private readonly host: PipelineHost,
    private readonly clock: Clock = Date.now,
  ) {
    this.timeoutText = redisMessages.noReply(options.publishTimeoutMs);
  }

  /** True from a command's deadline until Redis answers again. */
  get notAnswering(): boolean {
    return this.notAnsweringValue;
  }

  /** Starts the deadline sweep (a single timer, a tenth of the deadline or less). */
  start(): void {
    this.stopping = false;
    if (this.sweepTimer !== undefined) return;
    const period = Math.max(5, Math.min(100, Math.floor(this.options.publishTimeoutMs / 10)));
    this.sweepTimer = setInterval(() => this.sweep(), period);
    this.sweepTimer.unref();
  }

  /**
   * Accepts a publish on `channel`. Never throws, never blocks: what cannot go ends in the DLQ
   * with its reason.
   */
  publish(channel: string, payload: RedisPayload, topic?: string): void {
    const size = payload.length;
    if (
      this.inFlight >= this.options.maxInFlightMessages ||
      this.inFlightBytes + size > this.options.maxInFlightBytes
    ) {
      this.host.deadLetter(channel, payload, 'backlog_full', redisMessages.backlogFull());
      return;
    }
    this.inFlight++;
    this.inFlightBytes += size;
    if (this.inFlight > this.peakInFlight) this.peakInFlight = this.inFlight;
    this.attempt(topic === undefined ? { channel, payload, attempt: 1 } : { channel, payload, topic, attempt: 1 });
  }

  /**
   * One PUBLISH outside the batches, without retries (for a DLQ replay): resolves with undefined
   * once every instance received it, or with why not.
   */
  async publishOnce(channel: string, payload: RedisPayload): Promise<Refusal | undefined> {
    const refusal = this.refusal() ?? (this.breaker.allow() ? undefined : BREAKER_OPEN);
    if (refusal !== undefined) return refusal;
    const expected = this.host.expectedReceivers();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.options.publishTimeoutMs);
    });
    try {
      const receivers = await Promise.race([this.sender.publish(channel, payload), deadline]);
      if (receivers === 'timeout') return { reason: 'outcome_unknown', error: this.timeoutText };
      this.breaker.recordSuccess();
      if (receivers < expected) return { reason: 'partial', error: redisMessages.partial(receivers, expected) };
      this.host.published();
      return undefined;
    } catch (error) {
      const failure = classify(error, false);
      if (failure === 'refused') this.breaker.recordFailure();
      return failure === 'unknown'
        ? { reason: 'outcome_unknown', error: errorText(error) }
        : { reason: failure === 'refused' ? 'publish_failed' : 'not_connected', error: errorText(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  /** The connection was (re)established: whatever was unanswered belongs to the old one. */
  onConnected(): void {
    this.setNotAnswering(false);
  }

  /**
   * Sends what this tick queued, waits up to `timeoutMs` for the commands on their way, then
   * ends every publish still without an outcome: those waiting for a retry as `shutdown`, those
   * sent as `outcome_unknown`. Nothing is left behind, no timer either.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.sendBatch();
    this.stopping = true;
    for (const [timer, group] of this.retryTimers) {
      clearTimeout(timer);
      for (const item of group) this.end(item, 'shutdown', redisMessages.shutdown());
    }
    this.retryTimers.clear();
    const deadline = this.clock() + timeoutMs;
    while (this.commands.length > 0 && this.clock() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    this.expireCommands(0, redisMessages.shutdownUnanswered());
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** Why a publish cannot go now, checked cheapest first; undefined when it can. */
  private refusal(): Refusal | undefined {
    if (this.stopping) return SHUTDOWN;
    if (!this.sender.writable) return NOT_CONNECTED;
    if (this.notAnsweringValue) return NOT_ANSWERING;
    const gate = this.host.gate();
    if (gate !== undefined) return gate;
    // Open: nothing goes. Half-open lets a few *commands* through (sendCommand asks it).
    if (this.breaker.state === 'OPEN') return BREAKER_OPEN;
    return undefined;
  }

  /** Queues one attempt for this tick's batch, or ends the publish at once when it cannot go. */
  private attempt(item: PendingPublish): void {
    const refusal = this.refusal();
    if (refusal !== undefined) {
      this.end(item, refusal.reason, refusal.error);
      return;
    }
    if (this.batch.length === 0) process.nextTick(this.sendBatchSoon);
    this.batch.push(item);
  }

  private sendBatch(): void {
    const queued = this.batch;
    if (queued.length === 0) return;
    this.batch = [];
    if (!this.sender.writable) {
      for (const item of queued) this.end(item, NOT_CONNECTED.reason, NOT_CONNECTED.error);
      return;
    }
    const expected = this.host.expectedReceivers();
    let start = 0;
    while (start < queued.length) {
      let end = start;
      let bytes = 0;
      while (end < queued.length && end - start < MAX_BATCH_MESSAGES && (end === start || bytes < MAX_BATCH_BYTES)) {
        bytes += queued[end].payload.length;
        end++;
      }
      this.sendCommand(start === 0 && end === queued.length ? queued : queued.slice(start, end), expected);
      start = end;
    }
  }

  private sendCommand(items: PendingPublish[], expected: number): void {
    // pub_breaker counts commands, so it is asked per command: a half-open breaker lets its few
    // probe calls through as whole commands, however many messages each holds.
    if (!this.breaker.allow()) {
      for (const item of items) this.end(item, BREAKER_OPEN.reason, BREAKER_OPEN.error);
      return;
    }
    const command: Command = { items, sentAt: this.clock(), expected, done: false };
    this.commands.push(command);
    const count = items.length;
    if (hasHistory(items)) {
      // Messages on history topics go through the history script, the plain ones of the same
      // command with them, in order: one command per batch still.
      this.sender.publishHistoryBatch(expected, items).then(
        (reply) => {
          if (this.answered(command)) this.settleBatch(items, reply, expected);
        },
        (error: unknown) => {
          if (this.answered(command)) this.fail(items, classify(error, true), errorText(error));
        },
      );
      return;
    }
    if (count === 1 && this.sender.batchesOnly !== true) {
      this.sender.publish(items[0].channel, items[0].payload).then(
        (receivers) => {
          if (this.answered(command)) this.settleOne(items[0], receivers, expected);
        },
        (error: unknown) => {
          if (this.answered(command)) this.fail(items, classify(error, false), errorText(error));
        },
      );
      return;
    }
    const args = new Array<RedisPayload>(count * 2);
    for (let i = 0; i < count; i++) {
      args[2 * i] = items[i].channel;
      args[2 * i + 1] = items[i].payload;
    }
    this.sender.publishBatch(expected, args).then(
      (reply) => {
        if (this.answered(command)) this.settleBatch(items, reply, expected);
      },
      (error: unknown) => {
        if (this.answered(command)) this.fail(items, classify(error, true), errorText(error));
      },
    );
  }

  /**
   * A reply (or an error) for `command` came back: it is done, Redis is answering. False when
   * the command had already been given up at its deadline: its messages have their outcome.
   * (A shutdown gives commands up too; a reply after that changes nothing either.)
   */
  private answered(command: Command): boolean {
    this.lastReplyAt = this.clock();
    if (command.done) {
      // Late, and its messages already have their outcome; but Redis is answering again.
      this.lateReplies++;
      this.setNotAnswering(false);
      return false;
    }
    command.done = true;
    const index = this.commands.indexOf(command);
    if (index === 0) this.commands.shift();
    else if (index > 0) this.commands.splice(index, 1);
    this.setNotAnswering(false);
    return true;
  }

  private settleOne(item: PendingPublish, receivers: number, expected: number): void {
    this.breaker.recordSuccess();
    if (receivers < expected) this.end(item, 'partial', redisMessages.partial(receivers, expected));
    else this.succeed(item);
  }

  /** Counts each message of a batch reply as separate PUBLISHes would have ended. */
  private settleBatch(items: PendingPublish[], reply: BatchReply, expected: number): void {
    if (reply.length === 0) {
      this.breaker.recordSuccess();
      for (let i = 0; i < items.length; i++) this.succeed(items[i]);
      return;
    }
    const exceptions = new Map<number, number | string>();
    let refused: PendingPublish[] | undefined;
    let refusedText = '';
    for (let i = 0; i + 1 < reply.length; i += 2) exceptions.set(Number(reply[i]), reply[i + 1]);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const error = exceptions.get(i + 1);
      if (error !== undefined) {
        (refused ??= []).push(item);
        refusedText = String(error);
        continue;
      }
      const short = exceptions.get(-(i + 1));
      if (short !== undefined) this.end(item, 'partial', redisMessages.partial(Number(short), expected));
      else this.succeed(item);
    }
    if (refused === undefined) {
      this.breaker.recordSuccess();
      return;
    }
    // Refused messages were not published: they may be retried. The command failed only when
    // none of its messages went out; a cluster with one shard down refuses just that shard's.
    if (refused.length === items.length) this.breaker.recordFailure();
    else this.breaker.recordSuccess();
    this.retryOrEnd(refused, refusedText);
  }

  private fail(items: PendingPublish[], failure: Failure, error: string): void {
    if (failure === 'unknown') {
      for (const item of items) this.end(item, 'outcome_unknown', error);
      return;
    }
    if (failure === 'refused') this.breaker.recordFailure();
    this.retryOrEnd(items, error);
  }

  /** Known not published: another attempt after the retry delay, or the DLQ once attempts run out. */
  private retryOrEnd(items: PendingPublish[], error: string): void {
    let group: PendingPublish[] | undefined;
    let attempt = 0;
    for (const item of items) {
      if (item.attempt >= this.options.publishAttempts || this.stopping) {
        this.end(item, 'publish_failed', error);
        continue;
      }
      // Every message of one command is on the same attempt.
      attempt = item.attempt;
      (group ??= []).push(item);
    }
    if (group === undefined) return;
    const retry = group;
    const timer = setTimeout(
      () => {
        this.retryTimers.delete(timer);
        for (const item of retry) {
          item.attempt++;
          this.attempt(item);
        }
      },
      this.options.publishRetryDelayMs * 2 ** (attempt - 1),
    );
    timer.unref();
    this.retryTimers.set(timer, retry);
  }

  private succeed(item: PendingPublish): void {
    this.inFlight--;
    this.inFlightBytes -= item.payload.length;
    this.host.published();
  }

  private end(item: PendingPublish, reason: DeadLetterReason, error: string): void {
    this.inFlight--;
    this.inFlightBytes -= item.payload.length;
    this.host.deadLetter(item.channel, item.payload, reason, error);
  }

  /**
   * The oldest command past its deadline gives up every command: see the class comment. The
   * deadline runs from when it was sent or from Redis's last reply, whichever is later: a deep
   * queue that Redis is working through (a burst of 10,000, a loaded machine) is not a Redis that
   * stopped answering.
   */
  private sweep(): void {
    const oldest = this.commands[0];
    if (oldest === undefined) return;
    if (this.clock() - Math.max(oldest.sentAt, this.lastReplyAt) < this.options.publishTimeoutMs) return;
    this.expireCommands(0, this.timeoutText);
    this.setNotAnswering(true);
  }

  private expireCommands(from: number, error: string): void {
    const expired = this.commands.splice(from);
    for (const command of expired) {
      command.done = true;
      for (const item of command.items) this.end(item, 'outcome_unknown', error);
    }
  }

  private setNotAnswering(value: boolean): void {
    if (this.notAnsweringValue === value) return;
    this.notAnsweringValue = value;
    this.host.answeringChanged(value);
  }
}

const SHUTDOWN: Refusal = Object.freeze({ reason: 'shutdown', error: redisMessages.shutdown() });
const NOT_CONNECTED: Refusal = Object.freeze({ reason: 'not_connected', error: redisMessages.notConnected() });
const NOT_ANSWERING: Refusal = Object.freeze({ reason: 'not_answering', error: redisMessages.notAnswering() });
const BREAKER_OPEN: Refusal = Object.freeze({
  reason: 'breaker_open',
  error: redisMessages.breakerOpen('pub_breaker'),
});

/**
 * What a rejected command means for its messages. An error reply to a single PUBLISH means Redis
 * did not run it; to the batch script, only the errors below say it never ran (anything else,
 * such as a script killed half way, may have published part of it). A command that could not be
 * written was not sent. Anything else (the connection dropped with the command on its way) has
 * an unknown outcome.
 */
function classify(error: unknown, batch: boolean): Failure {
  if (isReplyError(error)) {
    if (!batch) return 'refused';
    return /^(NOPERM|BUSY|LOADING|MASTERDOWN|READONLY|OOM|NOSCRIPT|MISCONF|NOAUTH|WRONGPASS)\b/.test(
      (error as Error).message,
    )
      ? 'refused'
      : 'unknown';
  }
  if (error instanceof Error && /Stream isn't writeable/.test(error.message)) return 'unsent';
  return 'unknown';
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True when a message of the command is on a history topic. */
function hasHistory(items: readonly PendingPublish[]): boolean {
  for (let i = 0; i < items.length; i++) if (items[i].topic !== undefined) return true;
  return false;
}
