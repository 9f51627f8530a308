import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  ConsumerAppProcess,
  createApp,
  installedVersion,
  NPM_FLAGS,
  packLibrary,
  ROOT,
  run,
  type PackedLibrary,
} from './support/consumer-apps.js';
import { WSE_DEFAULTS } from '../src/index.js';
import { TEST_SECRET, signToken } from './support/jwt.js';
import { parseExposition } from './support/prometheus.js';
import { TestClient } from './support/ws-client.js';

/**
 * The library as a user gets it (issue 11): `npm pack` of this repository, then fresh Nest apps
 * in temporary directories outside it, each installing its own Nest from the registry and then
 * the tarball, compiling with `tsc` (strict, `skipLibCheck: false`) and running as `node`:
 * a CommonJS app on the previous Nest minor, an ES module app on the current one, and a
 * Fastify app. The app sources are the templates in `test/consumer/`.
 */

/** One npm or tsc run. The first run on a machine fetches packages from the registry. */
const STEP_TIMEOUT_MS = 5 * 60_000;
/** A hook that waits for the pack, both installs and the compile of an app. */
const SETUP_TIMEOUT_MS = 15 * 60_000;
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const API_KEY = 'k';
/** `nestjs-wse/client` is checked once the package has it. */
const HAS_CLIENT = existsSync(join(ROOT, 'src/client/index.ts'));

interface ConsumerApp {
  /** The template folder under `test/consumer/`. */
  readonly name: string;
  readonly title: string;
  /** The Nest version the app pins, which must be the one it runs. */
  readonly nest: string;
  readonly platform: '@nestjs/platform-express' | '@nestjs/platform-fastify';
  readonly moduleSystem: 'commonjs' | 'esm';
  /** `auth: { jwtSecret: process.env.JWT_SECRET }` instead of `anonymous: true`. */
  readonly jwt: boolean;
  /** Also compiles and runs `test/consumer/client/client-check.ts` (nestjs-wse/client). */
  readonly clientCheck: boolean;
}

const APPS: readonly ConsumerApp[] = [
  {
    name: 'cjs-express',
    title: 'a CommonJS app on the previous Nest minor (12.4.2, Express, JWT)',
    nest: '12.4.2',
    platform: '@nestjs/platform-express',
    moduleSystem: 'commonjs',
    jwt: true,
    clientCheck: false,
  },
  {
    name: 'esm-express',
    title: 'an ES module app on the current Nest (12.5.1, Express, anonymous)',
    nest: '12.5.1',
    platform: '@nestjs/platform-express',
    moduleSystem: 'esm',
    jwt: false,
    clientCheck: true,
  },
  {
    name: 'esm-fastify',
    title: 'an ES module app on Fastify (12.5.1, @nestjs/platform-fastify 12.5.0, anonymous)',
    nest: '12.5.1',
    platform: '@nestjs/platform-fastify',
    moduleSystem: 'esm',
    jwt: false,
    clientCheck: false,
  },
];

/** Marks a promise as handled: it is awaited later, by the tests that need it. */
function later<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

async function http(
  url: string,
  init: { method?: 'GET' | 'POST'; body?: unknown; apiKey?: string } = {},
): Promise<{ status: number; type: string; text: string }> {
  const headers: Record<string, string> = {};
  if (init.apiKey !== undefined) headers.authorization = `Bearer ${init.apiKey}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(5_000),
  });
  return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}

describe('nestjs-wse installed from its tarball', () => {
  let work: string;
  let library: Promise<PackedLibrary>;
  const built = new Map<string, Promise<string>>();
  /** Every install and build started, awaited before the directory goes. */
  const started: Array<Promise<unknown>> = [];

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nestjs-wse-consumer-'));
    library = later(packLibrary(work, STEP_TIMEOUT_MS));
    for (const app of APPS) {
      const dir = join(work, app.name);
      // Each app installs its own Nest while the library builds and packs, then adds the tarball
      // as `npm install ./nestjs-wse-<version>.tgz` into an existing app would.
      const created = createApp(app.name, dir, STEP_TIMEOUT_MS, app.clientCheck && HAS_CLIENT ? ['client'] : []);
      const ready = Promise.all([library, created]).then(async ([{ tarball }]) => {
        await run('npm', ['install', ...NPM_FLAGS, tarball], { cwd: dir, timeoutMs: STEP_TIMEOUT_MS });
        await run(join(dir, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], {
          cwd: dir,
          timeoutMs: STEP_TIMEOUT_MS,
        });
        return dir;
      });
      built.set(app.name, later(ready));
      started.push(created, ready);
    }
    started.push(library);
  });

  afterAll(async () => {
    await Promise.allSettled(started);
    rmSync(work, { recursive: true, force: true });
  }, SETUP_TIMEOUT_MS);

  describe('the tarball', () => {
    it(
      'holds only the library: dist/, LICENSE, README.md and package.json',
      async () => {
        const { tarball, files } = await library;
        const listed = (await run('tar', ['-tzf', tarball], { cwd: work, timeoutMs: 30_000 })).stdout
          .split('\n')
          .filter((line) => line !== '' && !line.endsWith('/'));
        expect(listed.every((path) => path.startsWith('package/'))).toBe(true);
        expect(listed.map((path) => path.slice('package/'.length)).sort()).toEqual([...files].sort());

        const top = ['LICENSE', 'README.md', 'package.json'];
        expect(files.filter((path) => !path.startsWith('dist/') && !top.includes(path))).toEqual([]);
        expect(top.filter((path) => !files.includes(path))).toEqual([]);
        expect(files).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts']));
        if (HAS_CLIENT) {
          expect(files).toEqual(expect.arrayContaining(['dist/client/index.js', 'dist/client/index.d.ts']));
        }
        expect(files.filter((path) => !/\.(js|d\.ts)$/.test(path) && path.startsWith('dist/'))).toEqual([]);
        // What the tarball held before it had a files list (issue 11): suites, the example
        // server (dist/main.js, dist/app/), benchmarks, docs, CI scripts.
        expect(
          files.filter((path) => /(^|\/)(test|tests|examples?|bench|docs|app|\.ci)\/|\.spec\.|main\.js$/.test(path)),
        ).toEqual([]);
      },
      SETUP_TIMEOUT_MS,
    );
  });

  describe.each(APPS)('in $title', (app) => {
    let dir: string;
    let server: ConsumerAppProcess | undefined;
    let wsUrl: string;
    const clients: TestClient[] = [];

    /** A `ws` client past `server_ready`, with a token when the app requires one. */
    async function connect(sub = 'consumer-1'): Promise<{ client: TestClient; userId: unknown }> {
      const query = app.jwt ? `?token=${signToken({ sub })}` : '';
      const { client, ready } = await TestClient.ready(`${wsUrl}${query}`);
      clients.push(client);
      return { client, userId: (ready.p.details as Record<string, unknown>).user_id };
    }

    beforeAll(async () => {
      dir = await built.get(app.name)!;
      server = await ConsumerAppProcess.start(dir, app.jwt ? { JWT_SECRET: TEST_SECRET } : {}, START_TIMEOUT_MS);
      wsUrl = `${server.url.replace('http:', 'ws:')}/wse`;
    }, SETUP_TIMEOUT_MS);

    afterAll(async () => {
      for (const client of clients) await client.close();
      if (server?.running) await server.stop(STOP_GRACE_MS);
    });

    it(`is ${app.moduleSystem === 'esm' ? 'an ES module' : 'a CommonJS'} app loading ES-module-only Nest 12`, () => {
      // Nest 12 and nestjs-wse ship ES modules only; a CommonJS app loads them with require(),
      // which Node 20.19 and later accept for module graphs without top-level await.
      expect(JSON.parse(readFileSync(join(dir, 'node_modules/@nestjs/core/package.json'), 'utf8'))).toMatchObject({
        type: 'module',
      });
      expect(JSON.parse(readFileSync(join(dir, 'node_modules/nestjs-wse/package.json'), 'utf8'))).toMatchObject({
        type: 'module',
      });
      const main = readFileSync(join(dir, 'dist/main.js'), 'utf8');
      if (app.moduleSystem === 'esm') {
        expect(main).toMatch(/^import \{ NestFactory \} from ["']@nestjs\/core["'];$/m);
      } else {
        expect(main).toMatch(/require\(["']@nestjs\/core["']\)/);
        expect(main).toMatch(/require\(["']nestjs-wse["']\)/);
      }
    });

    it('runs its own Nest, with no second copy inside nestjs-wse', () => {
      expect(installedVersion(dir, '@nestjs/core')).toBe(app.nest);
      expect(installedVersion(dir, '@nestjs/common')).toBe(app.nest);
      expect(installedVersion(dir, app.platform)).toBe(
        app.platform === '@nestjs/platform-fastify' ? '12.5.0' : app.nest,
      );
      expect(existsSync(join(dir, 'node_modules/nestjs-wse/node_modules/@nestjs/core'))).toBe(false);
      expect(existsSync(join(dir, 'node_modules/nestjs-wse/node_modules/@nestjs/common'))).toBe(false);
      // The library brings no HTTP platform: a Fastify app has no Express at all.
      if (app.platform === '@nestjs/platform-fastify') {
        expect(installedVersion(dir, 'express')).toBeUndefined();
        expect(installedVersion(dir, '@nestjs/platform-express')).toBeUndefined();
      }
    });

    it('delivers to a ws client what the server API and the WsePublisher publish, exactly', async () => {
      const { client, userId } = await connect();
      expect(userId).toBe(app.jwt ? 'consumer-1' : null);
      const update = await client.subscribe(['orders:42']);
      expect(update.p.success_topics).toEqual(['orders:42']);

      const data = { order: 42, state: 'paid', lines: [1, 2] };
      const published = await http(`${server!.url}/wse-api/publish`, {
        method: 'POST',
        body: { topic: 'orders:42', data },
        apiKey: API_KEY,
      });
      expect({ status: published.status, body: JSON.parse(published.text) as unknown }).toEqual({
        status: 200,
        body: { delivered: 1 },
      });
      expect((await client.next()).text).toBe(JSON.stringify(data));

      const notified = await http(`${server!.url}/notify`, {
        method: 'POST',
        body: { topic: 'orders:42', data: 'shipped' },
      });
      expect(notified.status).toBe(200);
      expect((await client.next()).text).toBe('shipped');
      await client.expectNothing(100);
    });

    it('answers the server API only with its key', async () => {
      const refused = await http(`${server!.url}/wse-api/publish`, {
        method: 'POST',
        body: { topic: 'orders:42', data: 1 },
        apiKey: 'wrong',
      });
      expect(refused.status).toBe(401);
    });

    if (app.jwt) {
      it('refuses a connection without a token with 4401', async () => {
        const client = await TestClient.connect(wsUrl);
        clients.push(client);
        expect((await client.nextEnvelope()).p.code).toBe('AUTH_FAILED');
        expect((await client.closed()).code).toBe(4401);
      });
    }

    it("answers GET /health through the app's own Terminus controller, wse up", async () => {
      const health = await http(`${server!.url}/health`);
      expect(health.status).toBe(200);
      const body = JSON.parse(health.text) as {
        status: string;
        info: { wse: { status: string; connections: number } };
      };
      expect(body.status).toBe('ok');
      expect(body.info.wse.status).toBe('up');
      expect(typeof body.info.wse.connections).toBe('number');
    });

    it('leaves /api to the app: its own GET /api/connections answers', async () => {
      const own = await http(`${server!.url}/api/connections`);
      expect({ status: own.status, body: JSON.parse(own.text) as unknown }).toEqual({
        status: 200,
        body: { mine: true },
      });
    });

    it('serves Prometheus text at GET /metrics', async () => {
      const open = clients.filter((client) => client.isOpen).length;
      const metrics = await http(`${server!.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.type).toMatch(/^text\/plain/);
      expect(parseExposition(metrics.text).value('wse_connections')).toBe(open);
    });

    it('refuses deep imports: only the exports map is importable', async () => {
      // The package name resolves (the app itself shows it loads); a path into dist/ does not.
      const deep = 'nestjs-wse/dist/hub/topic-registry.service.js';
      const script =
        app.moduleSystem === 'esm'
          ? `const root = import.meta.resolve('nestjs-wse');
             const deep = await import('${deep}').then(() => 'imported', (e) => e.code);
             console.log(JSON.stringify({ root, deep }));`
          : `const root = require.resolve('nestjs-wse');
             let deep = 'required';
             try { require('${deep}'); } catch (e) { deep = e.code; }
             console.log(JSON.stringify({ root, deep }));`;
      const args = app.moduleSystem === 'esm' ? ['--input-type=module', '-e', script] : ['-e', script];
      const { stdout } = await run(process.execPath, args, { cwd: dir, timeoutMs: 30_000 });
      const answer = JSON.parse(stdout.trim().split('\n').pop()!) as { root: string; deep: string };
      expect(answer.root).toMatch(/node_modules\/nestjs-wse\/dist\/index\.js$/);
      expect(answer.deep).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
    });

    if (app.clientCheck) {
      (HAS_CLIENT ? it : it.skip)("receives a message through WseClient from 'nestjs-wse/client'", async () => {
        // Node 20 has the standard WebSocket behind a flag; later versions have it on.
        const flags = typeof globalThis.WebSocket === 'undefined' ? ['--experimental-websocket'] : [];
        const { stdout } = await run(
          process.execPath,
          [...flags, 'dist/client-check.js', server!.url, 'client:check'],
          { cwd: dir, timeoutMs: 30_000 },
        );
        expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ from: 'nestjs-wse/client' });
      });
    }

    it('stops on SIGTERM: clients get the shutdown close code and the process exits', async () => {
      const { client } = await connect('consumer-2');
      const exit = await server!.stop(STOP_GRACE_MS);
      // Nest's shutdown hooks close the app, then re-raise the signal.
      expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
      expect((await client.closed()).code).toBe(WSE_DEFAULTS.shutdownCloseCode);
    });
  });
});
