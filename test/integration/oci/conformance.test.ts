import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore, OverlaySnapshotter } from '@berth/oci';
import { describeBlobStoreConformance, describeSnapshotterConformance } from '@berth/oci/conformance';

// The one conformance suite of each image-storage interface, run against the real
// implementations on a real filesystem.
const roots: string[] = [];
const newRoot = (tag: string) => {
  const root = mkdtempSync(join(tmpdir(), `berth-conf-${tag}-`));
  roots.push(root);
  return root;
};
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describeBlobStoreConformance(
  'ContentStore',
  async () => {
    const root = newRoot('blobs');
    return { store: new ContentStore(root), reopen: () => new ContentStore(root) };
  },
  async () => undefined,
);

describeSnapshotterConformance(
  'OverlaySnapshotter',
  async () => {
    const root = newRoot('snap');
    return { snapshotter: new OverlaySnapshotter(root), reopen: () => new OverlaySnapshotter(root) };
  },
  async () => undefined,
);
