import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { WseHttpModule, WseModule } from 'nestjs-wse';
import { AppController } from './app.controller.js';
import { HealthController } from './health.controller.js';

@Module({
  imports: [
    TerminusModule,
    WseModule.forRoot({ auth: { anonymous: true }, apiKey: 'k' }),
    WseHttpModule.forRoot({ api: { path: '/wse-api' }, metrics: true }),
  ],
  controllers: [AppController, HealthController],
})
export class AppModule {}
