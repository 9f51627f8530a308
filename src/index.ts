/**
 * nestjs-wse: the library's only public door. Everything a Nest application uses is exported
 * here; anything not exported is internal and may change.
 */
export { WseModule } from './wse.module.js';
export { WseWsAdapter } from './transport/wse-ws.adapter.js';
export { WsePublisher } from './node/wse.publisher.js';
export { WseAdmin } from './observability/wse-admin.service.js';
export type { WseFeatures } from './node/wse-node.js';
export { WsePayloadError } from './node/payload.js';
export { TopicRegistryService } from './hub/topic-registry.service.js';
export type { FailedTopic, SubscriptionChange } from './hub/topic-registry.service.js';
export { WseTopicError } from './errors/wse-topic.error.js';
export { compileTopicPattern, escapeTopicPattern, isTopicPattern, TopicPatternError } from './hub/topic-pattern.js';
export type { TopicPattern } from './hub/topic-pattern.js';
export { compileTopicRules } from './hub/topic-rules.js';
export type { CompiledTopicRules, ConnectionTopicRules, TopicRules } from './hub/topic-rules.js';
export { RedisPubSubService } from './broker/redis/redis-pubsub.service.js';
export type {
  DlqReplayOptions,
  DlqReplayResult,
  RedisMessageHandler,
  RedisResyncHandler,
} from './broker/redis/redis-pubsub.service.js';
export type { DeadLetter, DeadLetterReason } from './reliability/dead-letter-queue.js';
export type { DeadLetterView } from './http/api/wse-api.controller.js';
export type { CircuitState } from './reliability/circuit-breaker.js';
export { WseHealthIndicator } from './observability/wse.health.js';
export type { WseHealthIndicatorResult, WseHealthStatus } from './observability/wse.health.js';
export { WseMetricsService } from './observability/wse-metrics.service.js';
export { WseApiKey } from './http/api/api-key.js';
export { WseHttpModule } from './http/wse-http.module.js';
export type {
  WseHttpEndpointOptions,
  WseHttpModuleOptions,
  WseMetricsEndpointOptions,
} from './http/wse-http-options.interface.js';
export type { WseStats } from './http/stats/wse-stats.controller.js';
export type { WseHealthSnapshot, WseRedisMode, WseShardState } from './observability/wse-health-snapshot.js';
export { OnWseConnect, OnWseDisconnect, OnWseEvent } from './transport/events/wse-hooks.decorators.js';
export type { WseEventContext } from './transport/events/wse-event-context.js';
export { WseClient, WseFrame, WsePayload } from './transport/events/wse-params.decorators.js';
export { WSE_CONTEXT_TYPE, WseExecutionContext } from './transport/events/wse-execution-context.js';
export type { WseContextType, WseEventView } from './transport/events/wse-execution-context.js';
export { WseEventError } from './errors/wse-event.error.js';
export type { WseClaims, WseConnectionInfo } from './protocol/connection.js';
export { resolveWseOptions, WSE_DEFAULTS } from './config/resolve-wse-options.js';
export { WseConfigError } from './errors/wse-config.error.js';
export type { WseConfigProblem } from './errors/wse-config.error.js';
export type {
  ResolvedRecoveryOptions,
  ResolvedWseOptions,
  WseAuthOptions,
  WseCompatibilityOptions,
  WseModuleAsyncOptions,
  WseModuleOptions,
  WseOptionsFactory,
  WseRateLimitOptions,
  WseRecoveryOptions,
  WseRedisOptions,
  WseRedisRouting,
  WseRedisClusterOptions,
  WseSubscriptionAuthorizer,
  WseSubscriptionRules,
  WseConnectGuard,
  WseConnectVerdict,
  WseJwtAlgorithm,
  WseSystemFrameOptions,
  WseUnknownEvents,
} from './config/wse-module-options.interface.js';
export { InjectWseOptions } from './config/inject-wse-options.decorator.js';
export { WSE_OPTIONS, WSE_PROTOCOL_VERSION, WseCloseCode, WseErrorCode } from './wse.constants.js';
