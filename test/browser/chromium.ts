import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (`apt-get install -y chromium`, done by `.ci/run`). Nothing is downloaded. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Where screenshots go for a person to look at (ignored by git). */
export const RESULTS_DIR = fileURLToPath(new URL('../../test-results/', import.meta.url));

/** Every Playwright action and wait in these suites gives up after this long. */
export const ACTION_TIMEOUT_MS = 10_000;

/**
 * Throws a one-line error (no stack) when Chromium is not installed, so the suite fails with
 * what to do instead of a Playwright trace about a missing executable.
 */
export function requireChromium(): void {
  if (existsSync(CHROMIUM_PATH)) return;
  const error = new Error(
    `Chromium not found at ${CHROMIUM_PATH}: install it with "apt-get install -y chromium" (.ci/run does); the browser tests never download one.`,
  );
  error.stack = error.message;
  throw error;
}

/**
 * Launches headless Chromium with switches that keep it quiet and deterministic: no GPU, no
 * background traffic (updates, sync, QUIC), no first-run UI. Playwright gives every launch a
 * fresh temporary `--user-data-dir` of its own and deletes it on close (passing the switch
 * ourselves is refused by `launch()`), so no profile state survives between runs.
 */
export async function launchChromium(): Promise<Browser> {
  requireChromium();
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/**
 * A fresh browser context (its own cookies and storage) at a screenshot-friendly size, with
 * `access_token` set for 127.0.0.1 when a token is given. Cookies ignore ports, which is why
 * each page that needs its own user gets its own context.
 */
export async function newDemoContext(browser: Browser, accessToken?: string): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  context.setDefaultTimeout(ACTION_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
  if (accessToken !== undefined) {
    await context.addCookies([
      { name: 'access_token', value: accessToken, domain: '127.0.0.1', path: '/', httpOnly: true, sameSite: 'Lax' },
    ]);
  }
  return context;
}

/** `test-results/<name>.png`, creating the directory when needed. */
export function screenshotPath(name: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  return `${RESULTS_DIR}${name}.png`;
}
