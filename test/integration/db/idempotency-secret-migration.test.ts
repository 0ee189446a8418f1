import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { dropDatabase, migrateDeploy, MIGRATIONS_DIR, withDatabase } from '@berth/db/migrate';
import { TEST_DATABASE_URL } from '../../support/env';

/**
 * Migration idempotency_secret_omitted: Idempotency-Key rows stored before it may hold a token's
 * secret in plain text. After it they hold the response without the secret, flagged, so a replay
 * answers 409 IDEMPOTENT_REPLAY_SECRET; other rows are left as they were.
 */
const MIGRATION = '20261207155838_idempotency_secret_omitted';
const url = withDatabase(TEST_DATABASE_URL, `berth_idem_secret_mig_${crypto.randomBytes(3).toString('hex')}`);
const SECRET = `brt_${'A'.repeat(43)}`;

afterAll(async () => {
  await dropDatabase(url);
});

test('strips stored secrets and marks their rows; leaves other rows alone', async () => {
  const before = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-migrations-'));
  try {
    for (const name of fs.readdirSync(MIGRATIONS_DIR)) {
      if (name !== MIGRATION) fs.cpSync(path.join(MIGRATIONS_DIR, name), path.join(before, name), { recursive: true });
    }
    expect(fs.existsSync(path.join(MIGRATIONS_DIR, MIGRATION))).toBe(true);
    await migrateDeploy(url, before);
  } finally {
    fs.rmSync(before, { recursive: true, force: true });
  }
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const project = crypto.randomUUID();
    await c.query(`insert into "Project"(id, slug, name) values ($1, 'p', 'p')`, [project]);
    const row = (key: string, response: string) =>
      c.query(`insert into "IdempotencyKey"(id, "projectId", principal, key, "requestHash", status, response) values (gen_random_uuid(), $1, 'token:a', $2, 'h', 201, $3::jsonb)`, [
        project,
        key,
        response,
      ]);
    await row('token', JSON.stringify({ id: 't1', name: 'ci', prefix: 'brt_AAAAAA', token: SECRET }));
    await row('deploy', JSON.stringify({ revision: { number: 2 } }));
    await row('empty', 'null');

    await migrateDeploy(url);

    const { rows } = await c.query<{ key: string; response: unknown; secretOmitted: boolean }>(`select key, response, "secretOmitted" from "IdempotencyKey" order by key`);
    expect(rows).toEqual([
      { key: 'deploy', response: { revision: { number: 2 } }, secretOmitted: false },
      { key: 'empty', response: null, secretOmitted: false },
      { key: 'token', response: { id: 't1', name: 'ci', prefix: 'brt_AAAAAA' }, secretOmitted: true },
    ]);
  } finally {
    await c.end();
  }
});
