import { httpCall, type HttpAnswer } from './http.js';
import { randomBytes } from 'node:crypto';
import {
  RedisPubSubService,
  WseHealthIndicator,
  type WseModuleOptions,
  type WseRedisOptions,
} from '../../src/index.js';
import { startEngineApp, type EngineApp } from './engine-app.js';

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

/** An engine app (see engine-app.ts) in multi-instance mode, with its Redis side at hand. */
export interface RedisApp extends EngineApp {
  /** The Redis channel prefix this app uses. */
  readonly prefix: string;
  readonly redis: RedisPubSubService;
  readonly health: WseHealthIndicator;
  /** `GET /health` */
  getHealth(): Promise<HttpAnswer>;
  /** A server API call with the app's API key (`apiKey` must have been given). */
  api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpAnswer>;
}

/** A channel prefix no other test uses, e.g. `t3f9a1c-`. */
export function uniquePrefix(label = 't'): string {
  return `${label}${randomBytes(4).toString('hex')}:`;
}

/**
 * Starts an engine app (`startEngineApp`) with `redis` = FAST_REDIS, then a fresh prefix, then
 * the given Redis options (url included). Returns at once: Redis connects in the background, as
 * in production (see `delivering`).
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
  const engine = await startEngineApp({ ...options, redis: redisOptions });
  return {
    ...engine,
    prefix: redisOptions.prefix!,
    redis: engine.app.get(RedisPubSubService),
    health: engine.app.get(WseHealthIndicator),
    getHealth: () => httpCall(`${engine.httpUrl}/health`, 'GET'),
    api: (method, path, body) => httpCall(`${engine.httpUrl}${path}`, method, body, options.apiKey),
  };
}

export { httpCall, type HttpAnswer };
