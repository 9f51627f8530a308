import { describe, expect, it } from '@jest/globals';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WseConfigError, WseHttpModule, WseModule, WseWsAdapter, type WseHttpModuleOptions } from '../src/index.js';

/** Creates (and closes) an app with the engine and the given HTTP endpoints; resolves with the error, if any. */
async function creationError(http: WseHttpModuleOptions, apiKey?: string): Promise<unknown> {
  @Module({})
  class HttpTestModule {
    static with(): DynamicModule {
      return {
        module: HttpTestModule,
        imports: [WseModule.forRoot({ auth: { anonymous: true }, apiKey }), WseHttpModule.forRoot(http)],
      };
    }
  }
  try {
    const app = await NestFactory.create(HttpTestModule.with(), { logger: false, abortOnError: false });
    app.useWebSocketAdapter(new WseWsAdapter(app));
    await app.init();
    await app.close();
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('WseHttpModule fails closed at start', () => {
  it('refuses to mount the server API without an apiKey, naming the option', async () => {
    const error = await creationError({ api: true });
    expect(error).toBeInstanceOf(WseConfigError);
    expect((error as WseConfigError).problems).toEqual([
      { path: 'apiKey', rule: 'must be set when WseHttpModule mounts the server API', value: undefined },
    ]);
  });

  it('refuses a metrics endpoint that requires the API key when there is none', async () => {
    const error = await creationError({ metrics: { requireApiKey: true } });
    expect(error).toBeInstanceOf(WseConfigError);
    expect((error as WseConfigError).problems.map((p) => p.path)).toEqual(['apiKey']);
  });

  it('starts with the server API once the key is set', async () => {
    expect(await creationError({ api: true, metrics: { requireApiKey: true } }, 'k')).toBeUndefined();
  });

  it.each(['api', 'metrics', 'stats'] as const)('refuses a %s path that does not start with "/"', (endpoint) => {
    expect(() => WseHttpModule.forRoot({ [endpoint]: { path: 'no-slash' } })).toThrow(WseConfigError);
  });
});
