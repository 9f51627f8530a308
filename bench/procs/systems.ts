import 'reflect-metadata';
import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import jwt, { type JwtPayload } from 'jsonwebtoken';
import { Server as SocketIoServer } from 'socket.io';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { pathToFileURL } from 'node:url';
import * as current from '../../src/index.js';
import { findHandshakeToken } from '../../src/transport/auth/token-source.js';
import type { WseModuleOptions } from '../../src/index.js';
import type { BenchMessage } from '../lib/clock.js';
import type { ServerStartParams, SystemKind } from '../lib/apis.js';

/** Redis channel prefix every system uses, so an external `PUBLISH wse:<topic>` reaches them all. */
export const CHANNEL_PREFIX = 'wse:';

/** What the server process needs of a system under test. */
export interface BenchSystem {
  readonly port: number;
  readonly path: string;
  /** One fan-out of `message` to this instance's subscribers of `topic`. */
  publishLocal(topic: string, message: BenchMessage): void;
  /** One publish through Redis, to every instance's subscribers of `topic`. */
  publishRedis(topic: string, message: BenchMessage): void;
  /** Publishes sent to Redis and not yet acknowledged. */
  redisInFlight(): number;
  redisPublished(): number;
  connections(): number;
  dropped(): number;
  /** Resolves once Redis (when configured) is connected and subscribed. */
  ready(): Promise<void>;
  /** A graceful stop as the application would do it: every connection closed with a restart code. */
  shutdown(): Promise<void>;
}

/** nestjs-wse's `server_ready` with the same fields (and so the same size for the same user id). */
function readyFrame(userId: string | null): string {
  return JSON.stringify({
    c: 'WSE',
    t: 'server_ready',
    p: {
      message: 'Connection established',
      details: {
        version: 1,
        features: {
          subscriptions: true,
          patterns: true,
          server_ping: true,
          redis: false,
          category_prefix: true,
          sync_request: true,
          msgpack: true,
          compression: true,
          url_topics: true,
          encryption: false,
          recovery: false,
        },
        connection_id: randomUUID(),
        server_time: new Date().toISOString(),
        user_id: userId,
      },
    },
    v: 1,
  });
}

/** HS256 only, `exp` required: the checks nestjs-wse makes by default. */
function verifyHandshake(request: IncomingMessage, key: KeyObject): JwtPayload | undefined {
  // The same lookup as nestjs-wse's (its own function): the baseline does the same work.
  const token = findHandshakeToken(request, 'access_token');
  if (token === undefined) return undefined;
  try {
    const claims = jwt.verify(token, key, { algorithms: ['HS256'] });
    return typeof claims === 'object' && typeof claims.exp === 'number' ? claims : undefined;
  } catch {
    return undefined;
  }
}

export async function startSystem(params: ServerStartParams): Promise<BenchSystem> {
  switch (params.system) {
    case 'ws-naive':
    case 'ws-prebuilt':
      return PlainWsSystem.start(params.system, params.redisUrl, undefined, params.port);
    case 'b-jwt':
      if (params.jwtSecret === undefined) throw new Error('b-jwt needs a jwtSecret');
      return PlainWsSystem.start('ws-prebuilt', params.redisUrl, params.jwtSecret, params.port);
    case 'socketio':
      return SocketIoSystem.start(params.redisUrl, params.jwtSecret, params.port);
    case 'wse':
      return WseSystem.start(current, params.redisUrl, params.jwtSecret, undefined, scaleOptions(params), params.port);
    case 'wse-base':
      return WseSystem.start(await baselineLibrary(), params.redisUrl, params.jwtSecret);
    case 'wse-history':
      return WseSystem.start(current, params.redisUrl, params.jwtSecret, HISTORY);
    default: {
      const never: never = params.system;
      throw new Error(`unknown system ${String(never)}`);
    }
  }
}

async function listen(server: HttpServer, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A shared options object: a Buffer sent as a text frame, not binary. */
const SEND_TEXT = Object.freeze({ binary: false });
const SUBSCRIBED = '{"t":"subscription_update"}';

/**
 * (a) and (b): plain `ws`, topics in a Map of Sets. (a) serializes per recipient
 * (`c.send(JSON.stringify(msg))`); (b) serializes once and sends the same Buffer to each. With
 * Redis they are the hand-rolled multi-instance version: PSUBSCRIBE `wse:*` and fan out what
 * arrives ((a) parses it and re-serializes per recipient, (b) sends the received Buffer as is).
 */
class PlainWsSystem implements BenchSystem {
  private readonly topics = new Map<string, Set<WebSocket>>();
  private pub: Redis | undefined;
  private sub: Redis | undefined;
  private inFlight = 0;
  private acked = 0;
  private subscribed = false;

  private constructor(
    private readonly naive: boolean,
    private readonly wss: WebSocketServer,
    readonly port: number,
  ) {}

  readonly path = '/ws';

  /**
   * With `jwtSecret`, the same-work baseline `b-jwt`: the upgrade reads the token where
   * nestjs-wse reads it, verifies it with jsonwebtoken (the key a KeyObject made once, as
   * nestjs-wse does), refuses with 401 before the 101, and the first frame is a `server_ready`
   * of the same fields and size as nestjs-wse's.
   */
  static async start(
    kind: 'ws-naive' | 'ws-prebuilt',
    redisUrl: string | undefined,
    jwtSecret?: string,
    port?: number,
  ): Promise<PlainWsSystem> {
    const server = createServer();
    if (jwtSecret === undefined) {
      const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
      const system = new PlainWsSystem(kind === 'ws-naive', wss, await listen(server, port));
      wss.on('connection', (ws) => system.onConnection(ws));
      if (redisUrl !== undefined) system.connectRedis(redisUrl);
      return system;
    }
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    const system = new PlainWsSystem(kind === 'ws-naive', wss, await listen(server, port));
    const key = createSecretKey(Buffer.from(jwtSecret, 'utf8'));
    server.on('upgrade', (request, socket, head) => {
      const path = request.url === undefined ? '' : request.url.split('?', 1)[0];
      const claims = path === '/ws' ? verifyHandshake(request, key) : undefined;
      if (claims === undefined) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => {
        ws.send(readyFrame(typeof claims.sub === 'string' ? claims.sub : null));
        system.onConnection(ws);
      });
    });
    if (redisUrl !== undefined) system.connectRedis(redisUrl);
    return system;
  }

  async shutdown(): Promise<void> {
    for (const ws of this.wss.clients) ws.close(1012, 'service restart');
    this.wss.close();
  }

  private onConnection(ws: WebSocket): void {
    const mine: string[] = [];
    ws.on('error', () => undefined);
    ws.on('message', (data: RawData) => {
      const frame = JSON.parse(String(data)) as { t?: string; p?: { topics?: string[] } };
      if (frame.t !== 'subscription' || !Array.isArray(frame.p?.topics)) return;
      for (const topic of frame.p.topics) {
        let set = this.topics.get(topic);
        if (set === undefined) this.topics.set(topic, (set = new Set()));
        set.add(ws);
        mine.push(topic);
      }
      ws.send(SUBSCRIBED);
    });
    ws.on('close', () => {
      for (const topic of mine) this.topics.get(topic)?.delete(ws);
    });
  }

  private connectRedis(url: string): void {
    // (b) is the tuned baseline: auto-pipelining, the best plain ioredis offers. (a) keeps defaults.
    this.pub = new Redis(url, { enableAutoPipelining: !this.naive });
    this.sub = new Redis(url);
    this.pub.on('error', () => undefined);
    this.sub.on('error', () => undefined);
    this.sub.psubscribe(`${CHANNEL_PREFIX}*`).then(() => (this.subscribed = true));
    this.sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, payload: Buffer) => {
      const clients = this.topics.get(channel.toString('utf8', CHANNEL_PREFIX.length));
      if (clients === undefined) return;
      if (this.naive) {
        const message: unknown = JSON.parse(payload.toString());
        for (const c of clients) c.send(JSON.stringify(message));
      } else {
        for (const c of clients) c.send(payload, SEND_TEXT);
      }
    });
  }

  publishLocal(topic: string, message: BenchMessage): void {
    const clients = this.topics.get(topic);
    if (clients === undefined) return;
    if (this.naive) {
      for (const c of clients) c.send(JSON.stringify(message));
    } else {
      const data = Buffer.from(JSON.stringify(message));
      for (const c of clients) c.send(data, SEND_TEXT);
    }
  }

  publishRedis(topic: string, message: BenchMessage): void {
    this.inFlight++;
    this.pub!.publish(CHANNEL_PREFIX + topic, JSON.stringify(message)).then(
      () => {
        this.inFlight--;
        this.acked++;
      },
      () => this.inFlight--,
    );
  }

  redisInFlight(): number {
    return this.inFlight;
  }

  redisPublished(): number {
    return this.acked;
  }

  connections(): number {
    return this.wss.clients.size;
  }

  dropped(): number {
    return 0;
  }

  async ready(): Promise<void> {
    if (this.sub === undefined) return;
    await waitFor(() => this.subscribed && this.pub?.status === 'ready', 'Redis');
  }
}

/**
 * (c): Socket.IO 4, one room per topic, `io.to(topic).emit('m', msg)`. With Redis, the
 * documented `@socket.io/redis-adapter` setup (a pub client and its duplicate).
 */
class SocketIoSystem implements BenchSystem {
  readonly path = '/socket.io/?EIO=4&transport=websocket';
  private pub: Redis | undefined;
  private sub: Redis | undefined;

  private constructor(
    private readonly io: SocketIoServer,
    readonly port: number,
  ) {}

  /**
   * With `jwtSecret`, a JWT check in the middleware (`io.use`), where Socket.IO's documentation
   * puts authentication: the token of `auth.token`, the `Authorization` header or `?token=`,
   * verified with jsonwebtoken (HS256, `exp` required) before the namespace connect is answered.
   */
  static async start(redisUrl: string | undefined, jwtSecret?: string, port?: number): Promise<SocketIoSystem> {
    const server = createServer();
    const io = new SocketIoServer(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
    const system = new SocketIoSystem(io, await listen(server, port));
    if (jwtSecret !== undefined) {
      const key = createSecretKey(Buffer.from(jwtSecret, 'utf8'));
      io.use((socket, next) => {
        const fromAuth = (socket.handshake.auth as { token?: unknown }).token;
        const header = socket.handshake.headers.authorization;
        const fromQuery = socket.handshake.query.token;
        const token =
          typeof fromAuth === 'string' && fromAuth !== ''
            ? fromAuth
            : header !== undefined && /^Bearer\s+/i.test(header)
              ? header.replace(/^Bearer\s+/i, '').trim()
              : typeof fromQuery === 'string'
                ? fromQuery
                : undefined;
        try {
          if (token === undefined) throw new Error('no token');
          const claims = jwt.verify(token, key, { algorithms: ['HS256'] });
          if (typeof claims !== 'object' || typeof claims.exp !== 'number') throw new Error('no exp');
          (socket.data as { userId?: unknown }).userId = claims.sub;
          next();
        } catch {
          next(new Error('unauthorized'));
        }
      });
    }
    io.on('connection', (socket) => {
      socket.on('subscribe', (topics: unknown, ack: unknown) => {
        if (Array.isArray(topics)) void socket.join(topics as string[]);
        if (typeof ack === 'function') (ack as (ok: boolean) => void)(true);
      });
    });
    if (redisUrl !== undefined) {
      system.pub = new Redis(redisUrl);
      system.sub = system.pub.duplicate();
      system.pub.on('error', () => undefined);
      system.sub.on('error', () => undefined);
      io.adapter(createAdapter(system.pub, system.sub));
    }
    return system;
  }

  publishLocal(topic: string, message: BenchMessage): void {
    this.io.local.to(topic).emit('m', message);
  }

  publishRedis(topic: string, message: BenchMessage): void {
    this.io.to(topic).emit('m', message);
  }

  redisInFlight(): number {
    // The adapter publishes without handing us the promise; ioredis's queue of commands
    // awaiting a reply is the in-flight count.
    return (this.pub as unknown as { commandQueue: { length: number } } | undefined)?.commandQueue.length ?? 0;
  }

  redisPublished(): number {
    return -1;
  }

  connections(): number {
    return this.io.engine.clientsCount;
  }

  async shutdown(): Promise<void> {
    await this.io.close();
  }

  dropped(): number {
    return 0;
  }

  async ready(): Promise<void> {
    if (this.sub === undefined) return;
    await waitFor(() => this.sub?.status === 'ready' && this.pub?.status === 'ready', 'Redis');
    // The adapter's PSUBSCRIBE goes out as soon as the sub client connects; give it a round trip.
    await this.pub!.ping();
    await this.sub.ping().catch(() => undefined);
  }
}

/**
 * (d): nestjs-wse through its public API only: a Nest app importing WseModule.forRoot, on Nest's
 * ws driver as the README sets it up (`WseWsAdapter`, the library's subclass of Nest's
 * `WsAdapter`), publishing through WsePublisher.
 */
/**
 * What the bench uses of a nestjs-wse build: today's (`src/`) or a baseline build's
 * (`--baseline=`). Older builds kept the operations on WsePublisher; WseAdmin has them now.
 */
interface WseLibrary {
  readonly WseModule: typeof current.WseModule;
  readonly WsePublisher: typeof current.WsePublisher;
  readonly WseWsAdapter: typeof current.WseWsAdapter;
  readonly WseAdmin?: typeof current.WseAdmin;
}

/** The operations the bench reads, wherever the build keeps them. */
type WseOperations = Pick<current.WseAdmin, 'healthSnapshot' | 'redisConnected' | 'multiInstance'>;

/** `wse-history`: every bench topic keeps history, deep enough to recover 500 messages. */
const HISTORY: WseModuleOptions['recovery'] = { topics: ['bench:*'], size: 1000, maxReplay: 1000 };

/** The Redis options of issue 15 (routing, cluster) as the scale scenario sets them. */
type ScaleRedisOptions = NonNullable<WseModuleOptions['redis']> & {
  routing?: 'pattern' | 'interest';
  cluster?: { nodes: string[] };
};

function scaleOptions(params: ServerStartParams): ScaleRedisOptions {
  const options: ScaleRedisOptions = {};
  if (params.redisRouting !== undefined) options.routing = params.redisRouting;
  if (params.redisClusterNodes !== undefined) options.cluster = { nodes: [...params.redisClusterNodes] };
  return options;
}

async function baselineLibrary(): Promise<WseLibrary> {
  const path = process.env.WSE_BENCH_BASELINE;
  if (path === undefined) throw new Error('wse-base needs --baseline=<index.js of a built nestjs-wse>');
  return (await import(pathToFileURL(path).href)) as WseLibrary;
}

class WseSystem implements BenchSystem {
  readonly path = '/wse';
  private issued = 0;

  private constructor(
    private readonly app: INestApplication,
    private readonly publisher: current.WsePublisher,
    private readonly admin: WseOperations,
    readonly port: number,
  ) {}

  static async start(
    lib: WseLibrary,
    redisUrl: string | undefined,
    jwtSecret: string | undefined,
    recovery?: WseModuleOptions['recovery'],
    scale: ScaleRedisOptions = {},
    fixedPort = 0,
  ): Promise<WseSystem> {
    const redis: ScaleRedisOptions | undefined =
      scale.cluster !== undefined ? scale : redisUrl === undefined ? undefined : { ...scale, url: redisUrl };
    const options: WseModuleOptions = {
      path: '/wse',
      // Above the bench's largest connection count; everything else stays at its default.
      maxConnections: 50_000,
      auth: jwtSecret === undefined ? { anonymous: true } : { jwtSecret },
      redis,
      ...(recovery === undefined ? {} : { recovery }),
    };
    class BenchAppModule {}
    Module({ imports: [lib.WseModule.forRoot(options)] })(BenchAppModule);
    const app = await NestFactory.create(BenchAppModule, { logger: false, abortOnError: false });
    app.useWebSocketAdapter(new lib.WseWsAdapter(app));
    await app.listen(fixedPort, '127.0.0.1');
    const port = (app.getHttpServer().address() as AddressInfo).port;
    const publisher = app.get(lib.WsePublisher);
    const admin = (lib.WseAdmin === undefined ? publisher : app.get(lib.WseAdmin)) as WseOperations;
    return new WseSystem(app, publisher, admin, port);
  }

  publishLocal(topic: string, message: BenchMessage): void {
    this.publisher.publishLocal(topic, message);
  }

  publishRedis(topic: string, message: BenchMessage): void {
    this.issued++;
    this.publisher.publish(topic, message);
  }

  redisInFlight(): number {
    const snapshot = this.admin.healthSnapshot();
    return this.issued - snapshot.redis_messages_published - snapshot.redis_publish_errors;
  }

  redisPublished(): number {
    return this.admin.healthSnapshot().redis_messages_published;
  }

  connections(): number {
    return this.admin.healthSnapshot().connections;
  }

  dropped(): number {
    return this.admin.healthSnapshot().outbound_dropped;
  }

  async ready(): Promise<void> {
    if (!this.admin.multiInstance) return;
    await waitFor(() => this.admin.redisConnected(), 'nestjs-wse Redis');
  }

  /** Nest's shutdown: the gateway closes every connection with the shutdown code (1012 by default). */
  async shutdown(): Promise<void> {
    await this.app.close();
  }
}

export type { SystemKind };
