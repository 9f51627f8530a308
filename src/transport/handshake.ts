import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Injectable, Logger } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import { WseNode } from '../node/wse-node.js';
import { SystemFrames, systemEnvelope } from '../protocol/outbound-frame.js';
import { urlTopics } from '../protocol/url-topics.js';
import { WSE_PROTOCOL_VERSION, WseCloseCode, WseErrorCode } from '../wse.constants.js';
import { closeReasons, logMessages, readyMessage } from '../wse.messages.js';
import { findHandshakeToken } from './auth/token-source.js';
import { WseAuthenticator } from './auth/wse-authenticator.service.js';
import { OutboundWriter } from './outbound-writer.js';
import { WseSubscriptionHandler } from './subscription-handler.js';
import { TokenBucket } from './token-bucket.js';
import { WseConnection } from './wse-connection.js';

/**
 * The handshake (CONTRACT section 3): capacity, the token, then `server_ready` as the first frame,
 * followed by the answer to the topics of the URL (`?topics=a,b`, as WSE's clients send them).
 * A refused socket is closed here and never registered, so nothing is ever delivered to it.
 */
@Injectable()
export class WseHandshake {
  private readonly logger = new Logger('WseGateway');

  constructor(
    @InjectWseOptions() private readonly options: ResolvedWseOptions,
    private readonly registry: TopicRegistryService<WseConnection>,
    private readonly authenticator: WseAuthenticator,
    private readonly writer: OutboundWriter,
    private readonly node: WseNode,
    private readonly subscriptions: WseSubscriptionHandler,
    private readonly frames: SystemFrames,
  ) {}

  /** Accepts the socket as a registered connection with `server_ready` queued, or closes it. */
  accept(socket: WebSocket, request: IncomingMessage): WseConnection | undefined {
    if (this.registry.connectionCount >= this.options.maxConnections) {
      socket.close(WseCloseCode.TRY_AGAIN_LATER, closeReasons.serverFull());
      return undefined;
    }
    const identity = this.authenticator.authenticate(findHandshakeToken(request, this.options.auth.cookieName));
    if (!identity.ok) {
      this.logger.verbose(logMessages.authRejected(identity.reason));
      // Not a registered connection, so the frame goes through ws directly, then the close.
      socket.send(
        JSON.stringify(systemEnvelope('error', { code: WseErrorCode.AUTH_FAILED, message: identity.reason })),
      );
      socket.close(WseCloseCode.AUTH_FAILED, closeReasons.authFailed());
      return undefined;
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
    connection.send(
      this.frames.frame('server_ready', {
        message: readyMessage(),
        details: {
          version: WSE_PROTOCOL_VERSION,
          features: this.node.features(),
          connection_id: connection.id,
          server_time: new Date().toISOString(),
          user_id: connection.userId,
        },
      }),
    );
    if (this.options.compatibility.urlTopics) this.subscriptions.subscribeFromUrl(connection, urlTopics(request.url));
    return connection;
  }
}
