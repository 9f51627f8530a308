import {
  type CanActivate,
  type ExecutionContext,
  Injectable,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import type { Request } from 'express';
import { InjectWseOptions } from '../../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../../config/wse-module-options.interface.js';
import { apiErrors } from './api-errors.js';
import { WseApiKey } from './api-key.js';

/**
 * Guards the server API. Without `apiKey` the API does not exist (404, as for any unknown
 * route); with it, every call needs `Authorization: Bearer <key>` (otherwise 401).
 */
@Injectable()
export class WseApiKeyGuard implements CanActivate {
  private readonly key: WseApiKey | undefined;

  constructor(@InjectWseOptions() options: ResolvedWseOptions) {
    this.key = options.apiKey === undefined ? undefined : new WseApiKey(options.apiKey);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.key === undefined) throw new NotFoundException();
    if (!this.key.matches(context.switchToHttp().getRequest<Request>().headers.authorization)) {
      throw new UnauthorizedException(apiErrors.unauthorized());
    }
    return true;
  }
}
