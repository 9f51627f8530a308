import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { WseHttpModule, WseModule } from 'nestjs-wse';
import { APP_ENVIRONMENT } from './app.constants.js';
import { ChatHandlers } from './demo/chat.handlers.js';
import { ClientModuleController } from './demo/client-module.controller.js';
import { DemoPageController } from './demo/demo-page.controller.js';
import type { AppEnvironment } from './env.config.js';
import { HealthController } from './health/health.controller.js';
import { NotificationsService } from './notifications/notifications.service.js';

/**
 * The example application: the engine, its health endpoint, a demo page with its public figures
 * (`GET /stats`) and the client modules it imports (`GET /client/*.js`), and two domain services.
 */
@Module({})
export class AppModule {
  static forEnvironment(env: AppEnvironment): DynamicModule {
    const environment = { provide: APP_ENVIRONMENT, useValue: env };
    return {
      module: AppModule,
      imports: [
        TerminusModule.forRoot({ logger: false }),
        WseModule.forRootAsync({
          // What the environment says, validated again (and completed) by the module itself.
          useFactory: (e: AppEnvironment) => e.wse,
          inject: [APP_ENVIRONMENT],
          imports: [{ module: class AppEnvironmentModule {}, providers: [environment], exports: [environment] }],
        }),
        // The server API only with a key (CONTRACT section 7); /metrics and the demo page's
        // public figures always.
        WseHttpModule.forRoot({
          api: env.wse.apiKey === undefined ? undefined : { path: env.apiPath },
          metrics: { requireApiKey: env.metricsRequireKey },
          stats: true,
        }),
      ],
      controllers: [HealthController, DemoPageController, ClientModuleController],
      providers: [environment, NotificationsService, ChatHandlers],
    };
  }
}
