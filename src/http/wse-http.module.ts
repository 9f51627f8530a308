import { Controller, Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { WSE_OPTIONS } from '../wse.constants.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { WseConfigError } from '../errors/wse-config.error.js';
import { WseApiKeyGuard } from './api/api-key.guard.js';
import { WseApiKey } from './api/api-key.js';
import { WseApiErrorFilter } from './api/wse-api-error.filter.js';
import { WseApiController } from './api/wse-api.controller.js';
import { WseMetricsController } from './metrics/wse-metrics.controller.js';
import { WseStatsController } from './stats/wse-stats.controller.js';
import { WSE_METRICS_KEY } from './wse-http.constants.js';
import type {
  WseHttpEndpointOptions,
  WseHttpModuleOptions,
  WseMetricsEndpointOptions,
} from './wse-http-options.interface.js';

/**
 * The engine's optional HTTP endpoints: the server API, Prometheus metrics and public stats,
 * each mounted only when the application asks for it, at the path it chooses. They use Nest's
 * HTTP adapter only (no Express or Fastify calls), so they run on either platform. Import it
 * next to `WseModule`, whose providers it uses.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     WseModule.forRoot({ auth: { jwtSecret: process.env.JWT_SECRET }, apiKey: process.env.WSE_API_KEY }),
 *     WseHttpModule.forRoot({ api: { path: '/wse-api' }, metrics: true }),
 *   ],
 * })
 * export class AppModule {}
 * ```
 */
@Module({})
export class WseHttpModule {
  static forRoot(options: WseHttpModuleOptions): DynamicModule {
    const controllers: Type[] = [];
    const providers: Provider[] = [];
    const api = endpoint(options.api, '/api');
    if (api !== undefined) {
      controllers.push(mounted(WseApiController, api.path));
      providers.push(WseApiKeyGuard, WseApiErrorFilter);
    }
    const metrics = endpoint<WseMetricsEndpointOptions>(options.metrics, '/metrics');
    if (metrics !== undefined) {
      controllers.push(mounted(WseMetricsController, metrics.path));
      providers.push({
        provide: WSE_METRICS_KEY,
        inject: [WSE_OPTIONS],
        useFactory: (wse: ResolvedWseOptions): WseApiKey | undefined => {
          if (metrics.requireApiKey !== true) return undefined;
          if (wse.apiKey === undefined) {
            throw new WseConfigError([
              { path: 'apiKey', rule: 'must be set when the metrics endpoint requires the API key', value: undefined },
            ]);
          }
          return new WseApiKey(wse.apiKey);
        },
      });
    }
    const stats = endpoint(options.stats, '/stats');
    if (stats !== undefined) controllers.push(mounted(WseStatsController, stats.path));
    return { module: WseHttpModule, controllers, providers };
  }
}

function endpoint<O extends WseHttpEndpointOptions>(
  given: O | true | undefined,
  defaultPath: string,
): (O & { path: string }) | undefined {
  if (given === undefined) return undefined;
  const options = (given === true ? {} : given) as O;
  const path = options.path ?? defaultPath;
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new WseConfigError(
      [{ path: 'WseHttpModule path', rule: 'must be a string starting with "/"', value: path }],
      'WseHttpModule options',
    );
  }
  return { ...options, path };
}

/**
 * A controller class of its own per registration, carrying the path: Nest reads a controller's
 * path from class metadata, so a subclass lets each application choose it without touching the
 * shared class (two apps in one process keep their own).
 */
function mounted<T>(base: Type<T>, path: string): Type<T> {
  const Mounted = class extends (base as Type<object>) {} as Type<T>;
  Object.defineProperty(Mounted, 'name', { value: base.name });
  Controller(path)(Mounted);
  return Mounted;
}
