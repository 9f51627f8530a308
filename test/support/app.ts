import type { INestApplication } from '@nestjs/common';
import { createApp } from '../../examples/server/bootstrap.js';
import { readEnvironment } from '../../examples/server/env.config.js';
import { TopicRegistryService } from '../../src/index.js';

/** A running example app on 127.0.0.1 and a free port. */
export interface RunningApp {
  readonly app: INestApplication;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** `ws://127.0.0.1:<port><path>` */
  readonly wsUrl: string;
  readonly registry: TopicRegistryService;
  close(): Promise<void>;
}

/**
 * The protocol suites subscribe to topics of their own (`news`, `orders:*`), which the example's
 * subscription rules (user:{sub}:* and chat:*) refuse: they run with every topic open unless
 * `env` names WSE_SUBSCRIBE_ALLOW itself (`EXAMPLE_SUBSCRIBE_ALLOW` for the example's rules, as
 * the demo and topic permission suites do).
 */
export const OPEN_TOPICS: Readonly<Record<string, string>> = Object.freeze({ WSE_SUBSCRIBE_ALLOW: '*' });

/**
 * Starts the example app exactly as `npm start` builds it, from environment variables (the
 * contract's names), on port 0. Logging is off unless `WSE_TEST_LOGS=1`. For the example app's
 * own suites only: the library's suites start an engine app (engine-app.ts).
 */
export async function startApp(env: Record<string, string> = {}): Promise<RunningApp> {
  const environment = readEnvironment({ ...OPEN_TOPICS, ...env, PORT: '0', HOST: '127.0.0.1' });
  const app = await createApp(environment, process.env.WSE_TEST_LOGS === '1' ? undefined : false);
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  const port = address.port;
  return {
    app,
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}${environment.wse.path ?? '/wse'}`,
    registry: app.get(TopicRegistryService),
    close: () => app.close(),
  };
}
