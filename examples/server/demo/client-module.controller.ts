import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Controller, Get, Header, NotFoundException, Param } from '@nestjs/common';

/**
 * The built `nestjs-wse/client` (this package's `dist/client/`, made by `npm run build`), read once
 * at start. An application installing the package would serve `node_modules/nestjs-wse/dist/client/`
 * the same way, or bundle the client with its own code.
 */
const CLIENT_DIR = new URL('../../../dist/client/', import.meta.url);

/** Only the client's own modules: lower-case names ending in `.js`, nothing that could climb out. */
const MODULE_NAME = /^[a-z-]+\.js$/;

/**
 * `GET /client/<name>.js`: the client's ES modules, for the demo page's
 * `import { WseClient } from '/client/index.js'` without a bundler.
 */
@Controller('client')
export class ClientModuleController {
  private readonly modules = new Map<string, string>();

  constructor() {
    if (!existsSync(CLIENT_DIR)) return; // answered 404 below, with what to do
    for (const name of readdirSync(CLIENT_DIR)) {
      if (MODULE_NAME.test(name)) this.modules.set(name, readFileSync(new URL(name, CLIENT_DIR), 'utf8'));
    }
  }

  @Get(':name')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  getModule(@Param('name') name: string): string {
    const module = this.modules.get(name);
    if (module === undefined) {
      throw new NotFoundException(
        this.modules.size === 0 ? 'the client is not built: run npm run build' : `no client module ${name}`,
      );
    }
    return module;
  }
}
