import { readFileSync } from 'node:fs';
import { Controller, Get, Header } from '@nestjs/common';

/** The demo page, read once at start. It lives in `public/` at the project root. */
const PAGE = readFileSync(new URL('../../../public/index.html', import.meta.url), 'utf8');

@Controller()
export class DemoPageController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  page(): string {
    return PAGE;
  }
}
