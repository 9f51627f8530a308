import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { startApp, type RunningApp } from './support/app.js';

/** `GET /`: the demo page (`public/index.html`), told where the WebSocket endpoint is. */
describe('GET /, the demo page', () => {
  let app: RunningApp | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function getPage(env: Record<string, string>): Promise<{ status: number; type: string | null; html: string }> {
    app = await startApp(env);
    const response = await fetch(`${app.httpUrl}/`, { signal: AbortSignal.timeout(5_000) });
    return { status: response.status, type: response.headers.get('content-type'), html: await response.text() };
  }

  it('serves the page as HTML, pointing at /wse by default', async () => {
    const page = await getPage({});
    expect(page.status).toBe(200);
    expect(page.type).toBe('text/html; charset=utf-8');
    expect(page.html).toContain('<title>nestjs-wse live demo</title>');
    expect(page.html).toContain('<meta name="wse-path" content="/wse" />');
  });

  it('serves public/index.html unchanged when WSE_PATH is the default', async () => {
    const page = await getPage({});
    expect(page.status).toBe(200);
    expect(page.type).toBe('text/html; charset=utf-8');
    expect(page.html).toBe(readFileSync(new URL('../public/index.html', import.meta.url), 'utf8'));
  });

  it('points the page at the configured WSE_PATH', async () => {
    const page = await getPage({ WSE_PATH: '/live' });
    expect(page.html).toContain('<meta name="wse-path" content="/live" />');
    expect(page.html).not.toContain('content="/wse"');
  });
});

/** `GET /client/<name>.js`: the built `nestjs-wse/client` modules the demo page imports. */
describe('GET /client/*.js, the client modules of the demo page', () => {
  let app: RunningApp;
  const built = readFileSync(new URL('../dist/client/index.js', import.meta.url), 'utf8');

  beforeAll(async () => {
    app = await startApp({});
  });

  afterAll(async () => {
    await app?.close();
  });

  async function get(path: string): Promise<{ status: number; type: string | null; text: string }> {
    const response = await fetch(`${app.httpUrl}${path}`, { signal: AbortSignal.timeout(5_000) });
    return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
  }

  it('serves the built client as JavaScript, byte for byte, and every module it imports', async () => {
    const index = await get('/client/index.js');
    expect(index).toEqual({ status: 200, type: 'text/javascript; charset=utf-8', text: built });
    for (const [, name] of built.matchAll(/from '\.\/([a-z-]+\.js)'/g)) {
      expect({ name, status: (await get(`/client/${name}`)).status }).toEqual({ name, status: 200 });
    }
  });

  it('is what the page imports', async () => {
    expect((await get('/')).text).toContain("import { WseClient } from '/client/index.js';");
  });

  it.each(['/client/nothing.js', '/client/index.d.ts', '/client/index.js.map', '/client/..%2Fpackage.json'])(
    'answers 404 for %s',
    async (path) => {
      expect((await get(path)).status).toBe(404);
    },
  );
});
