// The README's example: a complete Nest app using nestjs-wse. test/readme-example.e2e-spec.ts
// starts it, so it stays true. CommonJS-safe: no top-level await.
import 'reflect-metadata';
import { Controller, Get, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import {
  escapeTopicPattern,
  OnWseConnect,
  WseHealthIndicator,
  WseHttpModule,
  WseModule,
  WsePublisher,
  WseWsAdapter,
  type WseConnectionInfo,
} from 'nestjs-wse';

@Injectable()
export class OrdersService {
  constructor(private readonly wse: WsePublisher) {}

  @OnWseConnect() // every authenticated connection listens on its own user topic
  onConnect(connection: WseConnectionInfo): void {
    // escaped: a token with sub "*" gets its own topic, not every user's
    if (connection.userId) this.wse.subscribe(connection.id, [`user:${escapeTopicPattern(connection.userId)}:events`]);
  }

  orderFilled(userId: string, orderId: string): void {
    this.wse.publish(`user:${userId}:events`, { t: 'order_filled', p: { orderId } });
  }
}

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly wse: WseHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.wse.isHealthy('wse')]);
  }
}

@Module({
  imports: [
    // Without a secret the module refuses to start; `auth: { anonymous: true }` opts out of tokens.
    WseModule.forRoot({ path: '/wse', auth: { jwtSecret: process.env.JWT_SECRET } }),
    WseHttpModule.forRoot({ metrics: { path: '/metrics' } }), // opt-in: no route without it
    TerminusModule.forRoot(),
  ],
  controllers: [HealthController],
  providers: [OrdersService],
})
export class AppModule {}

export async function bootstrap(port = 3000): Promise<void> {
  const app = await NestFactory.create(AppModule);
  app.useWebSocketAdapter(new WseWsAdapter(app)); // Nest's ws driver, tuned for the engine
  app.enableShutdownHooks();
  await app.listen(port);
}
