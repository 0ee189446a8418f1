import type { ReplicaSpec } from '@berth/contracts';
import type { ApiFetch } from './api-link';
import { RegistryAuthError, RegistryUnavailableError, type CredentialProvider, type RegistryCredentials } from '@berth/oci';

/**
 * Private images: the agent asks the API for the replica's registry credentials at pull time,
 * and only if the registry challenges (public images never cost a request). The API decrypts the
 * project's RegistryCredential and answers only for a replica placed on the asking node and for
 * that replica's image registry. Secrets are never written to Redis or to the agent's disk: they
 * live in memory for the duration of one pull (see docs/oci.md, "Private registries").
 *
 *   POST {apiUrl}/v1/nodes/{nodeId}/pull-credentials
 *   Authorization: Bearer <node credential bnc_…>
 *   { "replicaId": "...", "registry": "127.0.0.1:5000" }
 *   200 { "username": "...", "password": "..." }   (Cache-Control: no-store)
 *   404 no credentials for that project and registry → pull anonymously
 *   403 the replica is not on this node, or the registry is not its image's → pull fails
 */
export interface PullCredentialsRequest {
  replicaId: string;
  registry: string;
}

export type PullCredentialsResponse = RegistryCredentials;

export type ReplicaCredentials = (spec: ReplicaSpec) => CredentialProvider | undefined;

export function apiPullCredentials(opts: { apiUrl: string; credential: string; nodeId: string; timeoutMs?: number; fetch?: ApiFetch }): ReplicaCredentials {
  return (spec) => async (registry) => {
    // Only the replica's own image registry: a redirect or a foreign layer URL gets nothing.
    if (registry !== spec.image.registry) return undefined;
    const url = new URL(`/v1/nodes/${encodeURIComponent(opts.nodeId)}/pull-credentials`, opts.apiUrl);
    const body: PullCredentialsRequest = { replicaId: spec.replicaId, registry };
    let res: Response;
    try {
      res = await (opts.fetch ?? fetch)(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.credential}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new RegistryUnavailableError(`cannot fetch credentials for ${registry} from ${url.origin}: ${(err as Error).message}`, { cause: err });
    }
    const text = await res.text();
    if (res.status === 404) return undefined;
    if (res.status >= 500) throw new RegistryUnavailableError(`the API failed to give credentials for ${registry}: ${res.status} ${text.slice(0, 200)}`);
    if (!res.ok) {
      throw new RegistryAuthError(`the API refused credentials for ${registry} (replica ${spec.replicaId}): ${res.status} ${text.slice(0, 200)}`, res.status);
    }
    let parsed: Partial<PullCredentialsResponse>;
    try {
      parsed = JSON.parse(text) as Partial<PullCredentialsResponse>;
    } catch {
      parsed = {};
    }
    if (typeof parsed.username !== 'string' || typeof parsed.password !== 'string') {
      throw new RegistryAuthError(`the API's credentials answer for ${registry} lacks username/password`);
    }
    return { username: parsed.username, password: parsed.password };
  };
}
