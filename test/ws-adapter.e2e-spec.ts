import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import WebSocket from 'ws';
import { startEngineApp, type EngineApp } from './support/engine-app.js';

/** The application's own gateway, on its own path, next to the engine's. */
@WebSocketGateway({ path: '/app' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): { event: string; data: unknown } {
    return { event: 'echo', data };
  }
}

/** Sends an upgrade for `path` by hand and returns what came back before the socket ended or 1.5 s passed. */
function rawUpgrade(port: number, path: string): Promise<{ text: string; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, ended: false });
    }, 1_500);
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, ended: true });
    });
    socket.on('error', reject);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
  });
}

function firstMessage(url: string, send?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`no message from ${url} within 3 s`));
    }, 3_000);
    socket.once('open', () => send !== undefined && socket.send(send));
    socket.once('message', (data: Buffer) => {
      clearTimeout(timer);
      socket.close();
      resolve(data.toString('utf8'));
    });
    socket.once('error', reject);
  });
}

/**
 * WseWsAdapter's upgrade listener, which reads plain request paths itself: the engine's path,
 * an application gateway's path with its message handlers, paths left to Nest's own parse,
 * unknown paths, and the listener taken off the HTTP server when the app closes.
 */
describe('WseWsAdapter routing upgrades', () => {
  let s: EngineApp;

  beforeAll(async () => {
    s = await startEngineApp({}, { providers: [EchoGateway] });
  });

  afterAll(async () => {
    await s?.close();
  });

  it("greets the engine's path with server_ready, the query aside", async () => {
    expect(JSON.parse(await firstMessage(`${s.wsUrl}?topics=`))).toMatchObject({ t: 'server_ready' });
  });

  it("routes the application's gateway path to its message handlers", async () => {
    const answer = await firstMessage(`ws://127.0.0.1:${s.port}/app`, JSON.stringify({ event: 'echo', data: 'hi' }));
    expect(JSON.parse(answer)).toEqual({ event: 'echo', data: 'hi' });
  });

  it('routes a path only the URL parse resolves (dot segments) as Nest does', async () => {
    for (const path of ['/x/../wse?a=b', '/./wse']) {
      const { text } = await rawUpgrade(s.port, path);
      expect([path, text.slice(0, 12)]).toEqual([path, 'HTTP/1.1 101']);
      expect(text).toContain('"t":"server_ready"');
    }
  });

  it('drops an upgrade to a path no gateway serves (the URL parse keeps percent-encoding, so /%77se too)', async () => {
    for (const path of ['/nope', '/wse/', '/wsex?token=a', '/%77se']) {
      const result = await rawUpgrade(s.port, path);
      expect([path, result]).toEqual([path, { text: '', ended: true }]);
    }
  });

  it('takes its upgrade listener off the HTTP server when the app closes', async () => {
    const own = await startEngineApp();
    const server = own.app.getHttpServer() as Server;
    expect(server.listenerCount('upgrade')).toBe(1);
    await own.close();
    expect(server.listenerCount('upgrade')).toBe(0);
  });
});
