/**
 * `npm run api:bootstrap -- --email admin@example.com --password '…'`
 *
 * First-run set-up of a Berth installation: when the database has no users, creates the operator
 * project `default`, an admin user and an admin API token, and prints the token once. Does nothing
 * when users exist (safe to re-run). Email/password may also come from BERTH_BOOTSTRAP_ADMIN_EMAIL /
 * BERTH_BOOTSTRAP_ADMIN_PASSWORD; DATABASE_URL selects the database.
 */
import { Command } from 'commander';
import { loadConfigOrExit } from '@berth/config';
import { PrismaService, UserRepository } from '@berth/db';
import { apiConfigSchema } from '../apps/api/src/config';
import { bootstrapAdmin } from '../apps/api/src/bootstrap/bootstrap-admin';

async function main() {
  const config = loadConfigOrExit(apiConfigSchema, 'bootstrap');
  const program = new Command('berth-bootstrap')
    .description('create the first operator project, admin user and admin API token')
    .option('--email <email>', 'admin email', config.BERTH_BOOTSTRAP_ADMIN_EMAIL)
    .option('--password <password>', 'admin password (min 8 characters)', config.BERTH_BOOTSTRAP_ADMIN_PASSWORD)
    .parse();
  const opts = program.opts<{ email?: string; password?: string }>();
  if (!opts.email || !/^[^@\s]+@[^@\s]+$/.test(opts.email)) program.error('--email (or BERTH_BOOTSTRAP_ADMIN_EMAIL) must be an email address');
  if (!opts.password || opts.password.length < 8) program.error('--password (or BERTH_BOOTSTRAP_ADMIN_PASSWORD) must have at least 8 characters');
  const prisma = new PrismaService({ databaseUrl: config.DATABASE_URL, poolSize: 2 });
  try {
    const r = await bootstrapAdmin(new UserRepository(prisma), { email: opts.email!, password: opts.password! });
    if (!r) {
      process.stdout.write('berth: users already exist; nothing to do\n');
      return;
    }
    process.stdout.write(
      `berth: created operator project '${r.project}' and admin ${r.email}\n` +
        `Admin API token (shown once, store it now):\n  ${r.token}\n`,
    );
  } finally {
    await prisma.onModuleDestroy();
  }
}

main().catch((e) => {
  process.stderr.write(`berth-bootstrap: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
