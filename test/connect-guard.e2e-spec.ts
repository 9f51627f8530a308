import 'reflect-metadata';
import type { IncomingMessage } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  OnWseConnect,
  OnWseEvent,
  TopicRegistryService,
  WseModule,
  WseWsAdapter,
  type WseClaims,
  type WseConnectGuard,
  type WseConnectionInfo,
  type WseConnectVerdict,
  type WseEventContext,
  type WseModuleOptions,
} from '../src/index.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * Issue 16, the handshake hook: an injectable connect guard refuses (4403, nothing delivered)
 * or enriches a connection before server_ready, asynchronously, with a bound on its time.
 */

/** An application service the guard depends on (proves it is resolved with DI). */
@Injectable()
class Tenants {
  readonly checked: string[] = [];

  async lookup(sub: string): Promise<{ active: boolean; plan?: string } | 'hang' | 'throw'> {
    this.checked.push(sub);
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (sub === 'slowpoke') return 'hang';
    if (sub === 'buggy') return 'throw';
    return sub.startsWith('banned') ? { active: false } : { active: true, plan: sub === 'vip' ? 'gold' : 'free' };
  }
}

@Injectable()
class TenantGuard implements WseConnectGuard {
  constructor(private readonly tenants: Tenants) {}

  async canConnect(request: IncomingMessage, claims: WseClaims | null): Promise<WseConnectVerdict> {
    if (claims === null) {
      // Anonymous mode: the application authenticates in its own way.
      const user = request.headers['x-demo-user'];
      return typeof user === 'string' ? { userId: user, claims: { via: 'header' } } : false;
    }
    const tenant = await this.tenants.lookup(String(claims.sub));
    if (tenant === 'hang') return new Promise<never>(() => undefined);
    if (tenant === 'throw') throw new Error('tenant database unreachable');
    return tenant.active ? { claims: { plan: tenant.plan } } : false;
  }
}

@Injectable()
class Probe {
  readonly connects: Array<{ userId: string | null; claims: WseClaims | null }> = [];

  @OnWseConnect()
  onConnect(connection: WseConnectionInfo): void {
    this.connects.push({ userId: connection.userId, claims: connection.claims });
  }

  @OnWseEvent('whoami')
  whoami(_payload: unknown, { connection }: WseEventContext): unknown {
    return { user: connection.userId, plan: connection.claims?.plan ?? null };
  }
}

async function start(options: WseModuleOptions): Promise<{ app: INestApplication; url: string; probe: Probe }> {
  @Module({ imports: [WseModule.forRoot(options)], providers: [Tenants, Probe, TenantGuard] })
  class GuardTestModule {}
  const app = await NestFactory.create(GuardTestModule, { logger: false, abortOnError: false });
  app.useWebSocketAdapter(new WseWsAdapter(app));
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as { port: number }).port;
  return { app, url: `ws://127.0.0.1:${port}/wse`, probe: app.get(Probe) };
}

describe('a connect guard (an injectable class with a dependency)', () => {
  let server: { app: INestApplication; url: string; probe: Probe };
  const open: TestClient[] = [];
  const url = (sub: string) => `${server.url}?token=${signToken({ sub })}`;

  beforeAll(async () => {
    server = await start({ auth: { jwtSecret: TEST_SECRET }, connectGuard: TenantGuard, connectGuardTimeoutMs: 300 });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((client) => client.close()));
    await eventually(
      () => server.app.get(TopicRegistryService).connectionCount === 0,
      2_000,
      'every connection to close',
    );
  });
  afterAll(async () => {
    await server.app.close();
  });

  it('accepts and enriches: the claims it adds reach hooks and handlers', async () => {
    const { client, ready } = await TestClient.ready(url('vip'));
    open.push(client);

    expect((ready.p.details as { user_id: string }).user_id).toBe('vip');
    client.send({ t: 'whoami' });
    expect(await client.nextJson()).toEqual({ user: 'vip', plan: 'gold' });
    expect(server.probe.connects.at(-1)).toEqual({
      userId: 'vip',
      claims: expect.objectContaining({ sub: 'vip', plan: 'gold' }),
    });
    expect(server.app.get(Tenants).checked).toContain('vip');
  });

  it('refuses with 4403 "forbidden", and the client receives nothing at all', async () => {
    const client = await TestClient.connect(url('banned-bob'));

    expect(await client.closed()).toEqual({ code: 4403, reason: 'forbidden' });
    expect(client.frames).toEqual([]);
    expect(server.app.get(TopicRegistryService).connectionCount).toBe(0);
  });

  it('sends server_ready first even when the client spoke before being accepted, and loses nothing', async () => {
    const client = await TestClient.connect(url('eager'));
    open.push(client);
    // Sent while the guard is still deciding (it takes 20 ms).
    client.send({ t: 'whoami' });
    client.send({ t: 'ping', p: { client_timestamp: 1 } });

    const [ready, ...answers] = await client.take(3);
    expect((ready.json as { t: string }).t).toBe('server_ready');
    // The PONG is answered at once, the event after its handler ran: either may come first.
    expect(answers.map((frame) => frame.json)).toEqual(
      expect.arrayContaining([
        { user: 'eager', plan: 'free' },
        expect.objectContaining({ t: 'PONG', p: expect.objectContaining({ client_timestamp: 1 }) }),
      ]),
    );
  });

  it('closes with 1013 when the guard does not answer in time', async () => {
    const client = await TestClient.connect(url('slowpoke'));

    expect(await client.closed(2_000)).toEqual({ code: 1013, reason: 'connect check timed out' });
    expect(client.frames).toEqual([]);
  });

  it('closes with 1011 when the guard throws', async () => {
    const client = await TestClient.connect(url('buggy'));

    expect(await client.closed()).toEqual({ code: 1011, reason: 'connect check failed' });
    expect(client.frames).toEqual([]);
  });

  it('still refuses a bad token first, with AUTH_FAILED and 4401, without asking the guard', async () => {
    const checked = server.app.get(Tenants).checked.length;
    const client = await TestClient.connect(`${server.url}?token=garbage`);

    expect(((await client.nextJson()) as { p: { code: string } }).p.code).toBe('AUTH_FAILED');
    expect((await client.closed()).code).toBe(4401);
    expect(server.app.get(Tenants).checked.length).toBe(checked);
  });
});

describe('a connect guard in anonymous mode (the application authenticates)', () => {
  let server: { app: INestApplication; url: string; probe: Probe };

  beforeAll(async () => {
    server = await start({ auth: { anonymous: true }, connectGuard: TenantGuard });
  });
  afterAll(async () => {
    await server.app.close();
  });

  it('sets the user id and claims of the connection', async () => {
    const { client, ready } = await TestClient.ready(server.url, { headers: { 'x-demo-user': 'carol' } });
    try {
      expect((ready.p.details as { user_id: string }).user_id).toBe('carol');
      expect(server.probe.connects.at(-1)).toEqual({ userId: 'carol', claims: { via: 'header' } });
    } finally {
      await client.close();
    }
  });

  it('refuses a handshake it cannot authenticate', async () => {
    const client = await TestClient.connect(server.url);
    expect(await client.closed()).toEqual({ code: 4403, reason: 'forbidden' });
    expect(client.frames).toEqual([]);
  });
});

describe('a connect guard given as an object', () => {
  it('is called synchronously and may answer true', async () => {
    const seen: Array<string | undefined> = [];
    const guard: WseConnectGuard = {
      canConnect: (request) => {
        seen.push(request.url);
        return true;
      },
    };
    const server = await start({ auth: { anonymous: true }, connectGuard: guard });
    try {
      const { client } = await TestClient.ready(`${server.url}?room=1`);
      await client.close();
      expect(seen).toEqual(['/wse?room=1']);
    } finally {
      await server.app.close();
    }
  });

  it('is refused at start when it has no canConnect method', async () => {
    const failure = await start({ auth: { anonymous: true }, connectGuard: {} as WseConnectGuard }).then(
      () => 'started',
      (error: unknown) => (error as Error).message,
    );
    expect(failure).toBe(
      'Invalid WseModule options:\n  - connectGuard: must be a class or an object with a canConnect(request, claims) method (got {})',
    );
  });
});
