import { existsSync } from 'node:fs';
import { WseConfigError, type WseConfigProblem, type WseModuleOptions } from '../wse/index.js';

/** What the example server reads from its environment (CONTRACT section 2). */
export interface AppEnvironment {
  readonly port: number;
  readonly host: string;
  readonly wse: WseModuleOptions;
}

/**
 * Reads and validates the example server's variables. Every bad value is collected and thrown
 * as one `WseConfigError` naming the variables, so `main.ts` can print it and exit non-zero.
 */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): AppEnvironment {
  const problems: WseConfigProblem[] = [];
  const read = new EnvReader(env, problems);
  const result: AppEnvironment = {
    port: read.int('PORT', 5006, { min: 0, max: 65_535 }),
    host: read.text('HOST') ?? '0.0.0.0',
    wse: {
      path: read.path('WSE_PATH'),
      maxConnections: read.optionalInt('WSE_MAX_CONNECTIONS', { min: 1 }),
      maxMessageBytes: read.optionalInt('WSE_MAX_MESSAGE_BYTES', { min: 1 }),
      pingIntervalMs: read.optionalInt('WSE_PING_INTERVAL_MS', { min: 1 }),
      idleTimeoutMs: read.optionalInt('WSE_IDLE_TIMEOUT_MS', { min: 1 }),
      apiKey: read.text('WSE_API_KEY'),
      auth: {
        jwtSecret: read.text('WSE_JWT_SECRET'),
        issuer: read.text('WSE_JWT_ISSUER'),
        audience: read.text('WSE_JWT_AUDIENCE'),
        cookieName: read.text('WSE_JWT_COOKIE'),
      },
      redis: {
        url: read.redisUrl('REDIS_URL'),
        prefix: read.text('WSE_REDIS_PREFIX'),
      },
    },
  };
  if (problems.length > 0) throw new WseConfigError(problems, 'environment');
  return result;
}

/** Loads `.env` from the working directory when there is one; real variables win over it. */
export function loadDotEnv(file = '.env'): void {
  if (existsSync(file)) process.loadEnvFile(file);
}

class EnvReader {
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly problems: WseConfigProblem[],
  ) {}

  /** A set, non-blank value, or undefined. A blank value counts as unset, as in most tools. */
  text(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  }

  int(name: string, fallback: number, range: { min: number; max?: number }): number {
    return this.optionalInt(name, range) ?? fallback;
  }

  optionalInt(name: string, { min, max = Number.MAX_SAFE_INTEGER }: { min: number; max?: number }): number | undefined {
    const raw = this.text(name);
    if (raw === undefined) return undefined;
    const value = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      const rule =
        max === Number.MAX_SAFE_INTEGER
          ? `must be a whole number >= ${min}`
          : `must be a whole number from ${min} to ${max}`;
      this.problems.push({ path: name, rule, value: raw });
      return undefined;
    }
    return value;
  }

  path(name: string): string | undefined {
    const raw = this.text(name);
    if (raw !== undefined && !raw.startsWith('/')) {
      this.problems.push({ path: name, rule: 'must be a URL path starting with "/"', value: raw });
    }
    return raw;
  }

  redisUrl(name: string): string | undefined {
    const raw = this.text(name);
    if (raw === undefined) return undefined;
    let protocol = '';
    try {
      protocol = new URL(raw).protocol;
    } catch {
      // not a URL at all: reported below
    }
    if (protocol !== 'redis:' && protocol !== 'rediss:') {
      // The URL may hold a password: name the variable, never echo its value.
      this.problems.push({ path: name, rule: 'must be a redis:// or rediss:// URL', value: '<hidden>' });
      return undefined;
    }
    return raw;
  }
}
