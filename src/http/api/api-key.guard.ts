import { type CanActivate, type ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import { WseConfigError } from '../../errors/wse-config.error.js';
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
  private readonly key: WseApiKey;

  constructor(@InjectWseOptions() options: ResolvedWseOptions) {
    // Fail closed at start: an API mounted without a key would be open to anyone.
    if (options.apiKey === undefined) {
      throw new WseConfigError([
        { path: 'apiKey', rule: 'must be set when WseHttpModule mounts the server API', value: undefined },
      ]);
    }
    this.key = new WseApiKey(options.apiKey);
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string | string[] | undefined> }>();
    const authorization = request.headers.authorization;
    if (!this.key.matches(typeof authorization === 'string' ? authorization : undefined)) {
      throw new UnauthorizedException(apiErrors.unauthorized());
    }
    return true;
  }
}
