import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { WseWsAdapter } from 'nestjs-wse';
import { AppModule } from './app.module.js';

// A CommonJS app: no top-level await, a bootstrap() as `nest new` writes it.
async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  app.useWebSocketAdapter(new WseWsAdapter(app));
  app.enableShutdownHooks();
  await app.listen(0, '127.0.0.1');
  console.log(`listening on ${await app.getUrl()}`);
}

bootstrap().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
