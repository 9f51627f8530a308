import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Injectable, Logger, type OnModuleInit, type Type } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { WebSocket } from 'ws';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions, WseConnectGuard, WseConnectVerdict } from '../config/wse-module-options.interface.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { WseNode } from '../node/wse-node.js';
import { SystemFrames, systemEnvelope, templateSlot, type SystemFrameTemplate } from '../protocol/outbound-frame.js';
import { urlTopics } from '../protocol/url-topics.js';
import { WSE_PROTOCOL_VERSION, WseCloseCode, WseErrorCode } from '../wse.constants.js';
import { closeReasons, logMessages, readyMessage } from '../wse.messages.js';
import { findHandshakeToken } from './auth/token-source.js';
import { WseTokenExpiry } from './auth/token-expiry.js';
import { WseAuthenticator, type HandshakeIdentity } from './auth/wse-authenticator.service.js';
import { OutboundWriter } from './outbound-writer.js';
import { WseSubscriptionHandler } from './subscription-handler.js';
import { TokenBucket } from './token-bucket.js';
import { WS_OPEN, WseConnection } from './wse-connection.js';

type AcceptedIdentity = Extract<HandshakeIdentity, { ok: true }>;

/** How a connect guard ended, `false` included; `timeout` and `failed` close with 1013 and 1011. */
type GuardOutcome = WseConnectVerdict | 'timeout' | 'failed';

/**
 * The handshake (CONTRACT section 3): capacity, the token, the application's connect guard,
 * then `server_ready` as the first frame, followed by the answer to the topics of the URL
 * (`?topics=a,b`, as WSE's clients send them). A refused socket is closed here and never
 * registered, so nothing is ever delivered to it.
 *
 * Without a connect guard and with a secret or public key, all of it happens synchronously in
 * the upgrade's own turn, and the 101 response and `server_ready` leave in one write (see
 * WseGateway.afterInit). A connect guard or a JWKS makes it asynchronous: the socket is paused
 * (the client's frames wait in the kernel, unread, nothing is lost or answered), and it is
 * registered, resumed and greeted only once accepted. Until then it is counted against
 * `maxConnections` and closed with the shutdown code if the server stops.
 */
@Injectable()
export class WseHandshake implements OnModuleInit {
  private readonly logger = new Logger('WseGateway');
  private guard: WseConnectGuard | undefined;
  /** Sockets whose handshake waits for the JWKS or the connect guard. */
  private readonly pending = new Set<WebSocket>();
  /** `server_ready` serialized once; per connection only its id, time and user change (see readyTemplate). */
  private ready: SystemFrameTemplate | undefined;

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly registry: TopicRegistryService<WseConnection>,
    private readonly authenticator: WseAuthenticator,
    private readonly writer: OutboundWriter,
    private readonly node: WseNode,
    private readonly expiry: WseTokenExpiry,
    private readonly moduleRef: ModuleRef,
    private readonly subscriptions: WseSubscriptionHandler,
    private readonly frames: SystemFrames,
  ) {}

  /** Resolves the connect guard: the application's provider of that class, or a new one with its dependencies. */
  async onModuleInit(): Promise<void> {
    const configured = this.options.connectGuard;
    if (configured === undefined || typeof configured !== 'function') {
      this.guard = configured;
      return;
    }
    const type = configured as Type<WseConnectGuard>;
    try {
      this.guard = this.moduleRef.get(type, { strict: false });
    } catch {
      this.guard = await this.moduleRef.create(type);
    }
  }

  /** Handshakes not decided yet. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Accepts the socket as a registered connection with `server_ready` queued, or closes it.
   * Synchronous (a connection or `undefined`) unless a JWKS or a connect guard is configured;
   * a connection accepted later comes with its socket paused.
   */
  accept(socket: WebSocket, request: IncomingMessage): WseConnection | Promise<WseConnection | undefined> | undefined {
    if (this.registry.connectionCount + this.pending.size >= this.options.maxConnections) {
      socket.close(WseCloseCode.TRY_AGAIN_LATER, closeReasons.serverFull());
      return undefined;
    }
    const identity = this.authenticator.authenticate(findHandshakeToken(request, this.options.auth.cookieName));
    if (identity instanceof Promise || this.guard !== undefined) return this.acceptLater(socket, request, identity);
    if (!identity.ok) {
      this.refuseToken(socket, identity.reason);
      return undefined;
    }
    return this.register(socket, request, identity);
  }

  /** Closes every handshake still waiting, as the server stops (with the code open connections get). */
  closePending(): void {
    for (const socket of this.pending)
      closePaused(socket, this.options.shutdownCloseCode, closeReasons.serviceRestart());
    this.pending.clear();
  }

  private async acceptLater(
    socket: WebSocket,
    request: IncomingMessage,
    verifying: HandshakeIdentity | Promise<HandshakeIdentity>,
  ): Promise<WseConnection | undefined> {
    socket.pause();
    this.pending.add(socket);
    try {
      let identity = await verifying;
      if (!this.pending.has(socket) || socket.readyState !== WS_OPEN) return undefined;
      if (!identity.ok) {
        // Reading again, so the client's answer to the close is read and the socket ends.
        socket.resume();
        this.refuseToken(socket, identity.reason);
        return undefined;
      }
      if (this.guard !== undefined) {
        const outcome = await this.runGuard(this.guard, request, identity);
        // Closed by the client, or by the server stopping, while the guard ran.
        if (!this.pending.has(socket) || socket.readyState !== WS_OPEN) return undefined;
        if (outcome === false || outcome === 'timeout' || outcome === 'failed') {
          this.refuseByGuard(socket, outcome);
          return undefined;
        }
        identity = enrich(identity, outcome);
      }
      // Still paused: the gateway resumes it once its listeners are on (WseGateway.open).
      return this.register(socket, request, identity);
    } finally {
      this.pending.delete(socket);
    }
  }

  /** The guard's verdict within `connectGuardTimeoutMs`; a throw or a rejection is `failed` (logged). */
  private async runGuard(
    guard: WseConnectGuard,
    request: IncomingMessage,
    identity: AcceptedIdentity,
  ): Promise<GuardOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(resolve, this.options.connectGuardTimeoutMs, 'timeout');
      timer.unref();
    });
    try {
      return await Promise.race([Promise.resolve().then(() => guard.canConnect(request, identity.claims)), timeout]);
    } catch (error) {
      this.logger.error(
        logMessages.connectGuardFailed(request.socket.remoteAddress ?? 'unknown peer'),
        error instanceof Error ? error.stack : error,
      );
      return 'failed';
    } finally {
      clearTimeout(timer);
    }
  }

  private refuseToken(socket: WebSocket, reason: string): void {
    this.logger.verbose(logMessages.authRejected(reason));
    // Not a registered connection, so the frame goes through ws directly, then the close.
    socket.send(JSON.stringify(systemEnvelope('error', { code: WseErrorCode.AUTH_FAILED, message: reason })));
    socket.close(WseCloseCode.AUTH_FAILED, closeReasons.authFailed());
  }

  /** A refusal sends nothing but the close: the client learns the code and reason only. */
  private refuseByGuard(socket: WebSocket, outcome: false | 'timeout' | 'failed'): void {
    if (outcome === false) closePaused(socket, WseCloseCode.FORBIDDEN, closeReasons.forbidden());
    else if (outcome === 'timeout') {
      closePaused(socket, WseCloseCode.TRY_AGAIN_LATER, closeReasons.connectGuardTimeout());
    } else closePaused(socket, WseCloseCode.INTERNAL_ERROR, closeReasons.connectGuardFailed());
  }

  private register(socket: WebSocket, request: IncomingMessage, identity: AcceptedIdentity): WseConnection {
    const rateLimit = this.options.rateLimit;
    const connection = new WseConnection(
      randomUUID(),
      socket,
      identity.userId,
      identity.claims,
      this.options.maxBufferedBytes,
      this.writer,
      Date.now(),
      rateLimit === undefined ? undefined : new TokenBucket(rateLimit.capacity, rateLimit.refillPerSecond),
    );
    this.registry.register(connection);
    if (identity.expiresAtMs !== undefined) this.expiry.watch(connection, identity.expiresAtMs);
    connection.send(this.readyTemplate().frame([connection.id, new Date().toISOString(), connection.userId]));
    if (this.options.compatibility.urlTopics) this.subscriptions.subscribeFromUrl(connection, urlTopics(request.url));
    return connection;
  }

  /**
   * `server_ready`: `{message, details: {version, features, connection_id, server_time,
   * user_id}}`. The features follow from the options alone, so they are read once, at the first
   * handshake (after every module has started).
   */
  private readyTemplate(): SystemFrameTemplate {
    this.ready ??= this.frames.template(
      'server_ready',
      {
        message: readyMessage(),
        details: {
          version: WSE_PROTOCOL_VERSION,
          features: this.node.features(),
          connection_id: templateSlot(0),
          server_time: templateSlot(1),
          user_id: templateSlot(2),
        },
      },
      3,
    );
    return this.ready;
  }
}

/**
 * Closes a paused socket: reading resumes first, or the client's answer to the close frame would
 * never be read and the socket would linger until ws gives up on it. Frames the client sent
 * meanwhile are read and dropped (no listener is attached).
 */
function closePaused(socket: WebSocket, code: number, reason: string): void {
  socket.resume();
  socket.close(code, reason);
}

/** The identity as the connect guard left it: its `userId` and claims merged over the token's. */
function enrich(identity: AcceptedIdentity, verdict: true | Exclude<WseConnectVerdict, boolean>): AcceptedIdentity {
  if (verdict === true) return identity;
  const claims =
    verdict.claims === undefined ? identity.claims : Object.freeze({ ...(identity.claims ?? {}), ...verdict.claims });
  const userId = verdict.userId === undefined ? identity.userId : verdict.userId;
  return { ...identity, userId, claims };
}
