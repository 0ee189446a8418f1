import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import pg from 'pg';

/**
 * Prisma's schema engine compiled to WebAssembly (npm `@prisma/schema-engine-wasm`), driven through
 * the pg driver adapter. It does what `prisma migrate` does without downloading the native
 * schema-engine binary, so migrations apply on an offline machine. It records applied migrations in
 * `_prisma_migrations` exactly like the CLI, so `prisma migrate deploy` stays compatible.
 *
 * The package is ESM with a bundler-style `.wasm` import and hides its files behind `exports`, so it
 * is loaded by path and instantiated by hand.
 */

// Minimal types for the parts of the engine we use (the package's own .d.ts is ESM-only).
export interface MigrationList {
  baseDir: string;
  lockfile: { path: string; content: string | null };
  shadowDbInitScript: string;
  migrationDirectories: { path: string; migrationFile: { path: string; content: { tag: 'ok'; value: string } } }[];
}
type DiffTarget =
  | { tag: 'empty' }
  | ({ tag: 'migrations' } & MigrationList)
  | { tag: 'schemaDatamodel'; files: { path: string; content: string }[] };
interface WasmSchemaEngine {
  diff(p: { from: DiffTarget; to: DiffTarget; script: boolean; exitCode: null; filters: Filters }): Promise<{ exitCode: number; stdout?: string }>;
  applyMigrations(p: { migrationsDirectoryPath: string; migrationsList: MigrationList; filters: Filters }): Promise<{ appliedMigrationNames: string[] }>;
  free(): void;
}
type Filters = { externalTables: string[]; externalEnums: string[] };
const FILTERS: Filters = { externalTables: [], externalEnums: [] };

/**
 * The engine's glue (`schema_engine_bg.js`) is an ES module with no imports of its own, only
 * `export function|class|const` declarations. Loading it as CommonJS (exports collected by name)
 * avoids dynamic `import()`, which CommonJS builds rewrite and jest's VM refuses.
 */
function loadEsmGlue(file: string): Record<string, any> {
  const names: string[] = [];
  const src = fs.readFileSync(file, 'utf8').replace(
    /^export (async function\*?|function\*?|class|const|let|var) ([A-Za-z_$][\w$]*)/gm,
    (_m, kind: string, name: string) => {
      names.push(name);
      return `${kind} ${name}`;
    },
  );
  const stray = src.match(/^(export|import)\b.*$/m);
  if (stray) throw new Error(`unexpected module syntax in ${file}: ${stray[0].slice(0, 80)}`);
  const mod: Record<string, any> = {};
  new Function('__berth_exports', `${src}\n;${names.map((n) => `__berth_exports.${n} = ${n};`).join('')}`)(mod);
  return mod;
}

let bgModule: Promise<any> | undefined;
async function loadWasm(): Promise<any> {
  bgModule ??= (async () => {
    const dir = path.dirname(require.resolve('@prisma/schema-engine-wasm'));
    const bg = loadEsmGlue(path.join(dir, 'schema_engine_bg.js'));
    const bytes = fs.readFileSync(path.join(dir, 'schema_engine_bg.wasm'));
    const { instance } = await (globalThis as any).WebAssembly.instantiate(bytes, { './schema_engine_bg.js': bg });
    bg.__wbg_set_wasm(instance.exports);
    (instance.exports as any).__wbindgen_start();
    return bg;
  })();
  return bgModule;
}

export interface SchemaSource {
  /** Path shown in engine messages. */
  path: string;
  content: string;
}

export class SchemaEngine {
  private constructor(
    private readonly engine: WasmSchemaEngine,
    private readonly pool: pg.Pool,
  ) {}

  /** Connects to `connectionString`. Every operation that needs a database acts on that one. */
  static async connect(connectionString: string, schema: SchemaSource): Promise<SchemaEngine> {
    const bg = await loadWasm();
    const pool = new CatalogFriendlyPool({ connectionString, max: 2, idleTimeoutMillis: 200, allowExitOnIdle: true });
    const engine = (await bg.SchemaEngine.new(
      { datamodels: [[schema.path, schema.content]] },
      () => undefined,
      bindMigrationAwareSqlAdapterFactory(new CatalogFriendlyPrismaPg(pool)),
    )) as WasmSchemaEngine;
    return new SchemaEngine(engine, pool);
  }

  /** SQL that creates the schema from nothing (no database access). */
  async scriptFromEmpty(schema: SchemaSource): Promise<string> {
    const r = await this.engine.diff({
      from: { tag: 'empty' },
      to: { tag: 'schemaDatamodel', files: [schema] },
      script: true,
      exitCode: null,
      filters: FILTERS,
    });
    return r.stdout ?? '';
  }

  /**
   * SQL that takes a database migrated with `migrations` to `schema`; empty when they agree.
   * WARNING: the engine replays the migrations into the connected database to compute this (it is
   * used as the shadow database), so connect to a throwaway database.
   */
  async scriptFromMigrations(migrations: MigrationList, schema: SchemaSource): Promise<string> {
    const r = await this.engine.diff({
      from: { tag: 'migrations', ...migrations },
      to: { tag: 'schemaDatamodel', files: [schema] },
      script: true,
      exitCode: null,
      filters: FILTERS,
    });
    return r.stdout ?? '';
  }

  /** Applies pending migrations, recording them in `_prisma_migrations`. Returns the names applied. */
  async applyMigrations(migrations: MigrationList): Promise<string[]> {
    const r = await this.engine.applyMigrations({
      migrationsDirectoryPath: migrations.baseDir,
      migrationsList: migrations,
      filters: FILTERS,
    });
    return r.appliedMigrationNames;
  }

  async close(): Promise<void> {
    this.engine.free();
    await this.pool.end();
  }
}

/**
 * The pg driver adapter refuses columns of Postgres' internal one-byte `"char"` type (OID 18), which
 * the engine's catalog queries return (pg_class.relkind, ...): describing a schema fails with
 * "Column type 'char' could not be deserialized". Its text form is a one-character string, so
 * report such columns as `text` (OID 25).
 */
const PG_CHAR = 18;
const PG_TEXT = 25;
function charAsText<T>(result: T): T {
  for (const r of Array.isArray(result) ? result : [result]) {
    for (const f of (r as pg.QueryResult | undefined)?.fields ?? []) if (f.dataTypeID === PG_CHAR) f.dataTypeID = PG_TEXT;
  }
  return result;
}
function patchQuery<C extends { query: (...a: any[]) => any }>(client: C): C {
  const query = client.query.bind(client);
  (client as any).query = (...args: any[]) => {
    const r = query(...args);
    return r && typeof r.then === 'function' ? r.then(charAsText) : r;
  };
  return client;
}
class CatalogFriendlyPool extends pg.Pool {
  constructor(config: pg.PoolConfig) {
    super(config);
    patchQuery(this);
    this.on('connect', (client) => patchQuery(client));
  }
}

/** Reads `prisma/migrations` in Prisma's layout: `<ts>_<name>/migration.sql` + `migration_lock.toml`. */
export function readMigrations(migrationsDir: string): MigrationList {
  const dirs = fs.existsSync(migrationsDir)
    ? fs
        .readdirSync(migrationsDir, { withFileTypes: true })
        .filter((d) => d.isDirectory() && fs.existsSync(path.join(migrationsDir, d.name, 'migration.sql')))
        .map((d) => d.name)
        .sort()
    : [];
  const lockPath = path.join(migrationsDir, 'migration_lock.toml');
  return {
    baseDir: migrationsDir,
    lockfile: { path: 'migration_lock.toml', content: fs.existsSync(lockPath) ? fs.readFileSync(lockPath, 'utf8') : null },
    shadowDbInitScript: '',
    migrationDirectories: dirs.map((name) => ({
      path: name,
      migrationFile: {
        path: 'migration.sql',
        content: { tag: 'ok', value: fs.readFileSync(path.join(migrationsDir, name, 'migration.sql'), 'utf8') },
      },
    })),
  };
}

export function readSchema(schemaPath: string): SchemaSource {
  return { path: path.basename(schemaPath), content: fs.readFileSync(schemaPath, 'utf8') };
}

/** The engine makes its own shadow database for `migrations` diffs; give it the same `"char"` fix. */
class CatalogFriendlyPrismaPg extends PrismaPg {
  constructor(private readonly mainPool: pg.Pool) {
    super(mainPool);
  }
  override async connectToShadowDb() {
    const main = await this.connect();
    const database = `prisma_migrate_shadow_db_${crypto.randomUUID()}`;
    await main.executeScript(`CREATE DATABASE "${database}"`);
    const pool = new CatalogFriendlyPool({ ...this.mainPool.options, database, max: 2 });
    const shadow = await new PrismaPg(pool, { disposeExternalPool: true }).connect();
    const dispose = shadow.dispose.bind(shadow);
    shadow.dispose = async () => {
      await dispose();
      await main.executeScript(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    };
    return shadow;
  }
}
