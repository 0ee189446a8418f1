/** Connection settings for tests; the defaults match `infra/deps.sh`. */
export const TEST_DATABASE_URL = process.env.BERTH_TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/berth_test';
export const TEST_REDIS_URL = process.env.BERTH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_REGISTRY = process.env.BERTH_FIXTURE_REGISTRY ?? '127.0.0.1:5000';
export const fixtureImage = (nameTag: string) => `${TEST_REGISTRY}/berth-fixtures/${nameTag}`;
