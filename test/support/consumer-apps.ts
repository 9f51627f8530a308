import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './ws-client.js';

/** The repository root and the consumer app templates. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TEMPLATES = join(ROOT, 'test/consumer');

/** Output kept per command or process for failure messages, bounded. */
const MAX_OUTPUT_CHARS = 20_000;

/** npm flags of every install: reuse the local cache, no audit or funding requests. */
export const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund'];

/**
 * The environment for npm and tsc: this process's, minus what describes the project or run that
 * started it. `npm test` exports `npm_config_local_prefix`, `npm_package_*` and friends, which
 * would point a child npm back at this repository; `NODE_OPTIONS` carries Jest's VM flags.
 */
export function toolEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (
      lower.startsWith('npm_package_') ||
      lower.startsWith('npm_lifecycle_') ||
      ['npm_config_local_prefix', 'npm_command', 'npm_config_call', 'init_cwd', 'node_options', 'node_env'].includes(
        lower,
      )
    ) {
      continue;
    }
    env[key] = value;
  }
  return env;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion; rejects with its output when it exits non-zero or runs past
 * `timeoutMs`. It runs in a process group of its own, so a timeout kills what it started too
 * (npm's lifecycle shell and the compiler under it), by that group's id.
 */
export function run(
  command: string,
  args: readonly string[],
  { cwd, timeoutMs, env = toolEnv() }: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-MAX_OUTPUT_CHARS)));
    const what = `${command} ${args.join(' ')} (in ${cwd})`;
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      reject(new Error(`${what} ran past ${timeoutMs} ms\n${stdout.slice(-MAX_OUTPUT_CHARS)}\n${stderr}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${what} exited with ${code ?? signal}\n${stdout.slice(-MAX_OUTPUT_CHARS)}\n${stderr}`));
    });
  });
}

/** What `npm pack --json` says of the tarball. */
export interface PackedLibrary {
  /** Absolute path of the .tgz. */
  readonly tarball: string;
  /** Paths inside the tarball, without the `package/` prefix. */
  readonly files: readonly string[];
  /** Compressed size in bytes. */
  readonly size: number;
  readonly unpackedSize: number;
}

/** Top-level entries of the working tree that a clean clone does not have. */
const NOT_IN_A_CLONE = new Set([
  '.git',
  'node_modules',
  'dist',
  'dist-examples',
  'dist-bench',
  'coverage',
  'test-results',
]);

/**
 * `npm pack` of the repository, prepack (the build) included, as a clean clone would pack it: the
 * working tree is copied to `workDir/source` without build output (so a stale file in `dist/`
 * cannot hide a missing one, and the `dist/` that other suites run from is not rewritten under
 * them), with `node_modules` linked for the compiler.
 */
export async function packLibrary(workDir: string, timeoutMs: number): Promise<PackedLibrary> {
  const source = join(workDir, 'source');
  cpSync(ROOT, source, { recursive: true, filter: (path) => !NOT_IN_A_CLONE.has(relative(ROOT, path)) });
  symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir');
  const destination = join(workDir, 'pack');
  mkdirSync(destination);
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', destination], {
    cwd: source,
    timeoutMs,
  });
  const [info] = JSON.parse(stdout) as Array<{
    filename: string;
    size: number;
    unpackedSize: number;
    files: Array<{ path: string }>;
  }>;
  return {
    tarball: join(destination, info.filename),
    files: info.files.map((file) => file.path),
    size: info.size,
    unpackedSize: info.unpackedSize,
  };
}

/**
 * Lays out the consumer app `name` in `dir` from its template (`test/consumer/<name>/`, plus
 * the sources in `test/consumer/shared/` and in each of `extraSources`) and installs its own
 * dependencies from the registry, as an application that exists before it adds the library.
 */
export async function createApp(
  name: string,
  dir: string,
  timeoutMs: number,
  extraSources: readonly string[] = [],
): Promise<void> {
  cpSync(join(TEMPLATES, name), dir, { recursive: true });
  for (const folder of ['shared', ...extraSources]) {
    cpSync(join(TEMPLATES, folder), join(dir, 'src'), { recursive: true });
  }
  await run('npm', ['install', ...NPM_FLAGS], { cwd: dir, timeoutMs });
}

/** A `package.json` of an installed package in `appDir`, or undefined when it is not there. */
export function installedVersion(appDir: string, packagePath: string): string | undefined {
  try {
    const json = JSON.parse(readFileSync(join(appDir, 'node_modules', packagePath, 'package.json'), 'utf8')) as {
      version: string;
    };
    return json.version;
  } catch {
    return undefined;
  }
}

/**
 * A built consumer app running as `node dist/main.js` in its own directory, on 127.0.0.1 and a
 * port the OS chose (the app prints `listening on <url>`).
 */
export class ConsumerAppProcess {
  private output = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private listening: string | undefined;

  private constructor(private readonly child: ChildProcess) {
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-MAX_OUTPUT_CHARS);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Spawns the app with `env` added to a bare PATH and waits for its URL, at most `timeoutMs`. */
  static async start(appDir: string, env: Record<string, string>, timeoutMs: number): Promise<ConsumerAppProcess> {
    const child = spawn(process.execPath, ['dist/main.js'], {
      cwd: appDir,
      env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const app = new ConsumerAppProcess(child);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(app.output);
      if (match !== null) {
        app.listening = match[1];
        return app;
      }
      if (!app.running || Date.now() > deadline) {
        const why = app.running ? `did not listen within ${timeoutMs} ms` : 'exited';
        await app.stop(1_000).catch(() => undefined);
        throw new Error(`the app in ${appDir} ${why}\n--- app output ---\n${app.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    if (this.listening === undefined) throw new Error('the app is not listening');
    return this.listening;
  }

  /** What the process printed so far (last 20,000 characters). */
  get log(): string {
    return this.output;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * SIGTERM to its PID, then waits for the exit at most `graceMs`; past that SIGKILL and reject,
   * since a Nest app with shutdown hooks must stop by itself.
   */
  async stop(graceMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill('SIGTERM');
    try {
      return await withTimeout(this.exited, graceMs, 'the app to exit after SIGTERM');
    } catch (error) {
      this.child.kill('SIGKILL');
      throw new Error(`${(error as Error).message}\n--- app output ---\n${this.output}`, { cause: error });
    }
  }
}
