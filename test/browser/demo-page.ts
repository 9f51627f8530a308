import type { BrowserContext, Locator, Page } from 'playwright-core';
import { ACTION_TIMEOUT_MS, screenshotPath } from './chromium.js';

/** What `#state[data-kind]` says (public/index.html). */
export type ConnectionKind = 'connecting' | 'connected' | 'reconnecting' | 'auth-failed' | 'closed';
/** What `#redis[data-kind]` says. */
export type RedisKind = 'single' | 'up' | 'down' | 'unknown';
/** What `#notice[data-kind]` says. */
export type NoticeKind = 'reconnected' | 'resync' | 'lost';

/** One chat line as the page shows it. */
export interface ShownMessage {
  sender: string;
  text: string;
  /** The `datetime` of its `<time>` element (ISO 8601). */
  time: string;
}

/**
 * The demo page (`public/index.html`) as the browser tests drive it, through its stable ids and
 * data attributes only. Every wait is bounded (10 s unless a longer bound is given).
 */
export class DemoPage {
  /** Uncaught exceptions thrown by the page's own script. */
  readonly errors: string[] = [];

  private constructor(
    readonly page: Page,
    readonly label: string,
  ) {
    page.on('pageerror', (error) => this.errors.push(error.message));
  }

  /** Opens `url` in a new tab of `context`. */
  static async open(context: BrowserContext, url: string, label: string): Promise<DemoPage> {
    const demo = new DemoPage(await context.newPage(), label);
    await demo.page.goto(url);
    return demo;
  }

  async waitForState(kind: ConnectionKind, timeoutMs = ACTION_TIMEOUT_MS): Promise<void> {
    await this.page.waitForSelector(`#state[data-kind="${kind}"]`, { state: 'attached', timeout: timeoutMs });
  }

  async stateKind(): Promise<string | null> {
    return this.page.getAttribute('#state', 'data-kind');
  }

  async stateText(): Promise<string> {
    return ((await this.page.textContent('#state')) ?? '').trim();
  }

  async connectionId(): Promise<string> {
    return (await this.page.getAttribute('#state', 'data-connection-id')) ?? '';
  }

  async waitForRedis(kind: RedisKind, timeoutMs = ACTION_TIMEOUT_MS): Promise<void> {
    await this.page.waitForSelector(`#redis[data-kind="${kind}"]`, { state: 'attached', timeout: timeoutMs });
  }

  async waitForNotice(kind: NoticeKind, timeoutMs = ACTION_TIMEOUT_MS): Promise<string> {
    await this.page.waitForSelector(`#notice[data-kind="${kind}"]`, { state: 'visible', timeout: timeoutMs });
    return ((await this.page.textContent('#notice-title')) ?? '').trim();
  }

  /** The text under the notice's title. */
  async noticeDetail(): Promise<string> {
    return ((await this.page.textContent('#notice-detail')) ?? '').trim();
  }

  /** Whether the server said it keeps history (`#state[data-recovery]`, features.recovery). */
  async serverRecovers(): Promise<boolean> {
    return (await this.page.getAttribute('#state', 'data-recovery')) === 'true';
  }

  /**
   * Marks the page's window; `isSamePage()` is true until the page reloads or navigates, which
   * starts a new window without the mark.
   */
  async markPage(): Promise<void> {
    await this.page.evaluate(() => {
      (globalThis as unknown as { demoPageMark?: string }).demoPageMark = 'marked';
    });
  }

  async isSamePage(): Promise<boolean> {
    return this.page.evaluate(() => (globalThis as unknown as { demoPageMark?: string }).demoPageMark === 'marked');
  }

  /** Joins `room` through the form and waits until the server confirmed the subscription. */
  async join(room: string): Promise<void> {
    await this.page.fill('#room', room);
    await this.page.click('#join');
    await this.waitForRoom(room);
  }

  async waitForRoom(room: string, timeoutMs = ACTION_TIMEOUT_MS): Promise<void> {
    await this.page.waitForSelector(`#chat[data-room="${room}"]`, { state: 'attached', timeout: timeoutMs });
    await this.page.waitForSelector('#send:not([disabled])', { timeout: timeoutMs });
  }

  /** Types `text` and presses Send. */
  async say(text: string): Promise<void> {
    await this.page.fill('#message', text);
    await this.page.click('#send');
  }

  /** Every chat line shown, oldest first. */
  async messages(): Promise<ShownMessage[]> {
    const items = this.page.locator('#messages li[data-kind="chat"]');
    const shown: ShownMessage[] = [];
    for (const item of await items.all()) {
      shown.push({
        sender: (await item.getAttribute('data-sender')) ?? '',
        text: (await item.locator('.text').textContent()) ?? '',
        time: (await item.locator('time').getAttribute('datetime')) ?? '',
      });
    }
    return shown;
  }

  /** How many chat lines show exactly `text`. */
  async count(text: string): Promise<number> {
    return this.chatText(text).count();
  }

  /** Waits until a chat line shows exactly `text`. */
  async waitForMessage(text: string, timeoutMs = ACTION_TIMEOUT_MS): Promise<void> {
    await this.chatText(text).first().waitFor({ state: 'attached', timeout: timeoutMs });
  }

  /** The figures panel's value for `stat` (`connections`, `redis_connected`, …), as shown. */
  async figure(stat: string): Promise<string> {
    return ((await this.page.textContent(`#figures [data-stat="${stat}"]`)) ?? '').trim();
  }

  /** Waits until the figures panel shows `value` for `stat`. */
  async waitForFigure(stat: string, value: string, timeoutMs = ACTION_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let shown = await this.figure(stat);
    while (shown !== value) {
      if (Date.now() > deadline)
        throw new Error(`${this.label}: figure ${stat} is "${shown}", not "${value}", after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      shown = await this.figure(stat);
    }
  }

  /** The text elements of chat lines showing exactly `text` (whole text, case-sensitive). */
  private chatText(text: string): Locator {
    return this.page.locator('#messages li[data-kind="chat"]').getByText(text, { exact: true });
  }

  async visible(selector: string): Promise<boolean> {
    return this.page.isVisible(selector);
  }

  /** Saves `test-results/<name>.png` for a person to look at. */
  async screenshot(name: string): Promise<void> {
    await this.page.screenshot({ path: screenshotPath(name) });
  }
}
