import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { NodeStatus, ReplicaState, RevisionStatus } from '@berth/contracts';
import { DbEnums } from '@berth/db';
import { dropDatabase, ensureDatabase, migrateDeploy, MIGRATIONS_DIR, pendingSchemaChanges, readSchema, SCHEMA_PATH, SchemaEngine, withDatabase } from '@berth/db/migrate';
import { catalogDiff, readCatalog } from '../../support/catalog';
import { TEST_DATABASE_URL } from '../../support/env';

/**
 * schema.prisma, prisma/migrations and a migrated database must agree. Two independent checks:
 *  1. Prisma's engine replays the migrations into a shadow database and diffs against schema.prisma.
 *  2. A database built by the migrations and one built straight from schema.prisma have identical
 *     catalogs (columns with types/defaults/nullability, constraints, indexes, enum values).
 * Each check is also shown to fail when the schema drifts, so neither can pass vacuously.
 */
const suffix = crypto.randomBytes(3).toString('hex');
const migratedUrl = withDatabase(TEST_DATABASE_URL, `berth_schema_migrated_${suffix}`);
const directUrl = withDatabase(TEST_DATABASE_URL, `berth_schema_direct_${suffix}`);

async function buildFromSchema(url: string, schemaPath: string) {
  await ensureDatabase(url);
  const engine = await SchemaEngine.connect(url, readSchema(schemaPath));
  const sql = await engine.scriptFromEmpty(readSchema(schemaPath)).finally(() => engine.close());
  const c = new Client({ connectionString: url });
  await c.connect();
  await c.query(sql).finally(() => c.end());
}

function driftedSchemaFile(): string {
  const text = fs.readFileSync(SCHEMA_PATH, 'utf8').replace(
    /model Project \{\n/,
    'model Project {\n  drifted   String?\n',
  );
  if (!text.includes('drifted')) throw new Error('could not inject drift into the schema copy');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-schema-'));
  const file = path.join(dir, 'schema.prisma');
  fs.writeFileSync(file, text);
  return file;
}

describe('schema.prisma ↔ migrations ↔ database', () => {
  afterAll(async () => {
    await dropDatabase(migratedUrl);
    await dropDatabase(directUrl);
  });

  it('the engine finds no change that the migrations do not cover', async () => {
    expect(await pendingSchemaChanges(TEST_DATABASE_URL)).toBe('');
  });

  it('the engine reports drift when schema.prisma gains a field', async () => {
    const sql = await pendingSchemaChanges(TEST_DATABASE_URL, MIGRATIONS_DIR, driftedSchemaFile());
    expect(sql).toMatch(/ALTER TABLE "Project" ADD COLUMN\s+"drifted" TEXT/);
  });

  it('a migrated database has the same catalog as one built from schema.prisma', async () => {
    const r = await migrateDeploy(migratedUrl);
    expect(r.applied.length).toBeGreaterThan(0);
    await buildFromSchema(directUrl, SCHEMA_PATH);
    const diff = catalogDiff(await readCatalog(migratedUrl), await readCatalog(directUrl));
    expect(diff).toEqual([]);
  });

  it('the catalog comparison catches a drifted schema', async () => {
    const driftUrl = withDatabase(TEST_DATABASE_URL, `berth_schema_drift_${suffix}`);
    try {
      await buildFromSchema(driftUrl, driftedSchemaFile());
      const diff = catalogDiff(await readCatalog(migratedUrl), await readCatalog(driftUrl));
      expect(diff).toEqual(['+ columns: Project.drifted text']);
    } finally {
      await dropDatabase(driftUrl);
    }
  });

  it('migrate deploy is idempotent and records _prisma_migrations like the Prisma CLI', async () => {
    const again = await migrateDeploy(migratedUrl);
    expect(again.applied).toEqual([]);
    const c = new Client({ connectionString: migratedUrl });
    await c.connect();
    try {
      const rows = (await c.query('select migration_name, finished_at, checksum from _prisma_migrations order by 1')).rows;
      const dirs = fs.readdirSync(MIGRATIONS_DIR).filter((d) => fs.existsSync(path.join(MIGRATIONS_DIR, d, 'migration.sql')));
      expect(rows.map((r) => r.migration_name)).toEqual(dirs.sort());
      for (const r of rows) {
        expect(r.finished_at).not.toBeNull();
        const sql = fs.readFileSync(path.join(MIGRATIONS_DIR, r.migration_name, 'migration.sql'));
        expect(r.checksum).toBe(crypto.createHash('sha256').update(sql).digest('hex'));
      }
    } finally {
      await c.end();
    }
  });

  it('state enums in libs/contracts equal the database enums', () => {
    expect(Object.values(DbEnums.ReplicaState).sort()).toEqual(Object.values(ReplicaState).sort());
    expect(Object.values(DbEnums.RevisionStatus).sort()).toEqual(Object.values(RevisionStatus).sort());
    expect(Object.values(DbEnums.NodeStatus).sort()).toEqual(Object.values(NodeStatus).sort());
  });
});
