import { randomUUID } from 'node:crypto';
import { Logger, Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { GATEWAY_OPTIONS } from '@nestjs/websockets/constants.js';
import { WebSocketGateway } from '@nestjs/websockets';
import { WseAuthenticator } from './transport/auth/wse-authenticator.service.js';
import { resolveWseOptions } from './config/resolve-wse-options.js';
import type {
  ResolvedWseOptions,
  WseModuleAsyncOptions,
  WseModuleOptions,
  WseOptionsFactory,
} from './config/wse-module-options.interface.js';
import { InboundQueue } from './transport/inbound-queue.js';
import { originVerifier } from './transport/origin-check.js';
import { ProtocolViolations } from './transport/protocol-violations.js';
import { WseGateway } from './transport/wse.gateway.js';
import { OutboundWriter } from './transport/outbound-writer.js';
import { WseHealthSnapshotService } from './observability/wse-health-snapshot.js';
import { WseHealthIndicator } from './observability/wse.health.js';
import { WseHooksExplorer } from './transport/events/wse-hooks.explorer.js';
import { WseMetricsService } from './observability/wse-metrics.service.js';
import { WsePublisher } from './node/wse.publisher.js';
import { WseNode } from './node/wse-node.js';
import { TopicHistoryService } from './node/topic-history.service.js';
import { WseAdmin } from './observability/wse-admin.service.js';
import { WseEventDispatcher } from './transport/events/event-dispatcher.js';
import { WseEventPipeline } from './transport/events/event-pipeline.js';
import { WseHandshake } from './transport/handshake.js';
import { WseTokenExpiry } from './transport/auth/token-expiry.js';
import { WseTopicPermissions } from './transport/auth/topic-permissions.js';
import { WseHeartbeat } from './transport/heartbeat.js';
import { WseInboundRouter } from './transport/inbound-router.js';
import { WseRateLimiter } from './transport/rate-limit.js';
import { WseSlowConsumers } from './transport/slow-consumers.js';
import { WseSubscriptionHandler } from './transport/subscription-handler.js';
import { RedisPubSubService } from './broker/redis/redis-pubsub.service.js';
import { TopicRegistryService } from './hub/topic-registry.service.js';
import { WSE_OPTIONS } from './wse.constants.js';
import { SystemFrames } from './protocol/outbound-frame.js';

const RAW_OPTIONS = 'WSE:RAW_OPTIONS';

/**
 * The WebSocket engine as a Nest module. Global: import it once, in the root module.
 *
 * Reading order: options are resolved once (config/), the gateway accepts and authenticates
 * connections (gateway/, auth/), the topic registry fans messages out (topics/), Redis carries
 * them between instances (redis/, reliability/; joined to the registry in wse.wiring.ts), the
 * publisher is what the application calls (publisher/), health and the server API report.
 *
 * The application must run Nest's ws driver: `app.useWebSocketAdapter(new WseWsAdapter(app))`
 * (Nest's `WsAdapter` works too, with a message pipeline per connection that the engine does
 * not use).
 *
 * @example
 * ```ts
 * @Module({ imports: [WseModule.forRoot({ auth: { jwtSecret: process.env.JWT_SECRET } })] })
 * export class AppModule {}
 * ```
 */
@Module({})
export class WseModule {
  /** Registers the engine with options known up front. */
  static forRoot(options: WseModuleOptions = {}): DynamicModule {
    return WseModule.build([{ provide: RAW_OPTIONS, useValue: options }]);
  }

  /** Registers the engine with options produced by a factory, a class or an existing provider. */
  static forRootAsync(options: WseModuleAsyncOptions): DynamicModule {
    return WseModule.build(rawOptionsProviders(options), options.imports ?? []);
  }

  private static build(rawOptions: Provider[], imports: DynamicModule['imports'] = []): DynamicModule {
    // Nest reads a gateway's path from class metadata when the app initializes, after every
    // provider exists. A subclass per registration lets the options resolved below set that
    // path without touching WseGateway itself, so two apps in one process keep their own.
    class ConfiguredWseGateway extends WseGateway {}
    WebSocketGateway()(ConfiguredWseGateway);
    // One per registration, made here because the origin check (built with the options) needs it.
    const violationsLogger = new Logger('WseGateway');
    const violations = new ProtocolViolations((line) => violationsLogger.warn(line));

    return {
      module: WseModule,
      global: true,
      imports: [DiscoveryModule, ...(imports ?? [])],
      providers: [
        ...rawOptions,
        {
          provide: WSE_OPTIONS,
          inject: [RAW_OPTIONS],
          useFactory: (raw: WseModuleOptions): ResolvedWseOptions => {
            const resolved = resolveWseOptions(raw);
            Reflect.defineMetadata(
              GATEWAY_OPTIONS,
              {
                path: resolved.path,
                maxPayload: resolved.maxMessageBytes,
                perMessageDeflate: false,
                verifyClient: resolved.allowedOrigins && originVerifier(resolved.allowedOrigins, violations),
              },
              ConfiguredWseGateway,
            );
            return resolved;
          },
        },
        { provide: WseGateway, useClass: ConfiguredWseGateway },
        { provide: ProtocolViolations, useValue: violations },
        {
          provide: InboundQueue,
          inject: [WSE_OPTIONS],
          useFactory: (options: ResolvedWseOptions) => {
            const logger = new Logger('WseInboundQueue');
            return new InboundQueue(options.inboundQueueSize, options.inboundConcurrency, (error) =>
              logger.error(error instanceof Error ? error.stack : error),
            );
          },
        },
        { provide: OutboundWriter, useFactory: () => new OutboundWriter() },
        {
          provide: SystemFrames,
          inject: [WSE_OPTIONS],
          useFactory: (options: ResolvedWseOptions) =>
            new SystemFrames(options.systemFrames.id, options.systemFrames.ts, randomUUID),
        },
        TopicRegistryService,
        WseAuthenticator,
        WseHooksExplorer,
        WseEventPipeline,
        WseHealthSnapshotService,
        WseHealthIndicator,
        RedisPubSubService,
        TopicHistoryService,
        WseNode,
        WseHandshake,
        WseTokenExpiry,
        WseInboundRouter,
        WseRateLimiter,
        WseSubscriptionHandler,
        WseTopicPermissions,
        WseEventDispatcher,
        WseHeartbeat,
        WseSlowConsumers,
        WseAdmin,
        WseMetricsService,
        WsePublisher,
      ],
      exports: [
        WSE_OPTIONS,
        WsePublisher,
        WseAdmin,
        TopicRegistryService,
        RedisPubSubService,
        WseHealthIndicator,
        WseGateway,
        WseMetricsService,
      ],
    };
  }
}

function rawOptionsProviders(options: WseModuleAsyncOptions): Provider[] {
  if (options.useFactory) {
    return [{ provide: RAW_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }];
  }
  const factoryClass: Type<WseOptionsFactory> | undefined = options.useClass ?? options.useExisting;
  if (factoryClass === undefined) {
    throw new TypeError('WseModule.forRootAsync() needs one of useFactory, useClass or useExisting');
  }
  const providers: Provider[] = [
    {
      provide: RAW_OPTIONS,
      useFactory: (factory: WseOptionsFactory) => factory.createWseOptions(),
      inject: [factoryClass],
    },
  ];
  if (options.useClass) providers.push({ provide: options.useClass, useClass: options.useClass });
  return providers;
}
