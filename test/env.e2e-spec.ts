import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { eventually, TestClient, withTimeout } from './support/ws-client.js';

/**
 * The example server as its own process (CONTRACT section 2): `node dist-examples/server/main.js` with a clean
 * environment. Bad variables stop it with a non-zero exit naming them; a good environment
 * serves health and WebSocket, and SIGTERM stops it cleanly.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist-examples', 'server', 'main.js');
const EXIT_WITHIN_MS = 10_000;

interface ServerProcess {
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

const spawned: ChildProcess[] = [];
/** An empty working directory, so no stray `.env` of the repository is read. */
let workDir: string;

/** Starts `node dist-examples/server/main.js` with exactly `env` (plus PATH), nothing inherited from Jest. */
function runServer(env: Record<string, string>): ServerProcess {
  const child = spawn(process.execPath, [MAIN], {
    cwd: workDir,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/** Waits for the process to exit and for its output streams to drain. */
async function exitOf(server: ServerProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const result = await withTimeout(server.exited, EXIT_WITHIN_MS, 'the server process to exit');
  await withTimeout(
    Promise.all([
      new Promise((resolve) =>
        server.child.stdout!.readableEnded ? resolve(null) : server.child.stdout!.once('end', resolve),
      ),
      new Promise((resolve) =>
        server.child.stderr!.readableEnded ? resolve(null) : server.child.stderr!.once('end', resolve),
      ),
    ]),
    2_000,
    'the output streams to end',
  );
  return result;
}

/** A port nothing listens on right now: listen on 0, read it, close. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve, reject) => probe.close((error) => (error ? reject(error) : resolve())));
  return port;
}

/** Polls `GET url` until it answers (bounded), failing early if the process exits. */
async function waitForHttp(server: ServerProcess, url: string, timeoutMs = EXIT_WITHIN_MS): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      throw new Error(`server exited early (${server.child.exitCode ?? server.child.signalCode}): ${server.stderr()}`);
    }
    try {
      return await fetch(url);
    } catch {
      if (Date.now() > deadline)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${url}; stderr: ${server.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

beforeAll(() => {
  // `npm test` builds before the suites run (the pretest script).
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
  workDir = mkdtempSync(join(tmpdir(), 'wse-env-'));
}, 150_000);

afterAll(() => {
  for (const child of spawned) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
});

describe('example server process with a malformed environment', () => {
  it.each([
    ['PORT=abc', { PORT: 'abc' }, '  - PORT: must be a whole number from 0 to 65535 (got "abc")'],
    ['PORT=70000', { PORT: '70000' }, '  - PORT: must be a whole number from 0 to 65535 (got "70000")'],
    [
      'WSE_MAX_CONNECTIONS=-1',
      { WSE_MAX_CONNECTIONS: '-1' },
      '  - WSE_MAX_CONNECTIONS: must be a whole number >= 1 (got "-1")',
    ],
    [
      'REDIS_URL=http://localhost',
      { REDIS_URL: 'http://localhost' },
      '  - REDIS_URL: must be a redis:// or rediss:// URL (got "<hidden>")',
    ],
    [
      'WSE_IDLE_TIMEOUT_MS=0',
      { WSE_IDLE_TIMEOUT_MS: '0' },
      '  - WSE_IDLE_TIMEOUT_MS: must be a whole number >= 1 (got "0")',
    ],
    ['WSE_PATH=wse', { WSE_PATH: 'wse' }, '  - WSE_PATH: must be a URL path starting with "/" (got "wse")'],
  ])('exits non-zero within 10 s naming the variable for %s', async (_name, env, line) => {
    const server = runServer({ ...env, HOST: '127.0.0.1' });

    const { code } = await exitOf(server);

    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(server.stderr()).toBe(`Invalid environment:\n${line}\n`);
  });

  it('names both variables when two are bad', async () => {
    const server = runServer({ PORT: 'abc', WSE_MAX_CONNECTIONS: '-1' });

    const { code } = await exitOf(server);

    expect(code).toBe(1);
    expect(server.stderr()).toBe(
      'Invalid environment:\n' +
        '  - PORT: must be a whole number from 0 to 65535 (got "abc")\n' +
        '  - WSE_MAX_CONNECTIONS: must be a whole number >= 1 (got "-1")\n',
    );
  });

  it('never prints the password of a non-redis REDIS_URL', async () => {
    const server = runServer({ REDIS_URL: 'http://admin:hunter2-secret@localhost:6379/0' });

    const { code } = await exitOf(server);

    expect(code).toBe(1);
    expect(server.stderr()).toContain('REDIS_URL');
    expect(server.stdout() + server.stderr()).not.toContain('hunter2');
  });

  it('never prints the password of a valid REDIS_URL when another variable is bad', async () => {
    const server = runServer({ REDIS_URL: 'rediss://admin:hunter2-secret@localhost:6380', PORT: 'abc' });

    const { code } = await exitOf(server);

    expect(code).toBe(1);
    expect(server.stderr()).toContain('PORT');
    expect(server.stdout() + server.stderr()).not.toContain('hunter2');
  });
});

describe('example server process with a good environment', () => {
  it('serves /health and the WebSocket, and on SIGTERM closes clients with 1012 and exits within 10 s', async () => {
    const port = await freePort();
    const server = runServer({ PORT: String(port), HOST: '127.0.0.1' });
    let client: TestClient | undefined;
    try {
      const health = await waitForHttp(server, `http://127.0.0.1:${port}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', info: { wse: { status: 'up', connections: 0 } } });

      const connected = await TestClient.ready(`ws://127.0.0.1:${port}/wse`);
      client = connected.client;
      expect(connected.ready).toEqual({
        c: 'WSE',
        t: 'server_ready',
        p: {
          message: 'Connection established',
          details: expect.objectContaining({ version: 1, user_id: null, connection_id: expect.any(String) }),
        },
        v: 1,
      });

      server.child.kill('SIGTERM');

      expect(await client.closed(EXIT_WITHIN_MS)).toEqual({ code: 1012, reason: 'service restart' });
      await exitOf(server);
      expect(server.stderr()).toBe('');
    } finally {
      await client?.close();
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    }
  });

  it('exits with code 0 on SIGTERM', async () => {
    const port = await freePort();
    const server = runServer({ PORT: String(port), HOST: '127.0.0.1' });
    try {
      expect((await waitForHttp(server, `http://127.0.0.1:${port}/health`)).status).toBe(200);

      server.child.kill('SIGTERM');

      expect(await exitOf(server)).toEqual({ code: 0, signal: null });
    } finally {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    }
  });

  it('logs where it listens and that it runs in anonymous mode', async () => {
    const port = await freePort();
    const server = runServer({ PORT: String(port), HOST: '127.0.0.1' });
    try {
      await waitForHttp(server, `http://127.0.0.1:${port}/health`);
      const listening = `nestjs-wse example server on http://127.0.0.1:${port} (WebSocket /wse)`;
      // The line is logged right after listen() resolves, so it may trail the first answer a little.
      await eventually(() => server.stdout().includes(listening), 2_000, 'the listening log line');

      expect(server.stdout()).toContain('running in anonymous mode');
    } finally {
      server.child.kill('SIGKILL');
      await withTimeout(server.exited, EXIT_WITHIN_MS, 'the killed server to exit');
    }
  });
});
