/**
 * Image references, parsed the way `docker pull` and the distribution spec read them.
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ registry "/" ] repository
 *
 * Normalisation (docker's): the first path component is a registry only if it contains
 * a "." or ":" or is "localhost" (or has an upper-case letter, which a repository cannot);
 * otherwise the registry is docker.io. On docker.io a single-component repository gets
 * the "library/" prefix. The tag defaults to "latest" only when no digest is given
 * (a digest alone pins the content; inventing a tag would be a lie).
 */

export const DEFAULT_REGISTRY = 'docker.io';
export const DEFAULT_TAG = 'latest';

export type ReferencePart = 'reference' | 'registry' | 'repository' | 'tag' | 'digest';

/** A malformed image reference; the message names the offending part. */
export class InvalidReferenceError extends Error {
  readonly code = 'INVALID_REFERENCE' as const;
  constructor(
    readonly input: string,
    readonly part: ReferencePart,
    message: string,
  ) {
    super(message);
    this.name = 'ReferenceError';
  }
}
// The issue calls it ReferenceError; the alias avoids shadowing the global inside this lib.
export { InvalidReferenceError as ReferenceError };

export interface ImageReference {
  /** host[:port], e.g. "docker.io", "127.0.0.1:5000". */
  registry: string;
  /** Path inside the registry, e.g. "library/nginx". */
  repository: string;
  /** Tag; "latest" when neither tag nor digest was given, undefined for a digest-only reference. */
  tag?: string;
  /** "sha256:<hex>" when pinned. */
  digest?: string;
}

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
// path-component := alpha-numeric [separator alpha-numeric]*, separator := [_.] | __ | [-]*
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT_RE = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_RE = /^\[[a-fA-F0-9:.]+\]$/;
const MAX_NAME_LENGTH = 255;

const TAG_RULE = 'must be 1-128 characters of letters, digits, "_", "." or "-", not starting with "." or "-"';
const DIGEST_RULE = 'expected "sha256:" followed by 64 lowercase hex characters';
const COMPONENT_RULE =
  'each path component must be lowercase letters and digits, optionally separated by ".", "_", "__" or "-"';

export function isValidDigest(digest: string): boolean {
  return DIGEST_RE.test(digest);
}

/** Throws InvalidReferenceError(part 'digest') unless `digest` is a well-formed sha256/sha512 digest. */
export function assertDigest(digest: string, input = digest): string {
  if (!DIGEST_RE.test(digest)) {
    throw new InvalidReferenceError(input, 'digest', `digest '${digest}' is invalid: ${DIGEST_RULE}`);
  }
  return digest;
}

function looksLikeRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component !== component.toLowerCase();
}

function validateRegistry(input: string, registry: string): void {
  const fail = (why: string): never => {
    throw new InvalidReferenceError(input, 'registry', `registry '${registry}' is invalid: ${why}`);
  };
  let host = registry;
  let port: string | undefined;
  if (registry.startsWith('[')) {
    const end = registry.indexOf(']');
    if (end < 0) fail('unterminated IPv6 address');
    host = registry.slice(0, end + 1);
    const rest = registry.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) fail('unexpected characters after IPv6 address');
      port = rest.slice(1);
    }
    if (!IPV6_RE.test(host)) fail('malformed IPv6 address');
  } else {
    const colon = registry.lastIndexOf(':');
    if (colon >= 0) {
      host = registry.slice(0, colon);
      port = registry.slice(colon + 1);
    }
    if (host === '') fail('host is empty');
    for (const c of host.split('.')) {
      if (!DOMAIN_COMPONENT_RE.test(c)) fail(`host component '${c}' must be letters, digits and inner "-"`);
    }
  }
  if (port !== undefined) {
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) fail(`port '${port}' must be a number 1-65535`);
  }
}

function validateRepository(input: string, repository: string): void {
  if (repository === '') {
    throw new InvalidReferenceError(input, 'repository', `repository is missing in '${input}'`);
  }
  for (const c of repository.split('/')) {
    if (c === '') {
      throw new InvalidReferenceError(input, 'repository', `repository '${repository}' is invalid: empty path component`);
    }
    if (c !== c.toLowerCase()) {
      throw new InvalidReferenceError(input, 'repository', `repository '${repository}' is invalid: must be lowercase`);
    }
    if (!PATH_COMPONENT_RE.test(c)) {
      throw new InvalidReferenceError(
        input,
        'repository',
        `repository '${repository}' is invalid: component '${c}' is malformed; ${COMPONENT_RULE}`,
      );
    }
  }
}

/** Parses and normalises an image reference; throws InvalidReferenceError naming the bad part. */
export function parseReference(input: string): ImageReference {
  if (typeof input !== 'string' || input.length === 0) {
    throw new InvalidReferenceError(String(input ?? ''), 'reference', 'reference is empty');
  }
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    assertDigest(digest, input);
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw new InvalidReferenceError(input, 'tag', `tag '${tag}' is invalid: ${TAG_RULE}`);
    }
  }

  if (rest === '') {
    throw new InvalidReferenceError(input, 'repository', `repository is missing in '${input}'`);
  }

  let registry = DEFAULT_REGISTRY;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0 && looksLikeRegistry(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    repository = rest.slice(slash + 1);
    validateRegistry(input, registry);
    if (registry === 'index.docker.io') registry = DEFAULT_REGISTRY;
  }
  validateRepository(input, repository);
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = `library/${repository}`;

  const name = `${registry}/${repository}`;
  if (name.length > MAX_NAME_LENGTH) {
    throw new InvalidReferenceError(input, 'repository', `repository name '${name}' is too long: at most ${MAX_NAME_LENGTH} characters`);
  }
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const ref: ImageReference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** Canonical string form: "docker.io/library/nginx:latest", "reg:5000/a/b:t@sha256:…". */
export function formatReference(ref: ImageReference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag) s += `:${ref.tag}`;
  if (ref.digest) s += `@${ref.digest}`;
  return s;
}

/** The manifest to ask for: the digest when pinned (content-addressed), else the tag. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** The host actually serving a registry's API (docker.io is served from registry-1.docker.io). */
export function registryEndpointHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? 'registry-1.docker.io' : registry;
}
