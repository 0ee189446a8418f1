// Four projects: unit specs beside the code, integration tests against real Postgres/Redis/registry/runc,
// e2e tests that drive the running system, and vm (a cgroup v2 kernel under qemu). `npm test` runs them all; BERTH_TEST_PROJECTS narrows.
const fs = require('node:fs');
const swcrc = JSON.parse(fs.readFileSync(`${__dirname}/.swcrc`, 'utf8'));
delete swcrc.$schema;
const transform = { '^.+\\.(t|j)sx?$': ['@swc/jest', { ...swcrc, swcrc: false }] };
const moduleNameMapper = {
  '^@berth/oci/conformance$': '<rootDir>/libs/oci/src/conformance',
  '^@berth/runtime/conformance$': '<rootDir>/libs/runtime/src/conformance',
  '^@berth/db/migrate$': '<rootDir>/libs/db/src/migrate',
  '^@berth/(contracts|config|db|observability|oci|queues|runtime|scheduling)$': '<rootDir>/libs/$1/src',
};
const common = { rootDir: __dirname, transform, moduleNameMapper, testEnvironment: 'node' };
module.exports = {
  forceExit: true,
  // Project-level testTimeout is ignored when several projects run together; set it here. Unit specs
  // never sleep, so the bound only matters for integration and e2e tests.
  testTimeout: 120_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/apps/*/src/**/*.spec.ts', '<rootDir>/libs/*/src/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/setup/global-setup.ts',
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/test/setup/global-setup.ts',
    },
    // Boots a cgroup v2 kernel under qemu and runs the runtime conformance inside (test/vm/harness.ts);
    // the files under test/vm/guest/ run only in the guest.
    { ...common, displayName: 'vm', testMatch: ['<rootDir>/test/vm/*.test.ts'] },
  ],
};
