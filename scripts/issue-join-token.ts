/**
 * `node -r @swc-node/register scripts/issue-join-token.ts [--node <name>] [--ttl <seconds>] [description]`
 *
 * Operator tool on the control-plane host: issues a node join token straight in the database (the
 * same record `POST /v1/nodes/join-tokens` makes) and prints it on stdout. `npm run up` uses it for
 * the local agent, bound to that agent's node name with a short expiry: the agent exchanges it for
 * its own node credential at its first start and never needs it again.
 */
import { loadConfigOrExit, commonSchema, databaseSchema } from '@berth/config';
import { NodeAdminRepository, PrismaService } from '@berth/db';
import { JOIN_TOKEN_PREFIX, newOpaqueToken } from '../apps/api/src/common/crypto/opaque-token';
import { DEFAULT_JOIN_TOKEN_TTL_SECONDS, MAX_JOIN_TOKEN_TTL_SECONDS, NODE_NAME_RE } from '../apps/api/src/nodes/inputs/node.inputs';

function parseArgs(argv: string[]): { nodeName: string | null; ttlSeconds: number; description: string } {
  let nodeName: string | null = null;
  let ttlSeconds = DEFAULT_JOIN_TOKEN_TTL_SECONDS;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--node') {
      nodeName = argv[++i] ?? '';
      if (!NODE_NAME_RE.test(nodeName)) throw new Error(`--node '${nodeName}' is not a node name (1-63 lowercase letters, digits, "." or "-")`);
    } else if (a === '--ttl') {
      ttlSeconds = Number(argv[++i]);
      if (!Number.isInteger(ttlSeconds) || ttlSeconds < 60 || ttlSeconds > MAX_JOIN_TOKEN_TTL_SECONDS) {
        throw new Error(`--ttl must be whole seconds between 60 and ${MAX_JOIN_TOKEN_TTL_SECONDS}`);
      }
    } else {
      rest.push(a);
    }
  }
  return { nodeName, ttlSeconds, description: rest.join(' ') || 'issued on the control-plane host' };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const config = loadConfigOrExit(commonSchema.merge(databaseSchema), 'join-token');
  const prisma = new PrismaService({ databaseUrl: config.DATABASE_URL, poolSize: 1 });
  try {
    const t = newOpaqueToken(JOIN_TOKEN_PREFIX);
    const createdAt = new Date();
    await new NodeAdminRepository(prisma).createJoinToken({
      tokenHash: t.hash,
      prefix: t.display,
      description: args.description,
      nodeName: args.nodeName,
      createdBy: 'system:issue-join-token',
      createdAt,
      expiresAt: new Date(createdAt.getTime() + args.ttlSeconds * 1000),
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
