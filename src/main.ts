import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app/bootstrap.js';
import { loadDotEnv, readEnvironment, type AppEnvironment } from './app/env.config.js';
import { WseConfigError } from './wse/index.js';

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
  new Logger('Main').log(
    `nestjs-wse example server on http://${env.host}:${env.port} (WebSocket ${env.wse.path ?? '/wse'})`,
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
