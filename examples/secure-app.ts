// The README's examples of issue 16: Nest's pipeline on client events, a connect guard, topic
// rules and token settings, in one app. test/readme-secure-example.e2e-spec.ts starts it, so the
// README's code compiles and does what it says. In your project, import from 'nestjs-wse'.
import 'reflect-metadata';
import type { IncomingMessage } from 'node:http';
import {
  Catch,
  Injectable,
  Module,
  UseGuards,
  ValidationPipe,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IsString, Matches, MaxLength } from 'class-validator';
import { tap, type Observable } from 'rxjs';
import {
  OnWseEvent,
  WseClient,
  WseEventError,
  WseExecutionContext,
  WseModule,
  WsePayload,
  WsePublisher,
  WseWsAdapter,
  type WseClaims,
  type WseConnectGuard,
  type WseConnectionInfo,
  type WseConnectVerdict,
} from 'nestjs-wse';

// ---- Guards, pipes, interceptors, filters -------------------------------------------------

export class ChatMessageDto {
  @IsString()
  @Matches(/^[a-z0-9-]{1,32}$/)
  room!: string;

  @IsString()
  @MaxLength(2000)
  text!: string;
}

/** Refuses muted users: the client gets FORBIDDEN, correlated with its frame's id. */
@Injectable()
export class NotMuted implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const { connection } = WseExecutionContext.of(context);
    return connection.claims?.muted !== true;
  }
}

export class RoomArchivedError extends Error {}

/** Answers a domain exception with an error code of the app's own. */
@Catch(RoomArchivedError)
export class RoomArchivedFilter implements ExceptionFilter {
  catch(error: RoomArchivedError): never {
    throw new WseEventError('ROOM_ARCHIVED', error.message);
  }
}

/** Logs how long each client event took. */
export class TimingInterceptor implements NestInterceptor {
  readonly timings: Array<{ event: string; ms: number }> = [];

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (!WseExecutionContext.is(context)) return next.handle();
    const started = performance.now();
    const { event } = WseExecutionContext.of(context);
    return next.handle().pipe(tap(() => this.timings.push({ event, ms: performance.now() - started })));
  }
}

@Injectable()
@UseGuards(NotMuted)
export class ChatHandlers {
  constructor(private readonly wse: WsePublisher) {}

  @OnWseEvent('chat_message')
  onChat(@WsePayload() message: ChatMessageDto, @WseClient() connection: WseConnectionInfo): void {
    if (message.room === 'archive') throw new RoomArchivedError('this room is read-only');
    this.wse.publish(`chat:${message.room}`, { t: 'chat_message', p: { ...message, user_id: connection.userId } });
  }
}

// ---- A connect guard ------------------------------------------------------------------------

/** An application service the guard uses (a database in real life). */
@Injectable()
export class Accounts {
  private readonly suspended = new Set(['mallory']);

  async find(userId: string): Promise<{ suspended: boolean; plan: string }> {
    return { suspended: this.suspended.has(userId), plan: userId === 'alice' ? 'pro' : 'free' };
  }
}

@Injectable()
export class AccountGuard implements WseConnectGuard {
  constructor(private readonly accounts: Accounts) {}

  async canConnect(_request: IncomingMessage, claims: WseClaims | null): Promise<WseConnectVerdict> {
    const account = await this.accounts.find(String(claims?.sub));
    if (account.suspended) return false; // closed with 4403, nothing delivered
    return { claims: { plan: account.plan } }; // seen by guards, handlers and hooks
  }
}

// ---- The module: topic rules and token settings ----------------------------------------------

@Module({
  imports: [
    WseModule.forRoot({
      auth: {
        jwtSecret: process.env.JWT_SECRET, // or publicKey / jwksUrl for RS256, ES256 ...
        requireExp: true, // the default: tokens without exp are refused
        maxTokenAgeSec: 24 * 3600, // and so are tokens issued more than a day ago
        clockToleranceSec: 5,
      },
      subscriptions: {
        allow: ['user:{sub}:*', 'chat:*', 'prices:{btc,eth}'],
        deny: ['chat:staff'],
      },
      connectGuard: AccountGuard,
    }),
  ],
  providers: [ChatHandlers, Accounts, AccountGuard],
})
export class SecureAppModule {}

export async function bootstrap(port = 3000): Promise<void> {
  const app = await NestFactory.create(SecureAppModule);
  app.useWebSocketAdapter(new WseWsAdapter(app));
  app.useGlobalPipes(new ValidationPipe()); // validates @OnWseEvent payloads too
  app.useGlobalFilters(new RoomArchivedFilter());
  app.useGlobalInterceptors(new TimingInterceptor());
  await app.listen(port);
}
