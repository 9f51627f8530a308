import type { MessageMappingProperties } from '@nestjs/websockets';
import { WsAdapter } from '@nestjs/platform-ws';
import type { Observable } from 'rxjs';

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

  override bindMessageHandlers(
    client: unknown,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    if (handlers.length === 0) return;
    super.bindMessageHandlers(client, handlers, transform);
  }
}
