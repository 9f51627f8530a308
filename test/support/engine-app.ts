import { Module, type DynamicModule, type INestApplication, type LoggerService, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { TestHealthController } from './health.controller.js';
import { TerminusModule } from '@nestjs/terminus';
import {
  TopicRegistryService,
  WseAdmin,
  WseMetricsService,
  WseHttpModule,
  WseModule,
  WsePublisher,
  WseWsAdapter,
  type WseHealthSnapshot,
  type WseHttpModuleOptions,
  type WseModuleOptions,
} from '../../src/index.js';

/** Body limit of the server API (CONTRACT section 7), as a consumer app sets it: larger bodies answer 413. */
const API_BODY_LIMIT = '1mb';

/** A running in-process app with only the engine (and Terminus `GET /health`), built with `forRoot(options)`. */
export interface EngineApp {
  readonly app: INestApplication;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** `ws://127.0.0.1:<port><path>` */
  readonly wsUrl: string;
  readonly publisher: WsePublisher;
  readonly admin: WseAdmin;
  readonly registry: TopicRegistryService;
  readonly metrics: WseMetricsService;
  /** `admin.healthSnapshot()` */
  snapshot(): WseHealthSnapshot;
  close(): Promise<void>;
}

/** How the app around the engine is built, beyond the module options. */
export interface EngineAppSetup {
  /** Receives every log line (e.g. a CapturingLogger); default: none unless `WSE_TEST_LOGS=1`. */
  logger?: LoggerService;
  /**
   * The HTTP endpoints to mount. Default: the server API at `/api` when `apiKey` is given,
   * `/metrics` and `/stats` open.
   */
  http?: WseHttpModuleOptions;
  /** The application's own providers, such as `@OnWseConnect` hooks. */
  providers?: Provider[];
}

@Module({})
class EngineTestAppModule {
  static with(options: WseModuleOptions, setup: EngineAppSetup): DynamicModule {
    return {
      module: EngineTestAppModule,
      imports: [
        TerminusModule.forRoot({ logger: false }),
        WseModule.forRoot(withAuthMode(options)),
        WseHttpModule.forRoot(
          setup.http ?? { api: options.apiKey === undefined ? undefined : true, metrics: true, stats: true },
        ),
      ],
      controllers: [TestHealthController],
      providers: setup.providers ?? [],
    };
  }
}

/** Tests run anonymous unless they give a secret (the module itself requires the choice). */
export function withAuthMode(options: WseModuleOptions): WseModuleOptions {
  const auth = options.auth ?? {};
  const keyed = auth.jwtSecret !== undefined || auth.publicKey !== undefined || auth.jwksUrl !== undefined;
  if (keyed || auth.anonymous !== undefined) return options;
  return { ...options, auth: { ...auth, anonymous: true } };
}

/** What an app logged, captured by `CapturingLogger`. */
export interface LogLine {
  readonly level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  readonly message: string;
}

/** A Nest logger that keeps every line (bounded to the last 10,000) for assertions. */
export class CapturingLogger implements LoggerService {
  readonly lines: LogLine[] = [];

  log(message: unknown): void {
    this.keep('log', message);
  }
  error(message: unknown): void {
    this.keep('error', message);
  }
  warn(message: unknown): void {
    this.keep('warn', message);
  }
  debug(message: unknown): void {
    this.keep('debug', message);
  }
  verbose(message: unknown): void {
    this.keep('verbose', message);
  }
  fatal(message: unknown): void {
    this.keep('fatal', message);
  }

  /** Lines of `level` whose message contains `text`. */
  count(level: LogLine['level'], text: string): number {
    return this.lines.filter((line) => line.level === level && line.message.includes(text)).length;
  }

  private keep(level: LogLine['level'], message: unknown): void {
    this.lines.push({ level, message: typeof message === 'string' ? message : String(message) });
    if (this.lines.length > 10_000) this.lines.shift();
  }
}

/**
 * Starts `WseModule.forRoot(options)` in an application of its own on 127.0.0.1 and port 0, set
 * up as the README shows a consumer app: `WseWsAdapter`, a JSON body parser limited to 1 MiB,
 * Terminus `GET /health`. Logging is off unless `WSE_TEST_LOGS=1` or a `logger` is given (e.g.
 * a CapturingLogger).
 */
export async function startEngineApp(options: WseModuleOptions = {}, setup: EngineAppSetup = {}): Promise<EngineApp> {
  const app = await NestFactory.create<NestExpressApplication>(EngineTestAppModule.with(options, setup), {
    bodyParser: false,
    logger: setup.logger ?? (process.env.WSE_TEST_LOGS === '1' ? undefined : false),
    abortOnError: false,
  });
  app.useWebSocketAdapter(new WseWsAdapter(app));
  app.useBodyParser('json', { limit: API_BODY_LIMIT });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  const publisher = app.get(WsePublisher);
  const admin = app.get(WseAdmin);
  return {
    app,
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}${options.path ?? '/wse'}`,
    publisher,
    admin,
    registry: app.get(TopicRegistryService),
    metrics: app.get(WseMetricsService),
    snapshot: () => admin.healthSnapshot(),
    close: () => app.close(),
  };
}
