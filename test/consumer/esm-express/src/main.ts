import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { WseWsAdapter } from 'nestjs-wse';
import { AppModule } from './app.module.js';

// An ES module app: top-level await is fine here.
const app = await NestFactory.create(AppModule);
app.useWebSocketAdapter(new WseWsAdapter(app));
app.enableShutdownHooks();
await app.listen(0, '127.0.0.1');
console.log(`listening on ${await app.getUrl()}`);
