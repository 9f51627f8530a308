/**
 * `npm test` runs both projects: unit specs beside the code (pure logic, no Nest, fake timers)
 * and integration suites under test/ (real apps on 127.0.0.1, real ws clients, real HTTP).
 * Jest runs in its native ESM mode (NODE_OPTIONS=--experimental-vm-modules, set by the npm
 * scripts) because the NestJS 12 packages are ES modules only.
 */
const shared = {
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
};

export default {
  projects: [
    {
      ...shared,
      displayName: 'unit',
      rootDir: '.',
      testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/examples/**/*.spec.ts'],
    },
    {
      ...shared,
      displayName: 'integration',
      rootDir: '.',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
    },
  ],
  // A global option (Jest ignores it per project): integration tests start servers and Redis.
  testTimeout: 30_000,
};
