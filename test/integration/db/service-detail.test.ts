import crypto from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { PrismaService, ServiceRepository } from '@berth/db';
import { dropDatabase, migrateDeploy, withDatabase } from '@berth/db/migrate';
import { TEST_DATABASE_URL } from '../../support/env';

/**
 * ServiceRepository.findDetailByName (one raw query, the api's hot read) returns exactly what
 * findByName + replicaCounts (Prisma, three queries) return: same fields, same types (Dates, JSON,
 * nulls), same counts; and nothing for a deleted service, another project or an unknown name.
 */
const url = withDatabase(TEST_DATABASE_URL, `berth_svcdetail_${crypto.randomBytes(3).toString('hex')}`);
let prisma: PrismaService;
let repo: ServiceRepository;

beforeAll(async () => {
  await migrateDeploy(url);
  prisma = new PrismaService({ databaseUrl: url, poolSize: 2 });
  repo = new ServiceRepository(prisma);
});
afterAll(async () => {
  await prisma?.onModuleDestroy();
  await dropDatabase(url);
});

it('matches findByName + replicaCounts, field for field', async () => {
  const db = prisma.client;
  const project = await db.project.create({ data: { slug: 'detail', name: 'Detail' } });
  const other = await db.project.create({ data: { slug: 'other', name: 'Other' } });
  const image = await db.image.create({ data: { projectId: project.id, registry: '127.0.0.1:5000', repository: 'x/web' } });
  const version = await db.imageVersion.create({
    data: {
      imageId: image.id,
      digest: `sha256:${'b'.repeat(64)}`,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      platform: 'linux/amd64',
      manifest: { schemaVersion: 2 },
      configDigest: `sha256:${'c'.repeat(64)}`,
      config: {},
      totalSize: 1n,
    },
  });
  const fields = { port: 8080, cpuMillis: 250, memoryMiB: 128, pidsLimit: 256, env: { A: '1', B: 'x y' }, command: ['httpd', '-f'] };
  const rev = { imageVersionId: version.id, imageRef: '127.0.0.1:5000/x/web:v1', imageDigest: version.digest, config: { port: 8080, nested: { a: [1, 2] } }, createdBy: 'system' };
  const { service: web } = await repo.createWithRevision(project.id, 'web', fields, { ...rev, reason: 'CREATE' });
  // Milliseconds of 0 and non-zero both round-trip (row_to_json drops trailing zeros).
  await db.revision.update({ where: { id: web.activeRevisionId! }, data: { activatedAt: new Date('2026-01-02T03:04:05.000Z'), rolloutStartedAt: new Date('2026-01-02T03:04:05.120Z') } });
  for (const state of ['READY', 'READY', 'PENDING', 'FAILED'] as const) {
    await db.replica.create({ data: { serviceId: web.id, revisionId: web.activeRevisionId!, state } });
  }
  // A service without an active revision and without replicas.
  const bare = await db.service.create({ data: { ...fields, command: undefined, healthCheck: { type: 'tcp' }, projectId: project.id, name: 'bare' } });

  for (const name of ['web', 'bare']) {
    const expected = await repo.findByName(project.id, name);
    const counts = await repo.replicaCounts(expected!.id);
    const got = await repo.findDetailByName(project.id, name);
    expect(got).not.toBeNull();
    expect(isDeepStrictEqual(got!.service, expected)).toBe(true);
    expect(got!.service.createdAt).toBeInstanceOf(Date);
    expect(got!.counts).toEqual(counts);
  }
  expect((await repo.findDetailByName(project.id, 'web'))!.counts).toEqual({ READY: 2, PENDING: 1, FAILED: 1 });
  expect((await repo.findDetailByName(project.id, 'bare'))!.service.activeRevision).toBeNull();

  expect(await repo.findDetailByName(project.id, 'nope')).toBeNull();
  expect(await repo.findDetailByName(other.id, 'web')).toBeNull();
  await repo.markDeleted(bare.id, new Date());
  expect(await repo.findDetailByName(project.id, 'bare')).toBeNull();
});
