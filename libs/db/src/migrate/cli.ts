#!/usr/bin/env node
/**
 * Offline replacement for the `prisma migrate` commands we need:
 *   deploy          apply pending migrations to DATABASE_URL (creating the database if missing)
 *   create <name>   write the next migration for the changes in prisma/schema.prisma
 *   check           exit 1 if schema.prisma has changes no migration covers
 */
import { createMigration, migrateDeploy, pendingSchemaChanges } from './migrate';

async function main() {
  const [cmd, arg] = process.argv.slice(2);
  const url = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/berth';
  switch (cmd) {
    case 'deploy': {
      const r = await migrateDeploy(url);
      const where = new URL(url).pathname.slice(1);
      console.log(
        `${r.created ? `created database ${where}; ` : ''}${r.applied.length ? `applied ${r.applied.join(', ')}` : 'no pending migrations'} (${where})`,
      );
      return;
    }
    case 'create': {
      if (!arg) throw new Error('usage: create <name>');
      const dir = await createMigration(url, arg);
      console.log(dir ? `wrote ${dir}/migration.sql` : 'schema.prisma and migrations agree: nothing to write');
      return;
    }
    case 'check': {
      const sql = await pendingSchemaChanges(url);
      if (sql) {
        console.error('schema.prisma has changes that no migration covers; run `npm run db:migration -- <name>`:\n' + sql);
        process.exit(1);
      }
      console.log('schema.prisma and prisma/migrations agree');
      return;
    }
    default:
      console.error('usage: migrate deploy | create <name> | check');
      process.exit(2);
  }
}

// The wasm engine leaves a timer behind for ~10 s after its work is done; don't wait for it.
main().then(() => process.exit(0), (e) => {
  console.error(`migrate: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
