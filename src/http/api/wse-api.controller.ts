import { isUtf8 } from 'node:buffer';
import { Body, Get, HttpCode, Injectable, Param, Post, Query, Res, UseFilters, UseGuards } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { DlqReplayResult } from '../../broker/redis/redis-pubsub.service.js';
import type { DeadLetter, DeadLetterReason } from '../../reliability/dead-letter-queue.js';
import { WsePublisher } from '../../node/wse.publisher.js';
import { WseAdmin } from '../../observability/wse-admin.service.js';
import type { WseHealthSnapshot } from '../../observability/wse-health-snapshot.js';
import { ApiBody } from './api-body.js';
import { unknownConnection } from './api-errors.js';
import { WseApiKeyGuard } from './api-key.guard.js';
import { WseApiErrorFilter } from './wse-api-error.filter.js';

/**
 * The server API (CONTRACT section 7): lets another backend publish, send and manage
 * subscriptions over HTTP, behind `Authorization: Bearer <apiKey>` (WseApiKeyGuard). Mounted
 * only through `WseHttpModule.forRoot({ api: ... })`, which gives it its path; it uses only
 * Nest's HTTP adapter, so it runs on Express and Fastify alike.
 */
@Injectable()
@UseGuards(WseApiKeyGuard)
@UseFilters(WseApiErrorFilter)
export class WseApiController {
  constructor(
    private readonly publisher: WsePublisher,
    private readonly admin: WseAdmin,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /** `local: true`, or no Redis configured: 200 with the local count; otherwise 202 queued. */
  @Post('publish')
  publish(
    @Body() raw: unknown,
    @Res({ passthrough: true }) response: unknown,
  ): { delivered: number } | { queued: true } {
    const body = new ApiBody(raw);
    const topic = body.topic('topic');
    const data = body.data('data');
    const local = body.optionalBoolean('local') ?? false;
    if (local || !this.admin.multiInstance) {
      this.adapterHost.httpAdapter.status(response, 200);
      return { delivered: this.publisher.publishLocal(topic, data) };
    }
    this.publisher.publish(topic, data);
    this.adapterHost.httpAdapter.status(response, 202);
    return { queued: true };
  }

  @Post('broadcast')
  @HttpCode(200)
  broadcast(@Body() raw: unknown): { delivered: number } {
    return { delivered: this.publisher.broadcast(new ApiBody(raw).data('data')) };
  }

  @Post('connections/:id/send')
  @HttpCode(200)
  send(@Param('id') id: string, @Body() raw: unknown): { sent: true } {
    const data = new ApiBody(raw).data('data');
    if (this.admin.getConnection(id) === undefined) throw unknownConnection(id);
    if (!this.publisher.sendEvent(id, data)) throw unknownConnection(id);
    return { sent: true };
  }

  @Post('connections/:id/subscribe')
  @HttpCode(200)
  subscribe(@Param('id') id: string, @Body() raw: unknown): { topics: string[]; failed_topics: string[] } {
    const topics = new ApiBody(raw).topics('topics');
    const change = this.publisher.subscribe(id, topics);
    if (change === undefined) throw unknownConnection(id);
    return { topics: this.topicsOf(id), failed_topics: change.failed.map((f) => f.topic) };
  }

  @Post('connections/:id/unsubscribe')
  @HttpCode(200)
  unsubscribe(@Param('id') id: string, @Body() raw: unknown): { topics: string[] } {
    const topics = new ApiBody(raw ?? {}).optionalTopics('topics');
    if (this.publisher.unsubscribe(id, topics) === undefined) throw unknownConnection(id);
    return { topics: this.topicsOf(id) };
  }

  @Get('topics/:topic/subscribers')
  subscribers(@Param('topic') topic: string): { topic: string; count: number } {
    return { topic, count: this.admin.getTopicSubscriberCount(topic) };
  }

  @Get('connections')
  connections(): {
    connections: Array<{ id: string; user_id: string | null; topics: string[]; connected_at: string }>;
  } {
    return {
      connections: this.admin.connections().map((c) => ({
        id: c.id,
        user_id: c.userId,
        topics: [...c.topics],
        connected_at: c.connectedAt.toISOString(),
      })),
    };
  }

  /** Reading drains the dead letter queue (the seed's drain-on-read); `?peek=true` reads without draining. */
  @Get('dlq')
  dlq(@Query('peek') peek?: string): { entries: DeadLetterView[] } {
    const entries = peek === 'true' ? this.admin.peekDlqEntries() : this.admin.getDlqEntries();
    return { entries: entries.map(deadLetterView) };
  }

  /** `?unknown=true` also resends the entries that may have been delivered already. */
  @Post('dlq/replay')
  @HttpCode(200)
  replay(@Query('unknown') unknown?: string): Promise<DlqReplayResult> {
    return this.admin.replayDlq({ unknown: unknown === 'true' });
  }

  @Get('snapshot')
  snapshot(): WseHealthSnapshot {
    return this.admin.healthSnapshot();
  }

  private topicsOf(id: string): string[] {
    return [...(this.admin.getConnection(id)?.topics ?? [])];
  }
}

/**
 * A dead letter as `GET <api>/dlq` shows it. The payload is the published text, or, for bytes
 * that are not valid UTF-8, `payload_base64` (a replay resends the original bytes either way).
 */
export interface DeadLetterView {
  channel: string;
  payload?: string;
  payload_base64?: string;
  error: string;
  reason: DeadLetterReason;
  /** When it first failed (ISO 8601). */
  failed_at: string;
  replays: number;
}

function deadLetterView(entry: DeadLetter): DeadLetterView {
  const view: DeadLetterView = {
    channel: entry.channel,
    error: entry.error,
    reason: entry.reason,
    failed_at: new Date(entry.failedAt).toISOString(),
    replays: entry.replays,
  };
  const payload = entry.payload;
  if (typeof payload === 'string') view.payload = payload;
  else if (isUtf8(payload)) view.payload = payload.toString('utf8');
  else view.payload_base64 = payload.toString('base64');
  return view;
}
