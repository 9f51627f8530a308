import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { WsAdapter } from '@nestjs/platform-ws';
import type { Observable } from 'rxjs';
import type { WebSocket, WebSocketServer } from 'ws';
import { UpgradePaths } from './upgrade-path.js';

type UpgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * Nest's ws driver, minus the per-connection message pipeline where nothing uses it.
 *
 * For every connection, `WsAdapter` builds an rxjs pipeline that JSON-parses each inbound frame
 * to route it to `@SubscribeMessage` handlers. The WSE gateway has none: it reads frames itself
 * (to answer malformed and unknown ones, which Nest's routing drops silently). So for a gateway
 * without message handlers this adapter binds nothing, which saves a parse per frame and the
 * pipeline's objects per connection (handshake rate, memory per idle connection). Gateways with
 * handlers, the application's own included, get Nest's behaviour unchanged.
 *
 * Its upgrade listener routes a request to the gateway of its path as Nest's does, but reads the
 * path off the request line where that is safe (UpgradePaths) instead of a `new URL` parse per
 * handshake; any other request goes to Nest's own listener.
 *
 * @example
 * ```ts
 * const app = await NestFactory.create(AppModule);
 * app.useWebSocketAdapter(new WseWsAdapter(app));
 * ```
 */
export class WseWsAdapter extends WsAdapter {
  /**
   * Nest's version also logs every client socket's 'error' event with its stack: a client
   * sending broken frames would write the log. The WSE gateway counts those itself (throttled
   * log, `wse_protocol_violations_total`); errors of the server stay logged.
   */
  override bindErrorHandler(server: { on(event: 'error', listener: (error: Error) => void): unknown }): typeof server {
    server.on('error', (error: Error) => this.logger.error(error));
    return server;
  }

  private readonly paths = new UpgradePaths();

  /**
   * Nest's version registers its upgrade listener on the HTTP server of `port`; it is swapped
   * for one that takes the plain requests itself and hands the rest to it. Nest's registry of
   * listeners gets ours, so `dispose` takes it off the server as it would have taken Nest's.
   */
  protected override ensureHttpServerExists(port: number, httpServer?: HttpServer): HttpServer | undefined {
    const server = super.ensureHttpServerExists(port, httpServer);
    const listeners = (this as unknown as { upgradeListenersRegistry?: Map<number, UpgradeListener> })
      .upgradeListenersRegistry;
    const nests = listeners?.get(port);
    if (server === undefined || listeners === undefined || nests === undefined) return server;
    const ours: UpgradeListener = (request, socket, head) => this.routeUpgrade(port, request, socket, head, nests);
    server.off('upgrade', nests);
    server.on('upgrade', ours);
    listeners.set(port, ours);
    return server;
  }

  /** What Nest's listener does (ws-adapter.js, `upgradeListener`), its URL parse aside. */
  private routeUpgrade(
    port: number,
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    nests: UpgradeListener,
  ): void {
    const pathname = this.paths.pathname(request.url, request.headers.host);
    if (pathname === undefined) {
      nests(request, socket, head);
      return;
    }
    try {
      // Undefined only if no gateway registered on `port`: the loop throws, as Nest's does (400).
      const servers = this.wsServersRegistry.get(port) as (WebSocketServer & { path: string })[];
      for (const wsServer of servers) {
        if (pathname === wsServer.path) {
          wsServer.handleUpgrade(request, socket, head, (ws: WebSocket) => wsServer.emit('connection', ws, request));
          return;
        }
      }
      socket.destroy();
    } catch (error) {
      socket.end(`HTTP/1.1 400\r\n${(error as Error).message}`);
    }
  }

  override bindMessageHandlers(
    client: unknown,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    if (handlers.length === 0) return;
    super.bindMessageHandlers(client, handlers, transform);
  }
}
