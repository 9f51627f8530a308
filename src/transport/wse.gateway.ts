import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { OnGatewayConnection, OnGatewayInit } from '@nestjs/websockets';
import type { Socket } from 'node:net';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import { findHandshakeToken } from './auth/token-source.js';
import { WseAuthenticator } from './auth/wse-authenticator.service.js';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions, WseSubscriptionAuthorizer } from '../config/wse-module-options.interface.js';
import { WseEventError } from '../errors/wse-event.error.js';
import { WseHooksExplorer } from './events/wse-hooks.explorer.js';
import { encodePayload } from '../node/payload.js';
import { RedisPubSubService } from '../broker/redis/redis-pubsub.service.js';
import { ThrottledWarning } from '../reliability/throttled-warning.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { topicRejection } from '../hub/topic-validation.js';
import { WSE_PROTOCOL_VERSION, WSE_SERVER_VERSION, WseCloseCode, WseErrorCode } from '../wse.constants.js';
import {
  closeReasons,
  errorMessages,
  invalidMessages,
  logMessages,
  readyMessage,
  topicRejections,
} from '../wse.messages.js';
import { InboundQueue } from './inbound-queue.js';
import { parseInboundFrame, parseSubscriptionRequest, type InboundFrame } from '../protocol/inbound-frame.js';
import { errorFrame, systemEnvelope, systemFrame, textFrame } from '../protocol/outbound-frame.js';
import { OutboundWriter } from './outbound-writer.js';
import { TokenBucket } from './token-bucket.js';
import { WseConnection } from './wse-connection.js';

/**
 * The WebSocket endpoint: handshake, the inbound control frames, the heartbeat and the idle
 * timeout. It runs on @nestjs/platform-ws's WsAdapter, on the application's own HTTP server at
 * `options.path` (WseModule sets the path when it resolves the options).
 *
 * Inbound control frames are handled here in plain code rather than through Nest's message
 * routing: the contract wants an answer to malformed or unknown frames, which Nest's routing
 * drops silently. Outbound fan-out does not pass through here at all (TopicRegistryService).
 */
const WS_OPEN = 1;

/** How long a slow consumer's close handshake may take before its socket is destroyed. */
const SLOW_CONSUMER_GRACE_MS = 1000;

@Injectable()
export class WseGateway implements OnGatewayInit, OnGatewayConnection, OnModuleDestroy {
  private readonly logger = new Logger('WseGateway');
  private readonly overloadWarning = new ThrottledWarning((line) => this.logger.warn(line));
  private sweepTimer: NodeJS.Timeout | undefined;
  private nextPingAt = 0;
  private listening = false;
  /** Connections closed, by close code (for metrics). */
  readonly closeCodes = new Map<number, number>();
  /** Inbound frames refused by the rate limit. */
  rateLimited = 0;

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly registry: TopicRegistryService,
    private readonly authenticator: WseAuthenticator,
    private readonly hooks: WseHooksExplorer,
    private readonly inbound: InboundQueue,
    private readonly writer: OutboundWriter,
    private readonly redis: RedisPubSubService,
  ) {}

  /** What `server_ready` and `server_hello` advertise. */
  private features(): Record<string, boolean> {
    return { subscriptions: true, patterns: true, server_ping: true, redis: this.redis.configured };
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
    this.nextPingAt = Date.now() + this.options.pingIntervalMs;
    // One timer for every connection. It ticks often enough that an idle connection is closed
    // within a quarter of its timeout late, and never more than once a second.
    const period = Math.min(
      1000,
      Math.max(10, Math.floor(Math.min(this.options.pingIntervalMs, this.options.idleTimeoutMs) / 4)),
    );
    this.sweepTimer = setInterval(() => this.sweep(), period);
    this.sweepTimer.unref();
    this.logger.log(logMessages.listening(this.options.path));
  }

  // ---- handshake ---------------------------------------------------------------------------

  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    if (!this.listening) {
      socket.close(WseCloseCode.GOING_AWAY, closeReasons.goingAway());
      return;
    }
    if (this.registry.connectionCount >= this.options.maxConnections) {
      socket.close(WseCloseCode.TRY_AGAIN_LATER, closeReasons.serverFull());
      return;
    }
    const identity = this.authenticator.authenticate(findHandshakeToken(request, this.options.auth.cookieName));
    if (!identity.ok) {
      this.logger.debug(logMessages.authRejected(identity.reason));
      // Not a registered connection, so the frame goes through ws directly, then the close.
      socket.send(
        JSON.stringify(systemEnvelope('error', { code: WseErrorCode.AUTH_FAILED, message: identity.reason })),
      );
      socket.close(WseCloseCode.AUTH_FAILED, closeReasons.authFailed());
      return;
    }

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
    socket.on('message', (data: RawData, isBinary: boolean) => this.onMessage(connection, data as Buffer, isBinary));
    // A WebSocket-level ping (some client libraries' keepalive) counts as activity too.
    socket.on('ping', () => (connection.lastActivityMs = Date.now()));
    socket.once('close', (code: number) => this.onClose(connection, code));
    this.logger.debug(logMessages.connected(connection.id, connection.userId));

    connection.send(
      systemFrame('server_ready', {
        message: readyMessage(),
        details: {
          version: WSE_PROTOCOL_VERSION,
          features: this.features(),
          connection_id: connection.id,
          server_time: new Date().toISOString(),
          user_id: connection.userId,
        },
      }),
    );
    // Into the corked socket now, behind the 101 response (see afterInit), not a turn later.
    // Whatever the connect hooks send is queued behind it as usual.
    connection.flush();
    for (const hook of this.hooks.connectHandlers) this.runHook('OnWseConnect', connection, () => hook(connection));
  }

  private onClose(connection: WseConnection, code: number): void {
    this.logger.debug(logMessages.disconnected(connection.id, code));
    // Counted under the code the server closed with when it started the close: a slow consumer
    // destroyed after its grace is a 1013 close, even though ws reports 1006 for the socket.
    const counted = connection.closeCodeSent ?? code;
    this.closeCodes.set(counted, (this.closeCodes.get(counted) ?? 0) + 1);
    // Hooks run before the subscriptions are dropped, so they still see the connection's topics.
    for (const hook of this.hooks.disconnectHandlers)
      this.runHook('OnWseDisconnect', connection, () => hook(connection, code));
    this.registry.unregister(connection.id);
  }

  // ---- inbound frames ----------------------------------------------------------------------

  /**
   * One guard per inbound frame: whatever a frame does, the failure is answered and logged, and
   * never reaches ws's listener (where it would take the process down). Frames arriving after the
   * close started are ignored, so a flood cannot keep a closing connection busy.
   */
  private onMessage(connection: WseConnection, data: Buffer, isBinary: boolean): void {
    if (connection.socket.readyState !== WS_OPEN) return;
    try {
      this.handleFrame(connection, data, isBinary);
    } catch (error) {
      this.logger.error(logMessages.frameFailed(connection.id), error instanceof Error ? error.stack : error);
      connection.send(errorFrame(WseErrorCode.INVALID_MESSAGE, invalidMessages.unanswerable()));
    }
  }

  private handleFrame(connection: WseConnection, data: Buffer, isBinary: boolean): void {
    connection.lastActivityMs = Date.now();
    if (connection.bucket !== undefined && !this.admit(connection, connection.bucket)) return;
    const parsed = parseInboundFrame(data, isBinary);
    if (!parsed.ok) {
      connection.send(errorFrame(WseErrorCode.INVALID_MESSAGE, parsed.message));
      return;
    }
    const frame = parsed.frame;
    switch (frame.t.toLowerCase()) {
      case 'ping':
        connection.send(
          systemFrame('PONG', {
            client_timestamp: frame.p.client_timestamp ?? null,
            server_timestamp: Date.now(),
          }),
        );
        return;
      case 'pong':
        return;
      case 'client_hello':
        connection.send(this.serverHello(connection));
        return;
      case 'subscription':
        this.onSubscription(connection, frame);
        return;
      default:
        this.dispatchEvent(connection, frame);
    }
  }

  /**
   * The inbound rate limit: one token per frame. Below the warning mark the client is told once
   * (`rate_limit_warning`); with the bucket empty the frame is refused with `RATE_LIMITED` and a
   * `retry_after`, answered once per streak so a flood does not make the server flood back;
   * `closeAfterRejected` refusals in a row close the connection with 1008.
   */
  private admit(connection: WseConnection, bucket: TokenBucket): boolean {
    const limits = this.options.rateLimit!;
    if (bucket.take()) {
      connection.rejectedInARow = 0;
      const remaining = bucket.remaining;
      if (remaining < limits.capacity * limits.warnBelowFraction) {
        if (!connection.rateWarningSent) {
          connection.rateWarningSent = true;
          connection.send(
            systemFrame('rate_limit_warning', {
              remaining,
              capacity: limits.capacity,
              refill_per_second: limits.refillPerSecond,
            }),
          );
        }
      } else {
        connection.rateWarningSent = false;
      }
      return true;
    }
    this.rateLimited++;
    if (++connection.rejectedInARow >= limits.closeAfterRejected) {
      this.logger.warn(logMessages.rateLimitClosed(connection.id));
      connection.close(WseCloseCode.POLICY_VIOLATION, closeReasons.rateLimitExceeded());
    } else if (connection.rejectedInARow === 1) {
      connection.send(
        errorFrame(WseErrorCode.RATE_LIMITED, errorMessages.rateLimited(), {
          retry_after: Math.ceil(bucket.retryAfterSeconds() * 1000) / 1000,
        }),
      );
    }
    return false;
  }

  private serverHello(connection: WseConnection) {
    return systemFrame('server_hello', {
      server_version: WSE_SERVER_VERSION,
      protocol_version: WSE_PROTOCOL_VERSION,
      features: this.features(),
      limits: { max_message_size: this.options.maxMessageBytes },
      ping_interval: this.options.pingIntervalMs,
      connection_id: connection.id,
      server_time: new Date().toISOString(),
    });
  }

  private onSubscription(connection: WseConnection, frame: InboundFrame): void {
    const request = parseSubscriptionRequest(frame.p, this.options.maxTopicsPerSubscription);
    if (!request.ok) {
      connection.send(errorFrame(WseErrorCode.INVALID_MESSAGE, request.message));
      return;
    }
    if (request.action === 'unsubscribe') {
      this.registry.unsubscribeConnection(connection.id, request.topics);
      this.sendSubscriptionUpdate(connection, 'unsubscribe', request.topics, []);
      return;
    }
    void this.subscribeAuthorized(connection, request.topics);
  }

  /**
   * Validates, asks `authorizeSubscription` for each topic, then subscribes what is allowed.
   * Both lists of the answer keep the order of the request.
   */
  private async subscribeAuthorized(connection: WseConnection, topics: string[]): Promise<void> {
    const rejections = topics.map((topic) => topicRejection(topic));
    const authorize = this.options.authorizeSubscription;
    if (authorize !== undefined) {
      await Promise.all(
        topics.map(async (topic, i) => {
          if (rejections[i] === undefined && !(await this.isAuthorized(authorize, connection, topic))) {
            rejections[i] = topicRejections.refused();
          }
        }),
      );
    }
    // The connection may have closed while the authorizer ran: then there is nothing to do.
    const change = this.registry.subscribeConnection(
      connection.id,
      topics.filter((_, i) => rejections[i] === undefined),
    );
    if (change === undefined) return;
    const refusedByRegistry = new Map(change.failed.map((f) => [f.topic, f.reason]));
    const succeeded: string[] = [];
    const failed: { topic: string; reason: string }[] = [];
    topics.forEach((topic, i) => {
      const reason = rejections[i] ?? refusedByRegistry.get(topic);
      if (reason === undefined) succeeded.push(topic);
      else failed.push({ topic, reason });
    });
    this.sendSubscriptionUpdate(connection, 'subscribe', succeeded, failed);
  }

  /** The application's verdict; a throwing authorizer refuses (and is logged), never crashes. */
  private async isAuthorized(
    authorize: WseSubscriptionAuthorizer,
    connection: WseConnection,
    topic: string,
  ): Promise<boolean> {
    try {
      return (await authorize(connection, topic)) === true;
    } catch (error) {
      this.logger.warn(logMessages.authorizerFailed(topic), error instanceof Error ? error.stack : undefined);
      return false;
    }
  }

  private sendSubscriptionUpdate(
    connection: WseConnection,
    action: 'subscribe' | 'unsubscribe',
    succeeded: string[],
    failed: { topic: string; reason: string }[],
  ): void {
    connection.send(
      systemFrame('subscription_update', {
        action,
        success_topics: succeeded,
        failed_topics: failed.map((f) => f.topic),
        errors: failed,
      }),
    );
  }

  /** Hands an application event to its `@OnWseEvent` handler through the bounded inbound queue. */
  private dispatchEvent(connection: WseConnection, frame: InboundFrame): void {
    const handler = this.hooks.eventHandlers.get(frame.t);
    if (handler === undefined) {
      connection.send(errorFrame(WseErrorCode.UNKNOWN_EVENT, errorMessages.unknownEvent(frame.t)));
      return;
    }
    const accepted = this.inbound.offer(async () => {
      let result: unknown;
      try {
        result = await handler(frame.p, { connection, frame });
      } catch (error) {
        if (error instanceof WseEventError) {
          connection.send(errorFrame(error.code, error.message));
          return;
        }
        this.logger.error(
          logMessages.handlerFailed(frame.t, connection.id),
          error instanceof Error ? error.stack : error,
        );
        connection.send(errorFrame(WseErrorCode.HANDLER_ERROR, errorMessages.handlerFailed(frame.t)));
        return;
      }
      if (result !== undefined) connection.send(textFrame(encodePayload(result)));
    });
    if (!accepted) {
      this.overloadWarning.record((count) => logMessages.inboundDropped(count));
      connection.send(errorFrame(WseErrorCode.OVERLOADED, errorMessages.overloaded()));
    }
  }

  // ---- heartbeat and idle timeout ----------------------------------------------------------

  private sweep(): void {
    const now = Date.now();
    const idleBefore = now - this.options.idleTimeoutMs;
    const ping = now >= this.nextPingAt ? systemFrame('ping', { server_time: new Date(now).toISOString() }) : undefined;
    if (ping !== undefined) this.nextPingAt = now + this.options.pingIntervalMs;
    for (const connection of this.registry.connections()) {
      // Closing already: its close handshake (or the slow-consumer grace) takes it from here.
      if (connection.socket.readyState !== WS_OPEN) continue;
      if (connection.lastActivityMs <= idleBefore) {
        connection.close(WseCloseCode.NORMAL, closeReasons.idleTimeout());
      } else if (this.isStuckSlow(connection, now)) {
        this.closeSlowConsumer(connection);
      } else if (ping !== undefined) {
        connection.send(ping);
      }
    }
  }

  /** Over `maxBufferedBytes` for `slowConsumerTimeoutMs`: the client has stopped keeping up. */
  private isStuckSlow(connection: WseConnection, now: number): boolean {
    if (!connection.isSlow) {
      connection.slowSince = 0;
      return false;
    }
    if (connection.slowSince === 0) connection.slowSince = now;
    return now - connection.slowSince >= this.options.slowConsumerTimeoutMs;
  }

  /**
   * Closes with 1013 `slow consumer`. The close frame waits behind the unread bytes, which a
   * stalled client may never read, so the socket is destroyed after a short grace: its buffered
   * memory is released either way.
   */
  private closeSlowConsumer(connection: WseConnection): void {
    this.writer.slowConsumersClosed++;
    this.logger.warn(logMessages.slowConsumerClosed(connection.id, connection.bufferedBytes));
    connection.close(WseCloseCode.TRY_AGAIN_LATER, closeReasons.slowConsumer());
    setTimeout(() => connection.socket.terminate(), SLOW_CONSUMER_GRACE_MS).unref();
  }

  // ---- shutdown ----------------------------------------------------------------------------

  /** Stops accepting, and closes every connection with 1001 so clients reconnect elsewhere. */
  onModuleDestroy(): void {
    this.listening = false;
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const connection of this.registry.connections()) {
      connection.close(WseCloseCode.GOING_AWAY, closeReasons.goingAway());
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

function uncork(socket: Socket): void {
  socket.uncork();
}
