import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { WseWsAdapter } from 'nestjs-wse';
import { AppModule } from './app.module.js';

// Fastify, and no Express anywhere in node_modules: the engine's HTTP endpoints use Nest's
// HTTP adapter only.
const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter());
app.useWebSocketAdapter(new WseWsAdapter(app));
app.enableShutdownHooks();
await app.listen(0, '127.0.0.1');
console.log(`listening on ${await app.getUrl()}`);
