import { httpCall, type HttpAnswer } from './http.js';
import { randomBytes } from 'node:crypto';
import {
  RedisPubSubService,
  WseHealthIndicator,
  type WseModuleOptions,
  type WseRedisOptions,
} from '../../src/index.js';
import { startEngineApp, type EngineApp } from './engine-app.js';
import { eventually, TestClient } from './ws-client.js';

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

/**
 * Until every instance's publishes reach every other instance: an instance refuses to publish
 * (to the DLQ) until it has proven the whole bus receives, so each publishes a warm-up message
 * every 50 ms until a watcher on each other instance got one. The DLQs are emptied after.
 */
export async function untilWhole(apps: readonly RedisApp[], connectedWithinMs = 10_000): Promise<void> {
  await eventually(
    () => apps.every((app) => app.redis.redisConnected()),
    connectedWithinMs,
    'every instance delivering',
  );
  const watchers = await Promise.all(apps.map(async (app) => (await TestClient.ready(app.wsUrl)).client));
  try {
    await Promise.all(watchers.map((watcher) => watcher.subscribe(['warm'])));
    for (let from = 0; from < apps.length; from++) {
      const others = watchers.filter((_, i) => i !== from);
      const deadline = Date.now() + 10_000;
      const heard = (): boolean =>
        others.every((watcher) => watcher.frames.some((f) => (f.json as { from?: number })?.from === from));
      while (!heard()) {
        if (Date.now() > deadline) throw new Error(`instance ${from} could not reach the others within 10 s`);
        apps[from].publisher.publish('warm', { from });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } finally {
    await Promise.all(watchers.map((watcher) => watcher.close()));
    for (const app of apps) app.redis.getDlqEntries();
  }
}
