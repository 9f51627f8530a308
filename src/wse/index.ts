/**
 * nestjs-wse: the library's only public door. Everything a Nest application uses is exported
 * here; anything not exported is internal and may change.
 */
export { WseModule } from './wse.module.js';
export { WseWsAdapter } from './gateway/wse-ws.adapter.js';
export { WsePublisher } from './publisher/wse.publisher.js';
export { WsePayloadError } from './publisher/payload.js';
export { TopicRegistryService } from './topics/topic-registry.service.js';
export type { FailedTopic, SubscriptionChange } from './topics/topic-registry.service.js';
export { WseTopicError } from './topics/wse-topic.error.js';
export { compileTopicPattern, isTopicPattern, TopicPatternError } from './topics/topic-pattern.js';
export type { TopicPattern } from './topics/topic-pattern.js';
export { RedisPubSubService } from './redis/redis-pubsub.service.js';
export type { DlqReplayResult, RedisMessageHandler, RedisResyncHandler } from './redis/redis-pubsub.service.js';
export type { DeadLetter } from './reliability/dead-letter-queue.js';
export type { CircuitState } from './reliability/circuit-breaker.js';
export { WseHealthIndicator } from './health/wse.health.js';
export { WseMetricsService } from './metrics/wse-metrics.service.js';
export { WseApiKey } from './api/api-key.js';
export type { WseHealthSnapshot } from './health/wse-health-snapshot.js';
export { OnWseConnect, OnWseDisconnect, OnWseEvent } from './hooks/wse-hooks.decorators.js';
export type { WseEventContext } from './hooks/wse-hooks.explorer.js';
export { WseEventError } from './hooks/wse-event.error.js';
export type { WseClaims, WseConnectionInfo } from './gateway/wse-connection.js';
export { resolveWseOptions, WSE_DEFAULTS } from './config/resolve-wse-options.js';
export { WseConfigError } from './config/wse-config.error.js';
export type { WseConfigProblem } from './config/wse-config.error.js';
export type {
  ResolvedWseOptions,
  WseAuthOptions,
  WseModuleAsyncOptions,
  WseModuleOptions,
  WseOptionsFactory,
  WseRateLimitOptions,
  WseRedisOptions,
  WseSubscriptionAuthorizer,
} from './config/wse-module-options.interface.js';
export { InjectWseOptions } from './config/inject-wse-options.decorator.js';
export { WSE_OPTIONS, WSE_PROTOCOL_VERSION, WseCloseCode, WseErrorCode } from './wse.constants.js';
