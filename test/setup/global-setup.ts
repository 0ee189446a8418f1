import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { migrateDeploy } from '@berth/db/migrate';
import { TEST_DATABASE_URL, TEST_REGISTRY } from '../support/env';

/**
 * Runs once before the integration and e2e projects: migrates the shared test database and makes
 * sure the fixture images are in the local registry. Services themselves are started by
 * `npm test` (infra/deps.sh); here we only fail early with a clear message if they are missing.
 */
export default async function globalSetup(): Promise<void> {
  try {
    await migrateDeploy(TEST_DATABASE_URL);
  } catch (e) {
    throw new Error(`cannot migrate ${TEST_DATABASE_URL} (${(e as Error).message}); run infra/deps.sh or set BERTH_TEST_DATABASE_URL`);
  }
  process.env.DATABASE_URL = TEST_DATABASE_URL;
  try {
    execFileSync('bash', [path.join(__dirname, '../fixtures/images/build.sh'), TEST_REGISTRY], { stdio: 'pipe' });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`fixture images could not be built/pushed to ${TEST_REGISTRY}: ${err.stderr?.toString() || err.message}`);
  }
}
