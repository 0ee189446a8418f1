import crypto from 'node:crypto';
import { DomainError, ErrorCode } from '@berth/contracts';
import { ImageRepository, NodeAdminRepository, PrismaService, ProjectRepository, ServiceRepository, UserRepository } from '@berth/db';
import { dropDatabase, migrateDeploy, withDatabase } from '@berth/db/migrate';
import { TEST_DATABASE_URL } from '../../support/env';

/**
 * The repositories turn Postgres constraint failures (as Prisma reports them) into DomainErrors that
 * name the entity and the field, so the api's error filter knows no database error codes.
 */
const url = withDatabase(TEST_DATABASE_URL, `berth_repoerr_${crypto.randomBytes(3).toString('hex')}`);
let prisma: PrismaService;
let projects: ProjectRepository;
let users: UserRepository;
let services: ServiceRepository;
let nodes: NodeAdminRepository;
let images: ImageRepository;

beforeAll(async () => {
  await migrateDeploy(url);
  prisma = new PrismaService({ databaseUrl: url, poolSize: 2 });
  projects = new ProjectRepository(prisma);
  users = new UserRepository(prisma);
  services = new ServiceRepository(prisma);
  nodes = new NodeAdminRepository(prisma);
  images = new ImageRepository(prisma);
});
afterAll(async () => {
  await prisma?.onModuleDestroy();
  await dropDatabase(url);
});

async function rejection(p: Promise<unknown>): Promise<DomainError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DomainError);
  return e as DomainError;
}

const MISSING = '00000000-0000-4000-8000-000000000000';

it('a unique violation is a Conflict naming the field', async () => {
  const owner = await users.create({ email: 'owner@example.test', passwordHash: '$argon2id$x' });
  await projects.createWithOwner({ slug: 'taken', name: 'First' }, owner.id);
  const e = await rejection(projects.createWithOwner({ slug: 'taken', name: 'Second' }, owner.id));
  expect(e.code).toBe(ErrorCode.Conflict);
  expect(e.message).toBe('a project with this slug already exists: choose another slug');
  expect(e.details).toEqual({ entity: 'project', field: 'slug' });

  const dupUser = await rejection(users.create({ email: 'owner@example.test', passwordHash: '$argon2id$y' }));
  expect(dupUser).toMatchObject({ code: ErrorCode.Conflict, details: { entity: 'user', field: 'email' } });
});

it('a unique index scoped by a parent names the column the caller chose, not the scope', async () => {
  const project = await projects.findBySlug('taken');
  const version = await images.recordResolved(project!.id, {
    registry: '127.0.0.1:5000',
    repository: 'x/web',
    tag: 'v1',
    digest: `sha256:${'b'.repeat(64)}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    platform: 'linux/amd64',
    manifest: {},
    configDigest: `sha256:${'c'.repeat(64)}`,
    config: {},
    totalSize: 1,
    layers: [],
  });
  const fields = { port: 8080, cpuMillis: 100, memoryMiB: 64, pidsLimit: 64 };
  const rev = { imageVersionId: version.id, imageRef: 'x/web:v1', imageDigest: version.digest, config: {}, reason: 'CREATE' as const, createdBy: 'test' };
  await services.createWithRevision(project!.id, 'web', fields, rev);
  const e = await rejection(services.createWithRevision(project!.id, 'web', fields, rev));
  expect(e).toMatchObject({ code: ErrorCode.Conflict, message: 'a service with this name already exists: choose another name', details: { field: 'name' } });
});

it('a write to a row that is gone is a NotFound; a dangling reference is a Conflict', async () => {
  const gone = await rejection(services.markDeleted(MISSING, new Date()));
  expect(gone).toMatchObject({ code: ErrorCode.NotFound, details: { entity: 'service' } });
  expect(gone.message).toMatch(/^service not found/);

  const owner = await users.findByEmail('owner@example.test');
  const dangling = await rejection(users.upsertMembership(owner!.id, MISSING, 'VIEWER'));
  expect(dangling).toMatchObject({ code: ErrorCode.Conflict, details: { entity: 'membership', field: 'projectId' } });
});

it('a malformed stored value is a Validation error; fleet-wide names conflict too', async () => {
  const bad = await rejection(projects.findById('not-a-uuid'));
  expect(bad.code).toBe(ErrorCode.Validation);
  expect(bad.message).toContain('uuid');

  const reg = { name: 'node-a', address: '10.0.0.1', labels: {}, cpuMillis: 1000, memoryMiB: 1024, pids: 100, agentVersion: 't' };
  await nodes.create(reg, new Date());
  expect(await rejection(nodes.create(reg, new Date()))).toMatchObject({ code: ErrorCode.Conflict, details: { entity: 'node', field: 'name' } });
});
