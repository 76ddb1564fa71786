/**
 * Image references, parsed and normalised the way Docker and Kubernetes do it
 * (github.com/distribution/reference: `ParseNormalizedNamed`).
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [domain "/"] path        (the first component is a domain if it contains "." or
 *                                          ":", is "localhost", or has upper-case letters)
 *
 * Pure functions, no I/O.
 */
import { ImageReferenceError } from '../errors.ts';

export const DEFAULT_REGISTRY = 'docker.io';
const LEGACY_DEFAULT_REGISTRY = 'index.docker.io';
const OFFICIAL_REPOSITORY_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';

/** A fully normalised reference: registry always present, `library/` added for Docker Hub. */
export interface ImageReference {
  /** Registry host, with port when one was given: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly registry: string;
  /** Repository path inside the registry: `library/nginx`, `org/team/app`. */
  readonly repository: string;
  /** Tag as written; undefined when the reference had none (see {@link effectiveTag}). */
  readonly tag: string | undefined;
  /** `algorithm:hex` when the reference pins a digest; the digest wins over the tag for pulling. */
  readonly digest: string | undefined;
}

const NAME_TOTAL_LENGTH_MAX = 255;
const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[_.]|__|[-]+)';
const PATH_COMPONENT = new RegExp(`^${ALNUM}(?:${SEPARATOR}${ALNUM})*$`);
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+(?:%[\w.-]+)?\]$/;
const PORT = /^[0-9]+$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[+._-][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const ANCHORED_IDENTIFIER = /^[a-f0-9]{64}$/;
/** Hex lengths of the digest algorithms registries implement (go-digest). */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

/** Parses and normalises `input`; throws {@link ImageReferenceError} naming what is wrong. */
export function parseReference(input: string): ImageReference {
  if (typeof input !== 'string' || input.length === 0) throw new ImageReferenceError(String(input), 'it is empty');
  if (input !== input.trim()) throw new ImageReferenceError(input, 'it has leading or trailing white space');
  if (ANCHORED_IDENTIFIER.test(input)) {
    throw new ImageReferenceError(input, 'a 64-character hexadecimal string is an image ID, not a repository name');
  }

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    validateDigest(input, digest);
  }

  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  // A colon after the last slash separates the tag; one before it belongs to a host:port.
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) {
      throw new ImageReferenceError(
        input,
        `tag ${JSON.stringify(tag)} must be 1-128 characters of letters, digits, "_", "." or "-", not starting with "." or "-"`,
      );
    }
  }
  if (rest.length === 0) throw new ImageReferenceError(input, 'the repository name is empty');

  const { registry, repository } = splitRegistry(input, rest);
  const fullName = `${registry}/${repository}`;
  if (fullName.length > NAME_TOTAL_LENGTH_MAX) {
    throw new ImageReferenceError(input, `the repository name is longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  return { registry, repository, tag, digest };
}

/** Like {@link parseReference}, but returns undefined instead of throwing. */
export function tryParseReference(input: string): ImageReference | undefined {
  try {
    return parseReference(input);
  } catch (error) {
    if (error instanceof ImageReferenceError) return undefined;
    throw error;
  }
}

function splitRegistry(input: string, name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  const firstIsDomain = slash !== -1 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first);

  let registry = DEFAULT_REGISTRY;
  let repository = name;
  if (firstIsDomain) {
    registry = first;
    repository = name.slice(slash + 1);
    validateDomain(input, registry);
  }
  if (registry === LEGACY_DEFAULT_REGISTRY) registry = DEFAULT_REGISTRY;

  if (repository.toLowerCase() !== repository) {
    throw new ImageReferenceError(input, `repository name ${JSON.stringify(repository)} must be lowercase`);
  }
  const components = repository.split('/');
  for (const component of components) {
    if (!PATH_COMPONENT.test(component)) {
      throw new ImageReferenceError(
        input,
        component.length === 0
          ? 'the repository path has an empty component (a leading, trailing or doubled "/")'
          : `path component ${JSON.stringify(component)} must be lowercase letters and digits, separated by ".", "_", "__" or "-"`,
      );
    }
  }
  if (registry === DEFAULT_REGISTRY && components.length === 1) repository = OFFICIAL_REPOSITORY_PREFIX + repository;
  return { registry, repository };
}

function validateDomain(input: string, domain: string): void {
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith('[')) {
    const close = domain.indexOf(']');
    host = close === -1 ? domain : domain.slice(0, close + 1);
    const after = domain.slice(host.length);
    if (after.length > 0) {
      if (!after.startsWith(':')) throw new ImageReferenceError(input, `registry ${JSON.stringify(domain)} is malformed`);
      port = after.slice(1);
    }
    if (!IPV6_HOST.test(host)) throw new ImageReferenceError(input, `registry ${JSON.stringify(domain)} is not a valid IPv6 address`);
  } else {
    const colon = domain.indexOf(':');
    if (colon >= 0) {
      host = domain.slice(0, colon);
      port = domain.slice(colon + 1);
    }
    for (const component of host.split('.')) {
      if (!DOMAIN_COMPONENT.test(component)) {
        throw new ImageReferenceError(input, `registry host ${JSON.stringify(host)} is not a valid host name`);
      }
    }
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) {
    throw new ImageReferenceError(input, `registry port ${JSON.stringify(port)} is not a number from 0 to 65535`);
  }
}

function validateDigest(input: string, digest: string): void {
  if (!DIGEST.test(digest)) {
    throw new ImageReferenceError(input, `digest ${JSON.stringify(digest)} must look like sha256:<64 hex digits>`);
  }
  const [algorithm = '', hex = ''] = digest.split(':');
  const expected = DIGEST_HEX_LENGTH[algorithm];
  if (expected === undefined) {
    throw new ImageReferenceError(input, `digest algorithm ${JSON.stringify(algorithm)} is not supported (sha256, sha384, sha512)`);
  }
  if (hex.length !== expected || hex !== hex.toLowerCase()) {
    throw new ImageReferenceError(input, `a ${algorithm} digest must be ${expected} lowercase hex digits`);
  }
}

/** The tag a pull by name resolves: the tag written, else `latest` (only when there is no digest either). */
export function effectiveTag(ref: ImageReference): string | undefined {
  if (ref.tag !== undefined) return ref.tag;
  return ref.digest === undefined ? DEFAULT_TAG : undefined;
}

/** `registry/repository` without tag or digest. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/**
 * The registry as a policy must match it, however a workload spells it: the host lowercased, the
 * default https port dropped, Docker Hub's other names (`index.docker.io`, `registry-1.docker.io`)
 * as `docker.io`. The same registry must not escape a rule by being written another way.
 */
export function canonicalRegistry(registry: string): string {
  const host = registry.toLowerCase().replace(/:443$/, '');
  return host === LEGACY_DEFAULT_REGISTRY || host === 'registry-1.docker.io' ? DEFAULT_REGISTRY : host;
}

/** The full normalised form: `docker.io/library/nginx:latest`, `quay.io/a/b@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  let out = repositoryName(ref);
  const tag = effectiveTag(ref);
  if (tag !== undefined) out += `:${tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** What identifies an image to run: a reference with a digest is the image with that digest, whatever its tag says. */
export function imageKey(ref: ImageReference): string {
  return ref.digest ? `${repositoryName(ref)}@${ref.digest}` : formatReference(ref);
}

/** Whether two references as written run the same image (by `imageKey`); false when either does not parse. */
export function runsSameImage(a: string, b: string): boolean {
  const x = tryParseReference(a);
  const y = tryParseReference(b);
  return x !== undefined && y !== undefined && imageKey(x) === imageKey(y);
}

/** A copy of `ref` with a different tag/digest. */
export function withSelector(ref: ImageReference, selector: { tag?: string | undefined; digest?: string | undefined }): ImageReference {
  return { registry: ref.registry, repository: ref.repository, tag: selector.tag, digest: selector.digest };
}
