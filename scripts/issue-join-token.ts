/**
 * `node -r @swc-node/register scripts/issue-join-token.ts [description]`
 *
 * Operator tool on the control-plane host: issues a node join token straight in the database (the
 * same record `POST /v1/nodes/join-tokens` makes) and prints it on stdout. `npm run up` uses it for
 * the local agent, which has no API credential of its own yet.
 */
import { loadConfigOrExit, commonSchema, databaseSchema } from '@berth/config';
import { PrismaService } from '@berth/db';
import { NodeAdminRepository } from '../libs/db/src/repositories/node-admin.repository';
import { JOIN_TOKEN_PREFIX, newOpaqueToken } from '../apps/api/src/common/crypto/opaque-token';

async function main() {
  const config = loadConfigOrExit(commonSchema.merge(databaseSchema), 'join-token');
  const prisma = new PrismaService({ databaseUrl: config.DATABASE_URL, poolSize: 1 });
  try {
    const t = newOpaqueToken(JOIN_TOKEN_PREFIX);
    await new NodeAdminRepository(prisma).createJoinToken({
      tokenHash: t.hash,
      description: process.argv[2] ?? 'issued on the control-plane host',
      createdBy: 'system:issue-join-token',
    });
    process.stdout.write(`${t.token}\n`);
  } finally {
    await prisma.onModuleDestroy();
  }
}

main().catch((e) => {
  process.stderr.write(`issue-join-token: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
