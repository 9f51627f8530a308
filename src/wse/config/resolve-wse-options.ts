import { WseConfigError, type WseConfigProblem } from './wse-config.error.js';
import type { ResolvedWseOptions, WseModuleOptions } from './wse-module-options.interface.js';

/** Every default in one place; nothing else in the library applies its own. */
export const WSE_DEFAULTS = Object.freeze({
  path: '/wse',
  maxConnections: 10_000,
  maxMessageBytes: 1_048_576,
  pingIntervalMs: 25_000,
  idleTimeoutMs: 60_000,
  cookieName: 'access_token',
  inboundQueueSize: 10_000,
  inboundConcurrency: 64,
  maxBufferedBytes: 4 * 1_048_576,
});

/**
 * Merges the defaults into `input` and validates the result. Collects every problem and throws
 * one `WseConfigError` naming each option, so a bad option fails start-up, never a request.
 */
export function resolveWseOptions(input: WseModuleOptions = {}): ResolvedWseOptions {
  const problems: WseConfigProblem[] = [];
  const check = new OptionChecker(problems);

  if (typeof input !== 'object' || input === null) {
    throw new WseConfigError([{ path: '(options)', rule: 'must be an object', value: input }]);
  }
  const auth = input.auth ?? {};
  const resolved: ResolvedWseOptions = {
    path: check.path('path', input.path ?? WSE_DEFAULTS.path),
    maxConnections: check.positiveInt('maxConnections', input.maxConnections ?? WSE_DEFAULTS.maxConnections),
    maxMessageBytes: check.positiveInt('maxMessageBytes', input.maxMessageBytes ?? WSE_DEFAULTS.maxMessageBytes),
    pingIntervalMs: check.positiveInt('pingIntervalMs', input.pingIntervalMs ?? WSE_DEFAULTS.pingIntervalMs),
    idleTimeoutMs: check.positiveInt('idleTimeoutMs', input.idleTimeoutMs ?? WSE_DEFAULTS.idleTimeoutMs),
    auth: Object.freeze({
      jwtSecret: check.optionalText('auth.jwtSecret', auth.jwtSecret, { secret: true }),
      issuer: check.optionalText('auth.issuer', auth.issuer),
      audience: check.optionalText('auth.audience', auth.audience),
      cookieName: check.cookieName('auth.cookieName', auth.cookieName ?? WSE_DEFAULTS.cookieName),
    }),
    apiKey: check.optionalText('apiKey', input.apiKey, { secret: true }),
    inboundQueueSize: check.positiveInt('inboundQueueSize', input.inboundQueueSize ?? WSE_DEFAULTS.inboundQueueSize),
    inboundConcurrency: check.positiveInt(
      'inboundConcurrency',
      input.inboundConcurrency ?? WSE_DEFAULTS.inboundConcurrency,
    ),
    maxBufferedBytes: check.positiveInt('maxBufferedBytes', input.maxBufferedBytes ?? WSE_DEFAULTS.maxBufferedBytes),
    authorizeSubscription: check.optionalFunction('authorizeSubscription', input.authorizeSubscription),
  };
  if (problems.length > 0) throw new WseConfigError(problems);
  return Object.freeze(resolved);
}

/** Records a problem and hands back the value unchanged, so resolution reads as one table. */
class OptionChecker {
  constructor(private readonly problems: WseConfigProblem[]) {}

  positiveInt(path: string, value: number): number {
    if (!Number.isSafeInteger(value) || value <= 0) this.fail(path, 'must be a positive integer', value);
    return value;
  }

  path(path: string, value: string): string {
    if (typeof value !== 'string' || !/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(value)) {
      this.fail(path, 'must be a URL path starting with "/"', value);
    }
    return value;
  }

  /** A `secret` is never echoed back: the error shows its type only. */
  optionalText(path: string, value: string | undefined, { secret = false } = {}): string | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.length === 0) {
      this.fail(path, 'must be a non-empty string when set', secret ? `<${typeof value}>` : value);
    }
    return value;
  }

  cookieName(path: string, value: string): string {
    // RFC 6265 token characters: what a browser will actually send back as a cookie name.
    if (typeof value !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) {
      this.fail(path, "must be a cookie name (letters, digits, and !#$%&'*+.^_`|~-)", value);
    }
    return value;
  }

  optionalFunction<F>(path: string, value: F | undefined): F | undefined {
    if (value !== undefined && typeof value !== 'function') this.fail(path, 'must be a function when set', value);
    return value;
  }

  private fail(path: string, rule: string, value: unknown): void {
    this.problems.push({ path, rule, value });
  }
}
