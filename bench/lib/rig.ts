import { fileURLToPath } from 'node:url';
import type {
  ClientApi,
  ClientSnapshot,
  LoopResult,
  RedisRouting,
  ServerApi,
  ServerUsage,
  SystemKind,
  TopicPlan,
  WireProtocol,
} from './apis.js';
import { clockMs, sleep } from './clock.js';
import { awaitQuiet, cpuMark, cpuSplit, type CpuSplit } from './cpu.js';
import { LatencyHistogram } from './histogram.js';
import { Child } from './ipc.js';

const SERVER_SCRIPT = fileURLToPath(new URL('../procs/server.js', import.meta.url));
const CLIENT_SCRIPT = fileURLToPath(new URL('../procs/client.js', import.meta.url));
export const REDIS_TOOL_SCRIPT = fileURLToPath(new URL('../procs/redis-tool.js', import.meta.url));

export const PROTOCOL: Record<SystemKind, WireProtocol> = {
  'ws-naive': 'ws',
  'ws-prebuilt': 'ws',
  // Its first frame is a `server_ready`, as nestjs-wse's.
  'b-jwt': 'wse',
  socketio: 'socketio',
  wse: 'wse',
  'wse-base': 'wse',
  'wse-history': 'wse',
};

/** Load client processes: one per core, so the load generator can use the whole machine. */
export const CLIENT_PROCESSES = 2;

export interface ServerOptions {
  readonly system: SystemKind;
  readonly redisUrl?: string;
  readonly jwtSecret?: string;
  readonly execArgv?: readonly string[];
  readonly port?: number;
  readonly redisRouting?: RedisRouting;
  readonly redisClusterNodes?: readonly string[];
}

export class Server {
  private constructor(
    readonly system: SystemKind,
    readonly child: Child<ServerApi>,
    readonly port: number,
    readonly path: string,
  ) {}

  static async start(options: ServerOptions): Promise<Server> {
    const child = await Child.spawn<ServerApi>(`server(${options.system})`, SERVER_SCRIPT, {
      execArgv: ['--expose-gc', ...(options.execArgv ?? [])],
    });
    try {
      const { port, path } = await child.call(
        'start',
        {
          system: options.system,
          redisUrl: options.redisUrl,
          jwtSecret: options.jwtSecret,
          redisRouting: options.redisRouting,
          redisClusterNodes: options.redisClusterNodes,
          port: options.port,
        },
        30_000,
      );
      return new Server(options.system, child, port, path);
    } catch (error) {
      await child.kill();
      throw error;
    }
  }

  usage(gc = false): Promise<ServerUsage> {
    return this.child.call('usage', { gc });
  }
}

export interface ConnectOutcome {
  readonly opened: number;
  readonly failed: number;
  readonly firstError?: string;
  /** Connections per second, first attempt of any client to the last connection ready. */
  readonly rate: number;
  readonly clientCpuUs: number;
  readonly wallMs: number;
}

/** What one measurement window saw. */
export interface Window {
  readonly loop: LoopResult;
  readonly subscribers: number;
  readonly expected: number;
  readonly frames: number;
  /** Client socket reads that carried frames. */
  readonly reads: number;
  readonly lastFrameMs: number;
  readonly serverCpuUs: number;
  /** CPU of the other servers of the window (the publishing instance in cross-instance runs). */
  readonly otherServerCpuUs: number;
  readonly clientCpuUs: number;
  /** From the first publish to the end of the settle wait. */
  readonly wallMs: number;
  readonly dropped: number;
  readonly latency: LatencyHistogram;
  /** Machine CPU outside the benchmark's processes during the window, % of one core. */
  readonly cpu: CpuSplit;
}

/** Load clients attached to one server (the one whose subscribers are measured). */
export class LoadClients {
  private connected = 0;

  private constructor(readonly clients: Child<ClientApi>[]) {}

  static async start(count = CLIENT_PROCESSES): Promise<LoadClients> {
    const clients = await Promise.all(
      Array.from({ length: count }, (_, i) => Child.spawn<ClientApi>(`client${i}`, CLIENT_SCRIPT)),
    );
    return new LoadClients(clients);
  }

  get connections(): number {
    return this.connected;
  }

  /** Opens `count` more connections to `server`, split over the client processes. */
  async connect(
    server: Server,
    count: number,
    topics: TopicPlan,
    options: { jwtSecret?: string; concurrency?: number } = {},
  ): Promise<ConnectOutcome> {
    const n = this.clients.length;
    const results = await Promise.all(
      this.clients.map((client, k) => {
        const share = Math.floor(count / n) + (k < count % n ? 1 : 0);
        const before = k * Math.floor(count / n) + Math.min(k, count % n);
        return client.call(
          'connect',
          {
            port: server.port,
            path: server.path,
            protocol: PROTOCOL[server.system],
            count: share,
            firstIndex: this.connected + before,
            topics,
            jwtSecret: options.jwtSecret,
            // 4 source addresses per client process: 4 x 28k ephemeral ports each.
            localAddresses: [0, 1, 2, 3].map((j) => `127.0.0.${2 + k * 4 + j}`),
            concurrency: options.concurrency ?? 64,
          },
          300_000,
        );
      }),
    );
    const opened = results.reduce((sum, r) => sum + r.opened, 0);
    const failed = results.reduce((sum, r) => sum + r.failed, 0);
    this.connected += opened;
    const startMs = Math.min(...results.map((r) => r.startMs));
    const endMs = Math.max(...results.map((r) => r.endMs));
    return {
      opened,
      failed,
      firstError: results.find((r) => r.firstError !== undefined)?.firstError,
      rate: (opened / Math.max(1, endMs - startMs)) * 1000,
      clientCpuUs: results.reduce((sum, r) => sum + r.cpuUs, 0),
      wallMs: endMs - startMs,
    };
  }

  /** Like connect(), but every connection must open. */
  async connectAll(
    server: Server,
    count: number,
    topics: TopicPlan,
    options: { jwtSecret?: string } = {},
  ): Promise<ConnectOutcome> {
    const outcome = await this.connect(server, count, topics, options);
    if (outcome.failed > 0) {
      throw new Error(
        `${outcome.failed} of ${count} connections to ${server.system} failed: ${outcome.firstError ?? 'unknown'}`,
      );
    }
    return outcome;
  }

  async reset(sampleEvery: number): Promise<void> {
    await Promise.all(this.clients.map((c) => c.call('reset', { sampleEvery })));
  }

  snapshots(histogram: boolean): Promise<ClientSnapshot[]> {
    return Promise.all(this.clients.map((c) => c.call('snapshot', { histogram })));
  }

  async frames(): Promise<{ frames: number; lastFrameMs: number }> {
    const snapshots = await this.snapshots(false);
    return {
      frames: snapshots.reduce((sum, s) => sum + s.frames, 0),
      lastFrameMs: Math.max(...snapshots.map((s) => s.lastFrameMs)),
    };
  }

  /**
   * Waits until `expected` frames have arrived, or nothing has arrived for `quietMs` (dropped or
   * lost messages), or `maxMs` is over. Returns the frames counted.
   */
  async settle(expected: number, quietMs = 300, maxMs = 3_000): Promise<number> {
    const deadline = Date.now() + maxMs;
    let last = -1;
    let lastChange = Date.now();
    for (;;) {
      const { frames } = await this.frames();
      if (frames >= expected) return frames;
      if (frames !== last) {
        last = frames;
        lastChange = Date.now();
      } else if (Date.now() - lastChange >= quietMs) {
        return frames;
      }
      if (Date.now() > deadline) return frames;
      await sleep(20);
    }
  }

  /**
   * One measurement window: zero the counters, run `action` (a publish loop in some server
   * process), wait for the deliveries to settle, and collect CPU and latency. `measured` is the
   * server whose subscribers these clients are; `others` are further servers whose CPU counts.
   */
  async measure(
    measured: Server,
    others: readonly Server[],
    subscribers: number,
    sampleEvery: number,
    action: () => Promise<LoopResult>,
    options: { warmUp?: boolean; settleQuietMs?: number } = {},
  ): Promise<Window> {
    await this.reset(sampleEvery);
    if (options.warmUp !== true) await awaitQuiet();
    const mark = cpuMark();
    const [s0, o0, c0] = await Promise.all([
      measured.usage(),
      Promise.all(others.map((o) => o.usage())),
      this.snapshots(false),
    ]);
    const loop = await action();
    const expected = loop.published * subscribers;
    await this.settle(expected, options.settleQuietMs ?? 500);
    const [s1, o1, c1] = await Promise.all([
      measured.usage(),
      Promise.all(others.map((o) => o.usage())),
      this.snapshots(true),
    ]);
    const cpu = cpuSplit(mark, cpuMark());
    const latency = new LatencyHistogram();
    for (const snapshot of c1) latency.add(snapshot.histogram ?? []);
    return {
      loop,
      subscribers,
      expected,
      frames: c1.reduce((sum, s) => sum + s.frames, 0),
      reads: c1.reduce((sum, s) => sum + s.reads, 0),
      lastFrameMs: Math.max(...c1.map((s) => s.lastFrameMs)),
      serverCpuUs: s1.cpuUs - s0.cpuUs,
      otherServerCpuUs: o1.reduce((sum, u, i) => sum + u.cpuUs - o0[i].cpuUs, 0),
      clientCpuUs: c1.reduce((sum, s, i) => sum + s.cpuUs - c0[i].cpuUs, 0),
      wallMs: Math.max(1, clockMs() - loop.startMs),
      dropped: s1.dropped - s0.dropped,
      latency,
      cpu,
    };
  }

  /**
   * Waits until nothing more arrives for 300 ms (at most 10 s): after a window that was not held,
   * a server may still be writing its backlog, which must not spill into the next window.
   */
  async drain(): Promise<void> {
    await this.settle(Number.POSITIVE_INFINITY, 300, 10_000);
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.call('closeAll', null)));
    this.connected = 0;
  }

  async kill(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.kill()));
  }
}

/**
 * Stops a server and its clients: the server first, so the TIME_WAIT sockets of its closes stay
 * on the server's side and the clients' ephemeral ports are free for the next run.
 */
export async function teardown(
  servers: readonly (Server | undefined)[],
  clients: LoadClients | undefined,
): Promise<void> {
  await Promise.all(servers.map((s) => s?.child.kill()));
  await clients?.kill();
}
