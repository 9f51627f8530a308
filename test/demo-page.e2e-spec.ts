import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from '@jest/globals';
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
