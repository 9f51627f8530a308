import { createHash, timingSafeEqual } from 'node:crypto';
import {
  type CanActivate,
  type ExecutionContext,
  Injectable,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import type { Request } from 'express';
import { InjectWseOptions } from '../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../config/wse-module-options.interface.js';
import { apiErrors } from './api-errors.js';

/**
 * Guards the server API. Without `apiKey` the API does not exist (404, as for any unknown
 * route); with it, every call needs `Authorization: Bearer <key>` (otherwise 401).
 *
 * Keys are compared as SHA-256 digests with `timingSafeEqual`: equal length by construction,
 * so neither the key's content nor its length leaks through response timing.
 */
@Injectable()
export class WseApiKeyGuard implements CanActivate {
  private readonly keyDigest: Buffer | undefined;

  constructor(@InjectWseOptions() options: ResolvedWseOptions) {
    this.keyDigest = options.apiKey === undefined ? undefined : sha256(options.apiKey);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.keyDigest === undefined) throw new NotFoundException();
    const header = context.switchToHttp().getRequest<Request>().headers.authorization ?? '';
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (match === null || !timingSafeEqual(sha256(match[1]), this.keyDigest)) {
      throw new UnauthorizedException(apiErrors.unauthorized());
    }
    return true;
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
