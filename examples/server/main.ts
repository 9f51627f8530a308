import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './bootstrap.js';
import { loadDotEnv, readEnvironment, type AppEnvironment } from './env.config.js';
import { WseConfigError } from 'nestjs-wse';

async function main(): Promise<void> {
  let env: AppEnvironment;
  try {
    loadDotEnv();
    env = readEnvironment();
  } catch (error) {
    if (!(error instanceof WseConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
  const app = await createApp(env);
  await app.listen(env.port, env.host);
  // Nest's own shutdown hooks re-raise the signal after closing, so the process would end "killed
  // by SIGTERM". An orchestrator expects a clean exit 0 after a graceful stop: close (clients get
  // 1012 service restart, Redis is flushed and quit) and exit, or exit 1 if closing hangs past the bound.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      setTimeout(() => process.exit(1), env.shutdownTimeoutMs).unref();
      app.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  new Logger('Main').log(
    `nestjs-wse example server on http://${env.host}:${env.port} (WebSocket ${env.wse.path ?? '/wse'})`,
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
