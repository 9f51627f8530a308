/**
 * A load client process: opens and holds WebSocket connections (see load-connection.ts),
 * counts what they receive and reports on request. The orchestrator runs two of these, so the
 * load generator has as many processes as the machine has cores.
 */
import jwt from 'jsonwebtoken';
import { io as socketIoClient, type Socket as SocketIoSocket } from 'socket.io-client';
import type { ClientApi, ClientSnapshot, ConnectParams, ConnectResult, StormSnapshot, TopicPlan } from '../lib/apis.js';
import { clockMs } from '../lib/clock.js';
import { serve } from '../lib/ipc.js';
import { handshakeSteps, LoadConnection, ReceiveCounters } from './load-connection.js';
import { stormArm, stormCloseAll, stormConnect, stormSnapshot } from './storm-clients.js';

/** Topics per subscription message: nestjs-wse's default `maxTopicsPerSubscription`. */
const TOPICS_PER_MESSAGE = 100;
const HANDSHAKE_TIMEOUT_MS = 20_000;

const counters = new ReceiveCounters();
const connections: LoadConnection[] = [];
let check: { socket: SocketIoSocket; received: Promise<string> } | undefined;

function topicsOf(plan: TopicPlan, index: number): string[] {
  switch (plan.kind) {
    case 'none':
      return [];
    case 'same':
      return [...plan.topics];
    case 'mixed': {
      const topics: string[] = [];
      for (let k = 0; k < plan.exact; k++) topics.push(plan.exactPrefix + ((index * plan.exact + k) % plan.pool));
      topics.push(`${plan.globPrefix}${index}:*`);
      return topics;
    }
    case 'range': {
      const topics: string[] = [];
      const first = plan.start + index * plan.perConnection;
      for (let k = 0; k < plan.perConnection; k++) topics.push(plan.prefix + (first + k) + plan.suffix);
      return topics;
    }
    default: {
      const never: never = plan;
      throw new Error(`unknown plan ${String(never)}`);
    }
  }
}

function chunks(topics: string[]): string[][] {
  const result: string[][] = [];
  for (let i = 0; i < topics.length; i += TOPICS_PER_MESSAGE) result.push(topics.slice(i, i + TOPICS_PER_MESSAGE));
  return result;
}

function cpuUs(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

const api: ClientApi = {
  connect(params: ConnectParams): Promise<ConnectResult> {
    // Tokens are signed before the clock starts: the accept rate measures the server, not us.
    const tokens: (string | undefined)[] = [];
    for (let i = 0; i < params.count; i++) {
      tokens.push(
        params.jwtSecret === undefined
          ? undefined
          : jwt.sign({ sub: `user-${params.firstIndex + i}` }, params.jwtSecret, {
              algorithm: 'HS256',
              expiresIn: 3600,
            }),
      );
    }
    const sameSteps =
      params.topics.kind === 'range' || params.topics.kind === 'mixed'
        ? undefined
        : handshakeSteps(params.protocol, chunks(topicsOf(params.topics, 0)));
    return new Promise((resolve) => {
      const startMs = clockMs();
      const cpuStart = cpuUs();
      let next = 0;
      let inFlight = 0;
      let opened = 0;
      let failed = 0;
      let firstError: string | undefined;
      const launch = (): void => {
        while (inFlight < params.concurrency && next < params.count) {
          const i = next++;
          inFlight++;
          const index = params.firstIndex + i;
          const connection = new LoadConnection(
            {
              port: params.port,
              path: params.path,
              protocol: params.protocol,
              token: tokens[i],
              localAddress: params.localAddresses[i % params.localAddresses.length],
              steps: sameSteps ?? handshakeSteps(params.protocol, chunks(topicsOf(params.topics, index))),
              handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
            },
            counters,
            (error) => {
              inFlight--;
              if (error === undefined) opened++;
              else {
                failed++;
                firstError ??= error;
              }
              if (opened + failed === params.count) {
                resolve({ opened, failed, firstError, startMs, endMs: clockMs(), cpuUs: cpuUs() - cpuStart });
              } else {
                launch();
              }
            },
          );
          connections.push(connection);
        }
      };
      if (params.count === 0) resolve({ opened: 0, failed: 0, startMs, endMs: startMs, cpuUs: 0 });
      else launch();
    });
  },

  stormConnect,

  async stormArm(): Promise<void> {
    stormArm();
  },

  async stormSnapshot({ times }): Promise<StormSnapshot> {
    return stormSnapshot(times);
  },

  async stormCloseAll(): Promise<void> {
    stormCloseAll();
  },

  async reset({ sampleEvery }): Promise<void> {
    counters.reset(sampleEvery);
  },

  async snapshot({ histogram }): Promise<ClientSnapshot> {
    return {
      frames: counters.frames,
      reads: counters.reads,
      bytes: counters.bytes,
      lastFrameMs: counters.lastFrameMs,
      cpuUs: cpuUs(),
      open: counters.open,
      lostAfterReady: counters.lostAfterReady,
      negativeLatencies: counters.histogram.negative,
      histogram: histogram ? counters.histogram.toSparse() : undefined,
    };
  },

  async closeAll(): Promise<void> {
    for (const connection of connections) connection.destroy();
    connections.length = 0;
    counters.open = 0;
    check?.socket.close();
    check = undefined;
  },

  /**
   * A cross-check of the raw Engine.IO client: the official socket.io-client subscribes the same
   * way and must receive the same message the raw clients count.
   */
  async socketIoCheckStart({ port, topic }): Promise<void> {
    const socket = socketIoClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false });
    const received = new Promise<string>((resolve) =>
      socket.once('m', (message: unknown) => resolve(JSON.stringify(message))),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('socket.io-client did not subscribe within 5 s')), 5_000);
      socket.once('connect_error', (error: Error) => reject(error));
      socket.once('connect', () => {
        socket.emit('subscribe', [topic], () => {
          clearTimeout(timer);
          resolve();
        });
      });
    });
    check = { socket, received };
  },

  async socketIoCheckResult({ timeoutMs }): Promise<string> {
    if (check === undefined) throw new Error('socketIoCheckStart() first');
    const { socket, received } = check;
    check = undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        received,
        new Promise<string>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`socket.io-client received nothing within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      socket.close();
    }
  },
};

serve(api);
