import { Client } from 'pg';

/** Create/drop whole databases (the server's maintenance database is used for the DDL). */
export function withDatabase(connectionString: string, database: string): string {
  const u = new URL(connectionString);
  u.pathname = `/${database}`;
  return u.toString();
}

export function databaseName(connectionString: string): string {
  const name = decodeURIComponent(new URL(connectionString).pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`database name "${name}" must be letters, digits, _ or -`);
  return name;
}

async function onMaintenance<T>(connectionString: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: withDatabase(connectionString, 'postgres') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Creates the database named in `connectionString` if it does not exist. Returns true if it created it. */
export async function ensureDatabase(connectionString: string): Promise<boolean> {
  const name = databaseName(connectionString);
  return onMaintenance(connectionString, async (c) => {
    const r = await c.query('select 1 from pg_database where datname = $1', [name]);
    if (r.rowCount) return false;
    try {
      await c.query(`create database "${name}"`);
    } catch (e) {
      if ((e as { code?: string }).code !== '42P04') throw e; // created concurrently
      return false;
    }
    return true;
  });
}

export async function dropDatabase(connectionString: string): Promise<void> {
  const name = databaseName(connectionString);
  await onMaintenance(connectionString, (c) => c.query(`drop database if exists "${name}" with (force)`));
}
