/**
 * Typed failures of libs/oci. Each carries a stable `code` so callers (the API's exception
 * filter, the agent's status reports) can map them without parsing messages.
 */
export abstract class OciError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** One entry of a registry's `{"errors":[…]}` body. */
export interface RegistryErrorDetail {
  code?: string;
  message?: string;
  detail?: unknown;
}

/** Unknown repository, tag, manifest or blob (HTTP 404), or no manifest for the wanted platform. */
export class RegistryNotFoundError extends OciError {
  readonly code: string = 'REGISTRY_NOT_FOUND';
  constructor(
    message: string,
    readonly registryErrors: RegistryErrorDetail[] = [],
  ) {
    super(message);
  }
}

/** An image index has no manifest for the requested platform. */
export class PlatformNotFoundError extends RegistryNotFoundError {
  override readonly code = 'PLATFORM_NOT_FOUND';
  constructor(
    message: string,
    readonly available: string[],
  ) {
    super(message);
  }
}

/** The registry refused our credentials (or we had none): 401 after the auth dance, or 403. */
export class RegistryAuthError extends OciError {
  readonly code = 'REGISTRY_AUTH';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Connection refused/reset, timeout, or 5xx/429 that outlived the bounded retries. */
export class RegistryUnavailableError extends OciError {
  readonly code = 'REGISTRY_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A manifest, index or config that is malformed or of a kind we do not run. */
export class ManifestInvalidError extends OciError {
  readonly code = 'MANIFEST_INVALID';
}

/** Bytes whose sha256 is not the digest they were asked for. */
export class DigestMismatchError extends OciError {
  readonly code = 'DIGEST_MISMATCH';
  constructor(
    readonly expected: string,
    readonly actual: string,
    what = 'content',
  ) {
    super(`${what} digest mismatch: expected ${expected}, got ${actual}`);
  }
}

/** A layer we will not unpack: hostile paths, links escaping the layer, size/bomb limits. */
export class LayerRefusedError extends OciError {
  readonly code = 'LAYER_REFUSED';
  constructor(
    readonly layerDigest: string,
    readonly entry: string | undefined,
    readonly reason: string,
  ) {
    super(`layer ${layerDigest} refused${entry !== undefined ? ` at entry '${entry}'` : ''}: ${reason}`);
  }
}

/**
 * A registry (or its token server, or a redirect target) resolved to an address the address
 * policy refuses: loopback, private, link-local, metadata, ... (see address-policy.ts). Raised
 * before any connection is made; never retried.
 */
export class RegistryAddressRefusedError extends OciError {
  readonly code = 'REGISTRY_ADDRESS_REFUSED';
  constructor(
    message: string,
    readonly host: string,
    readonly address: string,
    readonly rule: string,
  ) {
    super(message);
  }
}
