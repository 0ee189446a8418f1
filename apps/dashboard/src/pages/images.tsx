import { useEffect } from 'react';
import type { ImageRow, ImageVersion, ServiceSummary } from '../api/types';
import { ErrorBox, Link } from '../components/ui';
import { useApp } from '../context';
import { usePoll, useNow } from '../hooks';
import { formatAgo, formatBytes, shortDigest } from '../lib/format';

interface ImageView {
  image: ImageRow;
  versions: ImageVersion[];
}

/** Which services run a digest now (their active revision), from the services list. */
export function usersByDigest(services: Pick<ServiceSummary, 'name' | 'activeRevision'>[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const s of services) {
    const d = s.activeRevision?.digest;
    if (!d) continue;
    m.set(d, [...(m.get(d) ?? []), s.name]);
  }
  return m;
}

export function ImagesPage() {
  const { api, project } = useApp();
  const now = useNow(10_000);
  useEffect(() => {
    document.title = `Images · ${project} · Berth`;
  }, [project]);
  const data = usePoll(
    async () => {
      const [images, services] = await Promise.all([api.all<ImageRow>('/v1/images'), api.all<ServiceSummary>('/v1/services')]);
      const views: ImageView[] = await Promise.all(
        images.map(async (image) => ({ image, versions: await api.all<ImageVersion>(`/v1/images/${image.id}/versions`, 2) })),
      );
      return { views, users: usersByDigest(services) };
    },
    10_000,
    [project],
  );

  return (
    <>
      <h1 tabIndex={-1}>Images</h1>
      <ErrorBox error={data.error} />
      {data.loading && !data.data ? <p role="status">Loading images…</p> : null}
      {data.data?.views.length === 0 ? <p>No images resolved in this project yet.</p> : null}
      {data.data?.views.map(({ image, versions }) => (
        <section key={image.id} className="card" aria-labelledby={`img-${image.id}`}>
          <h2 id={`img-${image.id}`}>
            <code>
              {image.registry}/{image.repository}
            </code>
          </h2>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Tags</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Platform</th>
                  <th scope="col">Size</th>
                  <th scope="col">Used by</th>
                  <th scope="col">Resolved</th>
                </tr>
              </thead>
              <tbody>
                {versions.map((v) => {
                  const users = data.data!.users.get(v.digest) ?? [];
                  return (
                    <tr key={v.versionId}>
                      <th scope="row">{v.tags.length ? v.tags.map((t) => <span key={t} className="tag">{t}</span>) : <span className="hint">untagged</span>}</th>
                      <td>
                        <code title={v.digest}>{shortDigest(v.digest)}</code>
                      </td>
                      <td>{v.platform}</td>
                      <td>{formatBytes(v.totalSize)}</td>
                      <td>
                        {users.length
                          ? users.map((n, i) => (
                              <span key={n}>
                                {i ? ', ' : ''}
                                <Link to={{ page: 'service', name: n }}>{n}</Link>
                              </span>
                            ))
                          : '—'}
                      </td>
                      <td>{formatAgo(v.resolvedAt, now)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </>
  );
}
