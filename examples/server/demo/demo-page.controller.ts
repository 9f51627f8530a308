import { readFileSync } from 'node:fs';
import { Controller, Get, Header } from '@nestjs/common';
import { InjectWseOptions, type ResolvedWseOptions } from 'nestjs-wse';

/** The demo page as shipped, read once at start. It lives in `public/` at the project root. */
const TEMPLATE = readFileSync(new URL('../../../public/index.html', import.meta.url), 'utf8');

/** The page's `<meta name="wse-path">`, which tells its script where the WebSocket endpoint is. */
const WSE_PATH_META = '<meta name="wse-path" content="/wse" />';

@Controller()
export class DemoPageController {
  /** The page with the configured `WSE_PATH` filled in, built once. */
  private readonly page: string;

  constructor(@InjectWseOptions() options: ResolvedWseOptions) {
    this.page = TEMPLATE.replace(WSE_PATH_META, `<meta name="wse-path" content="${escapeAttribute(options.path)}" />`);
  }

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  getPage(): string {
    return this.page;
  }
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
