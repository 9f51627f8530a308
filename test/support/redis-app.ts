import { httpCall, type HttpAnswer } from './http.js';
import { randomBytes } from 'node:crypto';
import { Module, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from '../../src/app/health/health.controller.js';
import {
  RedisPubSubService,
  TopicRegistryService,
  WseHealthIndicator,
  WseModule,
  WsePublisher,
  type WseHealthSnapshot,
  type WseModuleOptions,
  type WseRedisOptions,
} from '../../src/wse/index.js';

/**
 * Redis settings that make outages observable in test time: a probe every 200 ms that gives up
 * after 500 ms, reconnection after 100 ms growing to at most 500 ms. Each test's own settings
 * are merged over these.
 */
export const FAST_REDIS: Readonly<WseRedisOptions> = Object.freeze({
  probeIntervalMs: 200,
  probeTimeoutMs: 500,
  reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
});

/** An HTTP answer as the tests read it. */

/** A running in-process app with the engine, Terminus `GET /health` and custom Redis options. */
export interface RedisApp {
  readonly app: INestApplication;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** `ws://127.0.0.1:<port>/wse` */
  readonly wsUrl: string;
  /** The Redis channel prefix this app uses. */
  readonly prefix: string;
  readonly publisher: WsePublisher;
  readonly redis: RedisPubSubService;
  readonly health: WseHealthIndicator;
  readonly registry: TopicRegistryService;
  /** `publisher.healthSnapshot()` */
  snapshot(): WseHealthSnapshot;
  /** `GET /health` */
  getHealth(): Promise<HttpAnswer>;
  /** A server API call with the app's API key (`apiKey` must have been given). */
  api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpAnswer>;
  close(): Promise<void>;
}

/** A channel prefix no other test uses, e.g. `t3f9a1c-`. */
export function uniquePrefix(label = 't'): string {
  return `${label}${randomBytes(4).toString('hex')}:`;
}

@Module({})
class RedisTestAppModule {
  static with(options: WseModuleOptions): DynamicModule {
    return {
      module: RedisTestAppModule,
      imports: [TerminusModule.forRoot({ logger: false }), WseModule.forRoot(options)],
      // The example app's own health controller: the same Terminus answer as `npm start`.
      controllers: [HealthController],
    };
  }
}

/**
 * Starts an app on 127.0.0.1 and port 0 with `WseModule.forRoot({ ...options, redis })`, where
 * `redis` is FAST_REDIS, then a fresh prefix, then the given Redis options (url included).
 * Returns at once: Redis connects in the background, as in production (see `delivering`).
 * Logging is off unless `WSE_TEST_LOGS=1`.
 */
export async function startRedisApp(
  redis: WseRedisOptions,
  options: Omit<WseModuleOptions, 'redis'> = {},
): Promise<RedisApp> {
  const redisOptions: WseRedisOptions = {
    ...FAST_REDIS,
    prefix: uniquePrefix(),
    ...redis,
    reconnect: { ...FAST_REDIS.reconnect, ...redis.reconnect },
  };
  const app = await NestFactory.create(RedisTestAppModule.with({ ...options, redis: redisOptions }), {
    logger: process.env.WSE_TEST_LOGS === '1' ? undefined : false,
    abortOnError: false,
  });
  app.useWebSocketAdapter(new WsAdapter(app));
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  const httpUrl = `http://127.0.0.1:${port}`;
  const publisher = app.get(WsePublisher);
  return {
    app,
    port,
    httpUrl,
    wsUrl: `ws://127.0.0.1:${port}${options.path ?? '/wse'}`,
    prefix: redisOptions.prefix!,
    publisher,
    redis: app.get(RedisPubSubService),
    health: app.get(WseHealthIndicator),
    registry: app.get(TopicRegistryService),
    snapshot: () => publisher.healthSnapshot(),
    getHealth: () => httpCall(`${httpUrl}/health`, 'GET'),
    api: (method, path, body) => httpCall(`${httpUrl}${path}`, method, body, options.apiKey),
    close: () => app.close(),
  };
}

export { httpCall, type HttpAnswer };
