/**
 * `npm run test:e2e`: the demo page in a real browser (playwright-core driving Debian's
 * Chromium at /usr/bin/chromium) against example servers run as separate processes
 * (`node dist-examples/server/main.js`, built by the npm script) on one real redis-server. Not part of
 * `npm test`. ESM like the root config: the NestJS 12 packages are ES modules only.
 */
export default {
  rootDir: '../..',
  displayName: 'browser',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    // The example app imports the library by its package name; tests run it from source.
    '^nestjs-wse$': '<rootDir>/src/index.ts',
    '^nestjs-wse/client$': '<rootDir>/src/client/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
  testMatch: ['<rootDir>/test/browser/**/*.browser-spec.ts'],
  // Every wait inside has its own, shorter bound; this only stops a hung step.
  testTimeout: 60_000,
  // One browser and a few server processes at a time.
  maxWorkers: 1,
};
