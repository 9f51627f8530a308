import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { WsePublisher } from 'nestjs-wse';

/**
 * Routes of the application itself. `GET /api/connections` is the app's own: the library mounts
 * nothing under `/api` (its server API sits where WseHttpModule puts it). `POST /notify` is how
 * application code publishes, through the injected WsePublisher.
 */
@Controller()
export class AppController {
  constructor(private readonly publisher: WsePublisher) {}

  @Get('api/connections')
  connections(): { mine: true } {
    return { mine: true };
  }

  @Post('notify')
  @HttpCode(200)
  notify(@Body() body: { topic: string; data: unknown }): { published: true } {
    this.publisher.publish(body.topic, body.data);
    return { published: true };
  }
}
