import { ConsoleLogger, type INestApplication, type LoggerService, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { WseWsAdapter } from 'nestjs-wse';
import { AppModule } from './app.module.js';
import type { AppEnvironment } from './env.config.js';

/** Body limit of the server API (CONTRACT section 7); larger bodies answer 413. */
const API_BODY_LIMIT = '1mb';

/**
 * Builds the example application, ready to `listen`. `main.ts` and the integration tests share
 * it, so what the tests start is what `npm start` runs.
 */
export async function createApp(
  env: AppEnvironment,
  logger: LoggerService | false = appLogger(env),
): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forEnvironment(env), {
    bodyParser: false,
    // Throw start-up errors (a bad option) to the caller instead of aborting the process.
    abortOnError: false,
    logger,
  });
  app.useWebSocketAdapter(new WseWsAdapter(app));
  app.useBodyParser('json', { limit: API_BODY_LIMIT });
  return app;
}

/** Nest's console logger at `WSE_LOG_LEVEL` and above, as text or JSON lines (`WSE_LOG_FORMAT`). */
export function appLogger(env: AppEnvironment): LoggerService {
  const order: LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];
  return new ConsoleLogger({ json: env.logFormat === 'json', logLevels: order.slice(order.indexOf(env.logLevel)) });
}
