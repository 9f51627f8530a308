/**
 * The server under test: one child process running one system (see systems.ts), driven over
 * IPC by the orchestrator. It runs the publish loops itself, so publishing costs the server's
 * CPU exactly as it would in an application.
 */
import type {
  BurstParams,
  FloodParams,
  LoopResult,
  TopicStream,
  PacedParams,
  PublishVia,
  ServerApi,
  ServerStartParams,
  ServerStartResult,
  ServerUsage,
} from '../lib/apis.js';
import { benchMessage, clockMs, sleep, type BenchMessage } from '../lib/clock.js';
import { serve } from '../lib/ipc.js';
import { runBurst, runFlood, runPaced } from '../lib/loops.js';
import { startSystem, type BenchSystem } from './systems.js';

let system: BenchSystem | undefined;
let ticker: { timer: NodeJS.Timeout | undefined; published: number } | undefined;

function running(): BenchSystem {
  if (system === undefined) throw new Error('start() first');
  return system;
}

function publisher(via: PublishVia): (topic: string, message: BenchMessage) => void {
  const s = running();
  return via === 'local'
    ? (topic, message) => s.publishLocal(topic, message)
    : (topic, message) => s.publishRedis(topic, message);
}

/** Topic n of a paced or flood loop: `stream`'s when given, `topic` otherwise. */
function topicOf(topic: string, stream: TopicStream | undefined): (seq: number) => string {
  if (stream === undefined || stream.count === 0) return () => topic;
  const { prefix, count, suffix } = stream;
  return (seq) => prefix + (seq % count) + suffix;
}

const api: ServerApi = {
  async start(params: ServerStartParams): Promise<ServerStartResult> {
    system = await startSystem(params);
    await system.ready();
    return { port: system.port, path: system.path };
  },

  async usage({ gc }): Promise<ServerUsage> {
    const s = running();
    if (gc) {
      const collect = (globalThis as { gc?: () => void }).gc;
      if (collect === undefined) throw new Error('run the server with --expose-gc');
      collect();
      await sleep(50);
      collect();
    }
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    return {
      cpuUs: cpu.user + cpu.system,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      connections: s.connections(),
      dropped: s.dropped(),
      redisPublished: s.redisPublished(),
      atMs: clockMs(),
    };
  },

  burst(params: BurstParams): Promise<LoopResult> {
    const publish = publisher(params.via);
    const { prefix, count, suffix } = params.topics;
    if (count === 0)
      return runBurst(params.perTurn, params.durationMs, (seq, now) => publish(prefix, benchMessage(seq, now)));
    return runBurst(params.perTurn, params.durationMs, (seq, now) =>
      publish(prefix + (seq % count) + suffix, benchMessage(seq, now)),
    );
  },

  paced(params: PacedParams): Promise<LoopResult> {
    const publish = publisher(params.via);
    const topic = topicOf(params.topic, params.topics);
    return runPaced(params.rate, params.durationMs, (seq, scheduled) =>
      publish(topic(seq), benchMessage(seq, scheduled)),
    );
  },

  flood(params: FloodParams): Promise<LoopResult> {
    const s = running();
    const topic = topicOf(params.topic, params.topics);
    return runFlood(
      params.perTurn,
      params.window,
      params.durationMs,
      (seq, nowMs) => s.publishRedis(topic(seq), benchMessage(seq, nowMs)),
      () => s.redisInFlight(),
    );
  },

  async publishOne({ topic, via }): Promise<void> {
    publisher(via)(topic, benchMessage(0, clockMs()));
  },

  async monotonicUs(): Promise<number> {
    return Number(process.hrtime.bigint() / 1000n);
  },

  async shutdown(): Promise<void> {
    await running().shutdown();
  },

  async startTicker({ topics, everyMs, maxMs }): Promise<void> {
    const s = running();
    clearInterval(ticker?.timer);
    const state = { timer: undefined as NodeJS.Timeout | undefined, published: 0 };
    const stopAt = Date.now() + maxMs;
    let seq = 0;
    state.timer = setInterval(() => {
      if (Date.now() > stopAt) clearInterval(state.timer);
      const now = clockMs();
      // The topic in the payload: a client tells which of its topics a message came on.
      for (const topic of topics) {
        const message = benchMessage(seq++, now);
        s.publishLocal(topic, { t: 'bench', p: { ...message.p, topic } } as BenchMessage);
      }
      state.published += topics.length;
    }, everyMs);
    ticker = state;
  },

  async stopTicker(): Promise<number> {
    clearInterval(ticker?.timer);
    const published = ticker?.published ?? 0;
    ticker = undefined;
    return published;
  },
};

serve(api);
