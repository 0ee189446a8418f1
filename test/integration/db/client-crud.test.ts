import crypto from 'node:crypto';
import { Prisma, PrismaService } from '@berth/db';
import { dropDatabase, migrateDeploy, withDatabase } from '@berth/db/migrate';
import { TEST_DATABASE_URL } from '../../support/env';

/**
 * Prisma Client (through @prisma/adapter-pg) creates, reads, updates and deletes a row of every
 * model against a freshly migrated database: a column the client expects but the migrations lack
 * (or the reverse, for required columns) fails here.
 */
const url = withDatabase(TEST_DATABASE_URL, `berth_crud_${crypto.randomBytes(3).toString('hex')}`);
let prisma: PrismaService;
const covered = new Set<string>();

beforeAll(async () => {
  await migrateDeploy(url);
  prisma = new PrismaService({ databaseUrl: url, poolSize: 2 });
});
afterAll(async () => {
  await prisma?.onModuleDestroy();
  await dropDatabase(url);
});

it('creates, reads, updates and deletes every model', async () => {
  const db = prisma.client;
  const project = await db.project.create({ data: { slug: 'crud', name: 'CRUD', operator: true } });
  covered.add('Project');
  const user = await db.user.create({ data: { email: 'a@example.test', passwordHash: '$argon2id$x' } });
  covered.add('User');
  await db.membership.create({ data: { userId: user.id, projectId: project.id, role: 'ADMIN' } });
  covered.add('Membership');
  const token = await db.apiToken.create({
    data: { projectId: project.id, name: 'ci', prefix: 'brt_abcd', tokenHash: 'f'.repeat(64), role: 'DEPLOYER', createdById: user.id },
  });
  covered.add('ApiToken');
  await db.registryCredential.create({
    data: { projectId: project.id, registry: 'ghcr.io', username: 'u', secret: Buffer.from([1, 2, 3]) },
  });
  covered.add('RegistryCredential');
  await db.idempotencyKey.create({
    data: { projectId: project.id, principal: token.id, key: 'k1', requestHash: 'h', status: 201, response: { ok: true } },
  });
  covered.add('IdempotencyKey');
  const image = await db.image.create({ data: { projectId: project.id, registry: '127.0.0.1:5000', repository: 'x/web' } });
  covered.add('Image');
  const layer = await db.layer.create({
    data: { digest: `sha256:${'a'.repeat(64)}`, size: 5_000_000_000n, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
  });
  covered.add('Layer');
  const version = await db.imageVersion.create({
    data: {
      imageId: image.id,
      digest: `sha256:${'b'.repeat(64)}`,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      platform: 'linux/amd64',
      manifest: { schemaVersion: 2 },
      configDigest: `sha256:${'c'.repeat(64)}`,
      config: { Env: ['A=1'] },
      totalSize: 5_000_000_000n,
      layers: { create: [{ position: 0, layerDigest: layer.digest }] },
    },
  });
  covered.add('ImageVersion');
  covered.add('ImageVersionLayer');
  await db.imageTag.create({ data: { imageId: image.id, tag: 'v1', versionId: version.id } });
  covered.add('ImageTag');
  const service = await db.service.create({
    data: {
      projectId: project.id,
      name: 'web',
      port: 8080,
      env: { A: '1' },
      command: ['/bin/sh', '-c', 'true'],
      cpuMillis: 250,
      memoryMiB: 256,
      pidsLimit: 256,
      restartPolicy: 'ON_FAILURE',
      restartMaxRetries: 3,
      healthCheck: { type: 'http', path: '/' },
      minScale: 0,
      maxScale: 5,
      placement: 'BINPACK',
    },
  });
  covered.add('Service');
  const revision = await db.revision.create({
    data: {
      serviceId: service.id,
      number: 1,
      imageVersionId: version.id,
      imageRef: '127.0.0.1:5000/x/web:v1',
      imageDigest: version.digest,
      config: { port: 8080 },
      reason: 'CREATE',
      createdBy: 'user:a@example.test',
      createdByTokenId: token.id,
    },
  });
  covered.add('Revision');
  await db.service.update({ where: { id: service.id }, data: { activeRevisionId: revision.id, generation: { increment: 1 } } });
  const node = await db.node.create({
    data: { name: 'n1', address: '10.0.0.1', labels: { zone: 'a' }, cpuMillis: 2000, memoryMiB: 4096, pids: 10000, agentVersion: '0.1.0' },
  });
  covered.add('Node');
  await db.nodeJoinToken.create({ data: { tokenHash: 'e'.repeat(64), createdBy: 'user:a@example.test' } });
  covered.add('NodeJoinToken');
  const replica = await db.replica.create({
    data: { serviceId: service.id, revisionId: revision.id, nodeId: node.id, state: 'SCHEDULED', address: '10.88.0.2', port: 8080 },
  });
  covered.add('Replica');
  const event = await db.event.create({
    data: { projectId: project.id, serviceId: service.id, replicaId: replica.id, nodeId: node.id, type: 'replica.scheduled', message: 'placed', actor: 'system', data: { node: 'n1' } },
  });
  covered.add('Event');

  // Read back through relations and check round-tripped values of every special type.
  const full = await db.service.findUniqueOrThrow({
    where: { projectId_name: { projectId: project.id, name: 'web' } },
    include: { activeRevision: { include: { imageVersion: { include: { layers: { include: { layer: true } }, tags: true } } } }, replicas: { include: { node: true } } },
  });
  expect(full.generation).toBe(1);
  expect(full.command).toEqual(['/bin/sh', '-c', 'true']);
  expect(full.activeRevision?.imageVersion.layers[0].layer.size).toBe(5_000_000_000n);
  expect(full.activeRevision?.imageVersion.tags[0].tag).toBe('v1');
  expect(full.replicas[0].node?.labels).toEqual({ zone: 'a' });
  expect(typeof event.id).toBe('bigint');
  expect((await db.registryCredential.findFirstOrThrow()).secret).toEqual(new Uint8Array([1, 2, 3]));

  // Updates guarded by state, as the scheduler writes them.
  const moved = await db.replica.updateMany({
    where: { id: replica.id, state: { in: ['SCHEDULED'] }, generation: 0 },
    data: { state: 'PULLING', generation: { increment: 1 } },
  });
  expect(moved.count).toBe(1);
  const stale = await db.replica.updateMany({ where: { id: replica.id, generation: 0 }, data: { state: 'READY' } });
  expect(stale.count).toBe(0);

  // Unique constraints hold.
  await expect(db.service.create({ data: { projectId: project.id, name: 'web', port: 1, cpuMillis: 1, memoryMiB: 1, pidsLimit: 1 } })).rejects.toMatchObject({
    code: 'P2002',
  });

  // Deleting the project cascades to everything it owns; nodes and layers are fleet-wide and stay.
  await db.project.delete({ where: { id: project.id } });
  for (const [name, count] of Object.entries({
    service: await db.service.count(),
    revision: await db.revision.count(),
    replica: await db.replica.count(),
    event: await db.event.count(),
    image: await db.image.count(),
    apiToken: await db.apiToken.count(),
  }))
    expect([name, count]).toEqual([name, 0]);
  expect(await db.node.count()).toBe(1);
  await db.node.delete({ where: { id: node.id } });
  await db.nodeJoinToken.deleteMany();
  await db.imageVersionLayer.deleteMany();
  await db.layer.delete({ where: { digest: layer.digest } });
  await db.user.delete({ where: { id: user.id } });
  expect(await db.user.count()).toBe(0);
});

it('covered every model in schema.prisma', () => {
  expect([...covered].sort()).toEqual(Object.values(Prisma.ModelName).sort());
});
