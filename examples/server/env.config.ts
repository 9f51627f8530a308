import { existsSync } from 'node:fs';
import type { LogLevel } from '@nestjs/common';
import {
  compileTopicRules,
  resolveWseOptions,
  WseConfigError,
  type WseConfigProblem,
  type WseModuleOptions,
  type WseRedisRouting,
} from 'nestjs-wse';

/** What the example server reads from its environment (CONTRACT section 2). */
export interface AppEnvironment {
  readonly port: number;
  readonly host: string;
  /** Where the server API is mounted when `WSE_API_KEY` is set (`WSE_API_PATH`). */
  readonly apiPath: string;
  /** `GET /metrics` needs the API key too (`WSE_METRICS_REQUIRE_KEY=true`). */
  readonly metricsRequireKey: boolean;
  readonly logFormat: 'text' | 'json';
  readonly logLevel: LogLevel;
  /** How long a graceful stop may take before the process exits 1 anyway. */
  readonly shutdownTimeoutMs: number;
  readonly wse: WseModuleOptions;
}

const LOG_LEVELS: readonly LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];

/**
 * The example's subscription rules when WSE_SUBSCRIBE_ALLOW is unset: each user reads their own
 * topics and every chat room; anything else is refused (`WSE_SUBSCRIBE_ALLOW=*` opens every topic).
 */
export const EXAMPLE_SUBSCRIBE_ALLOW = 'user:{sub}:*,chat:*';

const JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
] as const;

/** The variable behind each module option, to name the variable when the option is refused. */
const VARIABLE_OF_OPTION: Readonly<Record<string, string>> = {
  path: 'WSE_PATH',
  maxConnections: 'WSE_MAX_CONNECTIONS',
  maxMessageBytes: 'WSE_MAX_MESSAGE_BYTES',
  pingIntervalMs: 'WSE_PING_INTERVAL_MS',
  idleTimeoutMs: 'WSE_IDLE_TIMEOUT_MS',
  apiKey: 'WSE_API_KEY',
  'auth.jwtSecret': 'WSE_JWT_SECRET',
  'auth.issuer': 'WSE_JWT_ISSUER',
  'auth.audience': 'WSE_JWT_AUDIENCE',
  'auth.cookieName': 'WSE_JWT_COOKIE',
  'auth.publicKey': 'WSE_JWT_PUBLIC_KEY',
  'auth.jwksUrl': 'WSE_JWT_JWKS_URL',
  'auth.algorithms': 'WSE_JWT_ALGORITHMS',
  'auth.maxTokenAgeSec': 'WSE_JWT_MAX_AGE_SEC',
  'auth.clockToleranceSec': 'WSE_JWT_CLOCK_TOLERANCE_SEC',
  auth: 'WSE_JWT_SECRET',
  'subscriptions.allow': 'WSE_SUBSCRIBE_ALLOW',
  'subscriptions.deny': 'WSE_SUBSCRIBE_DENY',
  'subscriptions.claim': 'WSE_SUBSCRIBE_CLAIM',
  'redis.url': 'REDIS_URL',
  'redis.routing': 'WSE_REDIS_ROUTING',
  'redis.cluster': 'REDIS_CLUSTER_NODES',
  'redis.cluster.nodes': 'REDIS_CLUSTER_NODES',
  'redis.prefix': 'WSE_REDIS_PREFIX',
  allowedOrigins: 'WSE_ALLOWED_ORIGINS',
  'recovery.topics': 'WSE_RECOVERY_TOPICS',
  'recovery.size': 'WSE_RECOVERY_SIZE',
  'recovery.ttlMs': 'WSE_RECOVERY_TTL_MS',
  'recovery.maxReplay': 'WSE_RECOVERY_MAX_REPLAY',
  'recovery.maxMemoryBytes': 'WSE_RECOVERY_MAX_MEMORY_BYTES',
};

/** Variables in the order of CONTRACT section 2: problems are listed in this order. */
const CONTRACT_ORDER = [
  // the contract's variables, then the example server's own
  'PORT',
  'HOST',
  'WSE_PATH',
  'WSE_MAX_CONNECTIONS',
  'WSE_JWT_SECRET',
  'WSE_JWT_ISSUER',
  'WSE_JWT_AUDIENCE',
  'WSE_JWT_COOKIE',
  'WSE_JWT_PUBLIC_KEY',
  'WSE_JWT_JWKS_URL',
  'WSE_JWT_ALGORITHMS',
  'WSE_JWT_REQUIRE_EXP',
  'WSE_JWT_MAX_AGE_SEC',
  'WSE_JWT_CLOCK_TOLERANCE_SEC',
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'WSE_REDIS_ROUTING',
  'WSE_REDIS_PREFIX',
  'WSE_API_KEY',
  'WSE_PING_INTERVAL_MS',
  'WSE_IDLE_TIMEOUT_MS',
  'WSE_MAX_MESSAGE_BYTES',
  'WSE_API_PATH',
  'WSE_RECOVERY_TOPICS',
  'WSE_RECOVERY_SIZE',
  'WSE_RECOVERY_TTL_MS',
  'WSE_RECOVERY_MAX_REPLAY',
  'WSE_RECOVERY_MAX_MEMORY_BYTES',
  'WSE_ALLOWED_ORIGINS',
  'WSE_SUBSCRIBE_ALLOW',
  'WSE_SUBSCRIBE_DENY',
  'WSE_SUBSCRIBE_CLAIM',
  'WSE_METRICS_REQUIRE_KEY',
  'WSE_LOG_FORMAT',
  'WSE_LOG_LEVEL',
  'WSE_SHUTDOWN_TIMEOUT_MS',
];

function byContractOrder(a: WseConfigProblem, b: WseConfigProblem): number {
  return CONTRACT_ORDER.indexOf(a.path) - CONTRACT_ORDER.indexOf(b.path);
}

/**
 * Reads and validates the example server's variables. Numbers are parsed here; everything else
 * is checked by the module's own resolver (one set of rules), whose problems are renamed to the
 * variables. Every bad value is collected and thrown as one `WseConfigError` naming the
 * variables, so `main.ts` can print it and exit non-zero.
 */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): AppEnvironment {
  const problems: WseConfigProblem[] = [];
  const read = new EnvReader(env, problems);
  const clusterNodes = read.list('REDIS_CLUSTER_NODES');
  const result: AppEnvironment = {
    port: read.int('PORT', 5006, { min: 0, max: 65_535 }),
    host: read.text('HOST') ?? '0.0.0.0',
    apiPath: read.text('WSE_API_PATH') ?? '/api',
    metricsRequireKey: read.boolean('WSE_METRICS_REQUIRE_KEY') ?? false,
    logFormat: read.oneOf('WSE_LOG_FORMAT', ['text', 'json'] as const) ?? 'text',
    logLevel: read.oneOf('WSE_LOG_LEVEL', LOG_LEVELS) ?? 'log',
    shutdownTimeoutMs: read.int('WSE_SHUTDOWN_TIMEOUT_MS', 10_000, { min: 1 }),
    wse: {
      allowedOrigins: read.list('WSE_ALLOWED_ORIGINS'),
      path: read.text('WSE_PATH'),
      maxConnections: read.optionalInt('WSE_MAX_CONNECTIONS', { min: 1 }),
      maxMessageBytes: read.optionalInt('WSE_MAX_MESSAGE_BYTES', { min: 1 }),
      pingIntervalMs: read.optionalInt('WSE_PING_INTERVAL_MS', { min: 1 }),
      idleTimeoutMs: read.optionalInt('WSE_IDLE_TIMEOUT_MS', { min: 1 }),
      apiKey: read.text('WSE_API_KEY'),
      auth: {
        jwtSecret: read.text('WSE_JWT_SECRET'),
        // A PEM key in one line: "\n" stands for the line breaks.
        publicKey: read.text('WSE_JWT_PUBLIC_KEY')?.replaceAll('\\n', '\n'),
        jwksUrl: read.text('WSE_JWT_JWKS_URL'),
        algorithms: read.list('WSE_JWT_ALGORITHMS', JWT_ALGORITHMS),
        // Without a key the example server runs anonymous, as the contract says; the module
        // itself refuses to guess, so the choice is made here, out loud (a warning at start).
        anonymous: ['WSE_JWT_SECRET', 'WSE_JWT_PUBLIC_KEY', 'WSE_JWT_JWKS_URL'].every(
          (name) => read.text(name) === undefined,
        )
          ? true
          : undefined,
        issuer: read.text('WSE_JWT_ISSUER'),
        audience: read.text('WSE_JWT_AUDIENCE'),
        cookieName: read.text('WSE_JWT_COOKIE'),
        requireExp: read.boolean('WSE_JWT_REQUIRE_EXP'),
        maxTokenAgeSec: read.optionalInt('WSE_JWT_MAX_AGE_SEC', { min: 1 }),
        clockToleranceSec: read.optionalInt('WSE_JWT_CLOCK_TOLERANCE_SEC', { min: 0 }),
      },
      subscriptions: {
        allow: read.ruleList('WSE_SUBSCRIBE_ALLOW') ?? read.ruleListOf('WSE_SUBSCRIBE_ALLOW', EXAMPLE_SUBSCRIBE_ALLOW),
        deny: read.ruleList('WSE_SUBSCRIBE_DENY'),
        claim: read.text('WSE_SUBSCRIBE_CLAIM'),
      },
      redis: {
        url: read.text('REDIS_URL'),
        // Checked with the other options: a wrong value is refused naming this variable.
        routing: read.text('WSE_REDIS_ROUTING') as WseRedisRouting | undefined,
        cluster: clusterNodes === undefined ? undefined : { nodes: clusterNodes },
        prefix: read.text('WSE_REDIS_PREFIX'),
      },
      recovery: {
        topics: read.list('WSE_RECOVERY_TOPICS'),
        size: read.optionalInt('WSE_RECOVERY_SIZE', { min: 1 }),
        ttlMs: read.optionalInt('WSE_RECOVERY_TTL_MS', { min: 1 }),
        maxReplay: read.optionalInt('WSE_RECOVERY_MAX_REPLAY', { min: 1 }),
        maxMemoryBytes: read.optionalInt('WSE_RECOVERY_MAX_MEMORY_BYTES', { min: 1 }),
      },
    },
  };
  try {
    const resolved = resolveWseOptions(result.wse);
    // The module compiles the rules when it starts; compiled here too, a bad rule is refused
    // naming its variable, as every other value.
    const rules = resolved.subscriptions;
    const compiled = rules && compileTopicRules(rules.allow, rules.deny, rules.claim);
    if (compiled !== undefined && !compiled.ok) throw new WseConfigError(compiled.problems);
  } catch (error) {
    if (!(error instanceof WseConfigError)) throw error;
    for (const problem of error.problems) {
      // `subscriptions.allow[2]` is the variable's third rule.
      const variable = VARIABLE_OF_OPTION[problem.path.replace(/\[\d+\]$/, '')];
      // A number the reader already refused comes back as an unset option: reported once.
      if (!problems.some((p) => p.path === variable)) problems.push({ ...problem, path: variable ?? problem.path });
    }
  }
  if (!result.apiPath.startsWith('/')) {
    problems.push({ path: 'WSE_API_PATH', rule: 'must start with "/"', value: result.apiPath });
  }
  if (result.metricsRequireKey && result.wse.apiKey === undefined) {
    problems.push({ path: 'WSE_METRICS_REQUIRE_KEY', rule: 'needs WSE_API_KEY to be set', value: 'true' });
  }
  if (problems.length > 0) throw new WseConfigError(problems.sort(byContractOrder), 'environment');
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

  boolean(name: string): boolean | undefined {
    const value = this.oneOf(name, ['true', 'false'] as const);
    return value === undefined ? undefined : value === 'true';
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const raw = this.text(name);
    if (raw === undefined) return undefined;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    this.problems.push({ path: name, rule: `must be one of ${allowed.join(', ')}`, value: raw });
    return undefined;
  }

  /** Comma-separated values, blanks dropped; with `allowed`, each must be one of them. */
  list<T extends string = string>(name: string, allowed?: readonly T[]): T[] | undefined {
    const raw = this.text(name);
    if (raw === undefined) return undefined;
    const items = raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
    if (allowed === undefined) return items as T[];
    const unknown = items.filter((item) => !(allowed as readonly string[]).includes(item));
    if (unknown.length > 0) {
      this.problems.push({ path: name, rule: `must list only ${allowed.join(', ')}`, value: raw });
      return undefined;
    }
    return items as T[];
  }

  /** Topic rules, comma-separated; a comma inside braces (`chat:{lobby,help}`) belongs to the rule. */
  ruleList(name: string): string[] | undefined {
    const raw = this.text(name);
    return raw === undefined ? undefined : this.ruleListOf(name, raw);
  }

  ruleListOf(_name: string, raw: string): string[] {
    const rules: string[] = [];
    let depth = 0;
    let current = '';
    for (let i = 0; i < raw.length; i++) {
      const ch = raw[i];
      if (ch === '\\' && i + 1 < raw.length) {
        current += ch + raw[++i];
        continue;
      }
      if (ch === '{') depth++;
      else if (ch === '}' && depth > 0) depth--;
      if (ch === ',' && depth === 0) {
        rules.push(current);
        current = '';
      } else {
        current += ch;
      }
    }
    rules.push(current);
    return rules.map((rule) => rule.trim()).filter((rule) => rule !== '');
  }

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
}
