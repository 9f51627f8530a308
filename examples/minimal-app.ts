// The README's example: a complete Nest app using nestjs-wse. test/readme-example.e2e-spec.ts
// starts it, so it stays true. In your project, import from 'nestjs-wse' instead.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { OnWseConnect, WseModule, WsePublisher, WseWsAdapter, type WseConnectionInfo } from 'nestjs-wse';

@Injectable()
export class OrdersService {
  constructor(private readonly wse: WsePublisher) {}

  @OnWseConnect() // every authenticated connection listens on its own user topic
  onConnect(connection: WseConnectionInfo): void {
    if (connection.userId) this.wse.subscribe(connection.id, [`user:${connection.userId}:events`]);
  }

  orderFilled(userId: string, orderId: string): void {
    this.wse.publish(`user:${userId}:events`, { t: 'order_filled', p: { orderId } });
  }
}

@Module({
  imports: [WseModule.forRoot({ path: '/wse', auth: { jwtSecret: process.env.JWT_SECRET } })],
  providers: [OrdersService],
})
export class AppModule {}

export async function bootstrap(port = 3000): Promise<void> {
  const app = await NestFactory.create(AppModule);
  app.useWebSocketAdapter(new WseWsAdapter(app)); // Nest's ws driver, tuned for the engine
  app.enableShutdownHooks();
  await app.listen(port);
}
