import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WseWsAdapter } from '../src/index.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { TestClient } from './support/ws-client.js';

describe("the README's example app", () => {
  let app: INestApplication;
  let wsUrl: string;
  let orders: { orderFilled(userId: string, orderId: string): void };

  beforeAll(async () => {
    // The example reads its secret when its module is declared, so set it before the import.
    process.env.JWT_SECRET = TEST_SECRET;
    const example = await import('../examples/minimal-app.js');
    app = await NestFactory.create(example.AppModule, { logger: false, abortOnError: false });
    app.useWebSocketAdapter(new WseWsAdapter(app));
    await app.listen(0, '127.0.0.1');
    wsUrl = `ws://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}/wse`;
    orders = app.get(example.OrdersService);
  });
  afterAll(async () => {
    await app.close();
    delete process.env.JWT_SECRET;
  });

  it("delivers a domain event to the user's own topic, and only to that user", async () => {
    const { client: alice } = await TestClient.ready(`${wsUrl}?token=${signToken({ sub: 'alice' })}`);
    const { client: bob } = await TestClient.ready(`${wsUrl}?token=${signToken({ sub: 'bob' })}`);

    orders.orderFilled('alice', 'o-1');

    expect(await alice.nextJson()).toEqual({ t: 'order_filled', p: { orderId: 'o-1' } });
    await bob.expectNothing(150);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('answers /health through its own Terminus controller and serves /metrics, and nothing under /api', async () => {
    const base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { info: { wse: { status: string } } }).info.wse.status).toBe('up');
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('wse_connections');
    expect((await fetch(`${base}/api/connections`)).status).toBe(404);
  });
});
