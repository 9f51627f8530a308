import type { IncomingMessage } from 'node:http';
import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { OnGatewayConnection, OnGatewayInit } from '@nestjs/websockets';
import type { Socket } from 'node:net';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { SystemFrames } from '../protocol/outbound-frame.js';
import { WseErrorCode } from '../wse.constants.js';
import { closeReasons, invalidMessages, logMessages } from '../wse.messages.js';
import { WseTokenExpiry } from './auth/token-expiry.js';
import { WseHooksExplorer } from './events/wse-hooks.explorer.js';
import { WseHandshake } from './handshake.js';
import { WseHeartbeat } from './heartbeat.js';
import { WseInboundRouter } from './inbound-router.js';
import { ProtocolViolations, violationKind } from './protocol-violations.js';
import { WS_OPEN, WseConnection } from './wse-connection.js';

/**
 * The WebSocket endpoint's lifecycle: start listening, accept a socket (WseHandshake), route its
 * frames (WseInboundRouter), run the connect and disconnect hooks, and close everything at
 * shutdown. It runs on @nestjs/platform-ws's WsAdapter, on the application's own HTTP server at
 * `options.path` (WseModule sets the path when it resolves the options). Outbound fan-out does
 * not pass through here at all (TopicRegistryService, OutboundWriter).
 */
@Injectable()
export class WseGateway implements OnGatewayInit, OnGatewayConnection, OnModuleDestroy {
  private readonly logger = new Logger('WseGateway');
  private listening = false;
  /** Connections closed, by close code (for metrics). */
  readonly closeCodes = new Map<number, number>();
  /**
   * The socket listeners, made once and shared by every socket (ws calls them with the socket
   * as `this`, which carries its connection): a handshake adds no closures of its own.
   */
  private readonly onSocketError: (error: Error) => void;
  private readonly onSocketMessage: (this: WebSocket, data: RawData, isBinary: boolean) => void;
  private readonly onSocketPing: (this: WebSocket) => void;
  private readonly onSocketClose: (this: WebSocket, code: number) => void;

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly registry: TopicRegistryService<WseConnection>,
    private readonly handshake: WseHandshake,
    private readonly router: WseInboundRouter,
    private readonly heartbeat: WseHeartbeat,
    private readonly hooks: WseHooksExplorer,
    private readonly expiry: WseTokenExpiry,
    private readonly frames: SystemFrames,
    private readonly violations: ProtocolViolations,
  ) {
    this.onSocketError = (error) => this.violations.record(violationKind(error));
    const message = (connection: WseConnection, data: Buffer, isBinary: boolean): void =>
      this.onMessage(connection, data, isBinary);
    const close = (connection: WseConnection, code: number): void => this.onClose(connection, code);
    this.onSocketMessage = function (this: WebSocket, data: RawData, isBinary: boolean) {
      message(connectionOf(this), data as Buffer, isBinary);
    };
    // A WebSocket-level ping (some client libraries' keepalive) counts as activity too.
    this.onSocketPing = function (this: WebSocket) {
      connectionOf(this).lastActivityMs = Date.now();
    };
    // ws emits 'close' once per socket, so `on` does what `once` would without its wrapper.
    this.onSocketClose = function (this: WebSocket, code: number) {
      close(connectionOf(this), code);
    };
  }

  /** True once the endpoint accepts connections, until shutdown. */
  get isListening(): boolean {
    return this.listening;
  }

  afterInit(server?: WebSocketServer): void {
    this.listening = true;
    // ws writes the 101 response right after this event, then hands the socket to
    // handleConnection, which answers with server_ready (or the auth error and the close) in the
    // same call stack. Corked until the next tick, all of it leaves in one write: the socket
    // write is the largest single cost of a handshake in the profiles, and this saves one.
    server?.on('headers', (_headers: string[], request: IncomingMessage) => {
      request.socket.cork();
      process.nextTick(uncork, request.socket);
    });
    this.heartbeat.start();
    this.logger.log(logMessages.listening(this.options.path));
  }

  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    // ws reports a client's protocol violation (invalid UTF-8, RSV bits, an oversize or unmasked
    // frame...) as an 'error' event on the socket, then closes it with the right code. Nest's
    // WsAdapter listens there and logs each one as an ERROR with its stack, one hostile frame one
    // log entry, unauthenticated sockets included (issue 10). Its listener is replaced by one
    // that counts and logs throttled; every socket has it before anything else happens.
    socket.removeAllListeners('error');
    socket.on('error', this.onSocketError);
    if (!this.listening) {
      // Shutting down: the same code as the open connections get, so the client comes back.
      socket.close(this.options.shutdownCloseCode, closeReasons.serviceRestart());
      return;
    }
    const accepted = this.handshake.accept(socket, request);
    if (accepted === undefined) return;
    if (accepted instanceof WseConnection) {
      this.open(accepted);
      return;
    }
    // Accepted later (a connect guard or a JWKS): by then the server may be stopping.
    accepted.then(
      (connection) => {
        if (connection === undefined) return;
        this.open(connection);
        connection.socket.resume();
        if (!this.listening) connection.close(this.options.shutdownCloseCode, closeReasons.serviceRestart());
      },
      (error: unknown) =>
        this.logger.error(logMessages.frameFailed('(handshake)'), error instanceof Error ? error.stack : error),
    );
  }

  /** Wires an accepted connection: its frames, its close, `server_ready` out, then the connect hooks. */
  private open(connection: WseConnection): void {
    const socket = connection.socket;
    (socket as SocketWithConnection)[CONNECTION] = connection;
    socket.on('message', this.onSocketMessage);
    socket.on('ping', this.onSocketPing);
    socket.on('close', this.onSocketClose);
    this.logger.verbose(logMessages.connected(connection.id, connection.userId));
    // server_ready into the corked socket now, behind the 101 response (see afterInit), not a
    // turn later. Whatever the connect hooks send is queued behind it as usual.
    connection.flush();
    for (const hook of this.hooks.connectHandlers) this.runHook('OnWseConnect', connection, () => hook(connection));
  }

  /**
   * One guard per inbound frame: whatever a frame does, the failure is answered and logged, and
   * never reaches ws's listener (where it would take the process down). Frames arriving after the
   * close started are ignored, so a flood cannot keep a closing connection busy.
   */
  private onMessage(connection: WseConnection, data: Buffer, isBinary: boolean): void {
    if (connection.socket.readyState !== WS_OPEN) return;
    try {
      this.router.handle(connection, data, isBinary);
    } catch (error) {
      this.logger.error(logMessages.frameFailed(connection.id), error instanceof Error ? error.stack : error);
      connection.send(this.frames.error(WseErrorCode.INVALID_MESSAGE, invalidMessages.unanswerable()));
    }
  }

  private onClose(connection: WseConnection, code: number): void {
    this.logger.verbose(logMessages.disconnected(connection.id, code));
    // Counted under the code the server closed with when it started the close: a slow consumer
    // destroyed after its grace is a 1013 close, even though ws reports 1006 for the socket.
    const counted = connection.closeCodeSent ?? code;
    this.closeCodes.set(counted, (this.closeCodes.get(counted) ?? 0) + 1);
    this.expiry.forget(connection);
    // Hooks run before the subscriptions are dropped, so they still see the connection's topics.
    for (const hook of this.hooks.disconnectHandlers)
      this.runHook('OnWseDisconnect', connection, () => hook(connection, code));
    this.registry.unregister(connection.id);
  }

  /**
   * Stops accepting, and closes every connection with `shutdownCloseCode` (1012, `service
   * restart`) so clients reconnect, to this instance once it is back or to another. Not 1001:
   * WSE's SDKs and Python client treat 1000 and 1001 as final and would stay disconnected after
   * a deploy (docs/PROTOCOL.md, close codes).
   */
  onModuleDestroy(): void {
    this.listening = false;
    this.heartbeat.stop();
    this.handshake.closePending();
    for (const connection of this.registry.connections()) {
      connection.close(this.options.shutdownCloseCode, closeReasons.serviceRestart());
    }
  }

  private runHook(name: string, connection: WseConnection, call: () => unknown): void {
    const fail = (error: unknown): void =>
      this.logger.error(logMessages.hookFailed(name, connection.id), error instanceof Error ? error.stack : error);
    try {
      const result = call();
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  }
}

/** Where an open socket keeps its connection, for the shared listeners. */
const CONNECTION = Symbol('wse.connection');
type SocketWithConnection = WebSocket & { [CONNECTION]: WseConnection };

function connectionOf(socket: WebSocket): WseConnection {
  return (socket as SocketWithConnection)[CONNECTION];
}

function uncork(socket: Socket): void {
  socket.uncork();
}
