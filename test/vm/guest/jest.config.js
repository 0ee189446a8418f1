// Jest inside the cgroup v2 guest (test/vm/harness.ts boots it): the runc conformance suite and the
// cgroup v2 checks, with the same transform and module map as the host's projects, no global setup
// (the guest has no Postgres/Redis/registry: these tests need none of them).
const path = require('node:path');
const host = require('../../../jest.config.js');
const { transform, moduleNameMapper } = host.projects[0];
module.exports = {
  rootDir: path.resolve(__dirname, '../../..'),
  transform,
  moduleNameMapper,
  testEnvironment: 'node',
  testTimeout: 120_000,
  cacheDirectory: '/tmp/jest-cache',
  testMatch: (process.env.BERTH_VM_TESTS || '<rootDir>/test/integration/runtime/conformance.test.ts,<rootDir>/test/vm/guest/*.test.ts').split(','),
};
