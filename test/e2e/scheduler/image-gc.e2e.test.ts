import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { chainIds } from '@berth/oci';
import { api, startSystem, type RunningSystem, waitForSystem } from '../../support/system';
import { fixtureImage } from '../../support/env';
import { makeLayer, pushBlob, pushManifest, REGISTRY, type BuiltLayer } from '../../integration/oci/helpers/image-builder';
import { stopRuncSystem } from './leftovers';

/**
 * Node image garbage collection (issue 13 item 12), with the real api, scheduler and one runc agent.
 * The agent's image store gets a 10 MiB budget (`BERTH_IMAGE_STORE_BYTES`, so the watermarks are
 * deterministic on any disk): high-water mark 85 % (8.5 MiB), low 80 %.
 *
 * - `web` runs web:v1 then web:v2 (~2.3 MB unpacked, shared base layer).
 * - `junk` = web:v1's layers + a layer with 8 MiB of zeros (8 KiB compressed, so the pull is admitted)
 *   and a character device (an unpack warning). Once it runs, the store is above the high mark:
 *   GC runs but may take nothing (junk runs, web's revisions are kept).
 * - `junk` deleted → its layer is collected; web:v1 (a recent revision, not running) stays, and
 *   rolling back to it downloads nothing.
 * - `big` = web:v1's layers + 10 MiB of random bytes: refused before the pull, with the reason in
 *   the replica's failure event.
 */
jest.setTimeout(240_000);

const MiB = 1024 * 1024;
let sys: RunningSystem;
let db: Client;
const repo = `berth-gc-test/img-${crypto.randomBytes(4).toString('hex')}`;

const waitFor = <T>(what: string, fn: () => Promise<T | null | false | undefined>, timeoutMs = 90_000) => waitForSystem(sys, what, fn, timeoutMs, 200);

const call = (method: string, p: string, body?: unknown) => api(sys.apiUrl, method, p, body, sys.adminToken, sys.projectSlug);

/** Pushes web:v1's layers plus `extra` as `<repo>:<tag>`; returns its digest and chain ids. */
async function pushOnWebV1(tag: string, extra: BuiltLayer): Promise<{ ref: string; digest: string; chainIds: string[] }> {
  const base = `http://${REGISTRY}/v2/berth-fixtures/web`;
  const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };
  const manifest = (await (await fetch(`${base}/manifests/v1`, { headers: accept })).json()) as {
    config: { digest: string };
    layers: { digest: string; size: number; mediaType: string }[];
  };
  const config = (await (await fetch(`${base}/blobs/${manifest.config.digest}`)).json()) as { rootfs: { diff_ids: string[] } };
  for (const l of manifest.layers) await pushBlob(repo, Buffer.from(await (await fetch(`${base}/blobs/${l.digest}`)).arrayBuffer()));
  await pushBlob(repo, extra.blob);
  const newConfig = { ...config, rootfs: { type: 'layers', diff_ids: [...config.rootfs.diff_ids, extra.diffId] } };
  const configBlob = Buffer.from(JSON.stringify(newConfig));
  const configDigest = await pushBlob(repo, configBlob);
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: configBlob.length },
      layers: [...manifest.layers, { mediaType: extra.mediaType, digest: extra.digest, size: extra.size }],
    }),
  );
  const digest = await pushManifest(repo, tag, body, 'application/vnd.oci.image.manifest.v1+json');
  return { ref: `${REGISTRY}/${repo}:${tag}`, digest, chainIds: chainIds(newConfig.rootfs.diff_ids) };
}

async function chainsOf(nameTag: string): Promise<string[]> {
  const [name, tag] = nameTag.split(':');
  const base = `http://${REGISTRY}/v2/berth-fixtures/${name}`;
  const m = (await (await fetch(`${base}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { config: { digest: string } };
  const c = (await (await fetch(`${base}/blobs/${m.config.digest}`)).json()) as { rootfs: { diff_ids: string[] } };
  return chainIds(c.rootfs.diff_ids);
}

const agentDir = () => path.join(sys.dataDir, `agent-${sys.agents[0]!.name}`);
const hasSnapshot = (chainId: string) => fs.existsSync(path.join(agentDir(), 'images', 'snapshots', chainId.slice('sha256:'.length)));
async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${sys.agents[0]!.opsUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : NaN;
}
const serviceRow = async (name: string) =>
  (await db.query<{ id: string; activeRevisionId: string }>(`select id, "activeRevisionId" from "Service" where name = $1 and "deletedAt" is null`, [name])).rows[0]!;
const readyOn = async (serviceId: string, revisionId: string) =>
  Number((await db.query<{ n: string }>(`select count(*) as n from "Replica" where "serviceId" = $1 and "revisionId" = $2 and state = 'READY'`, [serviceId, revisionId])).rows[0]!.n);
const active = async (name: string) => {
  const s = await serviceRow(name);
  const r = await db.query<{ status: string }>(`select status from "Revision" where id = $1`, [s.activeRevisionId]);
  return r.rows[0]?.status === 'ACTIVE' && (await readyOn(s.id, s.activeRevisionId)) >= 1;
};

beforeAll(async () => {
  sys = await startSystem({
    agents: 1,
    runtime: 'runc',
    appEnv: {
      scheduler: {
        BERTH_RESYNC_INTERVAL_MS: '2000',
        BERTH_MIN_READY_MS: '200',
        BERTH_STOP_GRACE_MS: '1000',
        BERTH_IMAGE_KEEP_INTERVAL_MS: '500',
        BERTH_IMAGE_KEEP_REVISIONS: '3',
      },
      agent: {
        BERTH_IMAGE_STORE_BYTES: String(10 * MiB),
        BERTH_IMAGE_GC_HIGH_PERCENT: '85',
        BERTH_IMAGE_GC_LOW_PERCENT: '80',
        BERTH_IMAGE_GC_INTERVAL_MS: '500',
      },
    },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end().catch(() => undefined);
  const left = await stopRuncSystem(sys);
  expect(left.filter((l) => l.startsWith('container'))).toEqual([]);
});

it('collects an unreferenced image above the high-water mark, keeps running and recent images, rolls back pull-free, refuses what cannot fit', async () => {
  const junk = await pushOnWebV1(
    'junk',
    await makeLayer([
      { name: 'dev/', type: 'directory' },
      { name: 'dev/weird', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'zeros.bin', content: Buffer.alloc(8 * MiB) },
    ]),
  );
  const big = await pushOnWebV1('big', await makeLayer([{ name: 'random.bin', content: crypto.randomBytes(10 * MiB) }]));
  const v1Chains = await chainsOf('web:v1');
  const v2Chains = await chainsOf('web:v2');

  // web: revision 1 (v1), revision 2 (v2).
  await call('POST', '/v1/services', { name: 'web', image: fixtureImage('web:v1'), port: 8080 });
  await waitFor('web v1 ACTIVE', () => active('web'));
  await call('POST', '/v1/services/web/deployments', { image: fixtureImage('web:v2') });
  await waitFor('web v2 ACTIVE', async () => (await active('web')) && (await call('GET', '/v1/services/web')).activeRevision.number === 2);
  const webDigests = (await call('GET', '/v1/services/web/revisions')).items.map((r: any) => r.digest as string);
  // The scheduler told the agent to keep both revisions' images (persisted for restarts).
  const keepFile = path.join(agentDir(), 'image-keep.json');
  await waitFor('keep-set with both web revisions', async () => {
    const k = JSON.parse(fs.readFileSync(keepFile, 'utf8')) as { digests: string[] };
    return webDigests.every((d: string) => k.digests.includes(d));
  });

  // junk runs: the store (≈ 10.3 MB) is above the high mark now; GC runs but must keep junk (running)
  // and web:v1 (a recent revision).
  await call('POST', '/v1/services', { name: 'junk', image: junk.ref, port: 8080 });
  await waitFor('junk ACTIVE', () => active('junk'));
  await waitFor('a GC run while junk runs', async () => (await metric('berth_agent_image_gc_runs_total')) >= 2);
  expect(hasSnapshot(junk.chainIds.at(-1)!)).toBe(true);
  expect(hasSnapshot(v1Chains.at(-1)!)).toBe(true);
  expect(await active('junk')).toBe(true);

  // The skipped device node reached junk's revision events.
  const junkRow = await serviceRow('junk');
  const junkEvents = (await call('GET', '/v1/services/junk/events?limit=100')).items as any[];
  const warning = junkEvents.find((e) => e.type === 'image.unpack_warnings');
  expect(warning).toMatchObject({ level: 'WARN', revisionId: junkRow.activeRevisionId, serviceId: junkRow.id });
  expect(warning.message).toMatch(/dev\/weird: .*1:3 skipped/);

  // Delete junk: once its replica is gone, its image is collected down to the low mark.
  const reclaimedBefore = await metric('berth_agent_image_gc_reclaimed_bytes_total');
  await call('DELETE', '/v1/services/junk');
  await waitFor('junk layer collected', async () => !hasSnapshot(junk.chainIds.at(-1)!));
  // The counter moves after the collection's last measurement, a moment after the snapshot is gone.
  await waitFor('junk bytes counted as reclaimed', async () => (await metric('berth_agent_image_gc_reclaimed_bytes_total')) - reclaimedBefore >= 8 * MiB);
  expect(await metric('berth_agent_image_disk_used_bytes')).toBeLessThanOrEqual(8 * MiB);
  // Shared base layer, the running v2 and the recent v1 stay.
  for (const c of [...v1Chains, ...v2Chains]) expect(hasSnapshot(c)).toBe(true);

  // Rollback to v1: starts from the kept layers, nothing downloaded.
  const pulledBefore = await metric('berth_agent_image_pulled_bytes_total');
  expect(pulledBefore).toBeGreaterThan(0);
  await call('POST', '/v1/services/web/rollback', { revision: 1 });
  await waitFor('rollback ACTIVE', async () => (await active('web')) && (await call('GET', '/v1/services/web')).activeRevision.number === 3);
  expect(await metric('berth_agent_image_pulled_bytes_total')).toBe(pulledBefore);

  // big would not fit under the high mark even after GC: refused before downloading, with the reason.
  const refusedBefore = await metric('berth_agent_image_pulls_refused_total');
  await call('POST', '/v1/services', { name: 'big', image: big.ref, port: 8080 });
  const failed = await waitFor('big refused', async () =>
    ((await call('GET', '/v1/services/big/events?limit=100')).items as any[]).find((e) => e.type === 'replica.failed'),
  );
  expect(failed.message).toContain(`image pull failed: not enough disk space on the node for ${REGISTRY}/${repo}@${big.digest}: it needs at least 10.0 MiB more`);
  expect(failed.message).toMatch(/BERTH_IMAGE_GC_HIGH_PERCENT/);
  expect(await metric('berth_agent_image_pulls_refused_total')).toBeGreaterThan(refusedBefore);
  expect(hasSnapshot(big.chainIds.at(-1)!)).toBe(false);
  expect(await metric('berth_agent_image_pulled_bytes_total')).toBe(pulledBefore);
  await call('DELETE', '/v1/services/big');
});
