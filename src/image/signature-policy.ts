/**
 * Which images must carry a signature that verifies at the backup, and whom to trust for it
 * (`--verify-signature`): a backup of such an image whose signature does not verify is not handed
 * off. Patterns are globs with `*` over the source's `registry/repository` (`ghcr.io/acme/*`,
 * `docker.io/library/nginx`). Two kinds of trust, read and checked at start-up:
 *
 * - `PATTERN=key:PATH`: a cosign public key the operator holds;
 * - `PATTERN=keyless:issuer=URL,identity=GLOB,root=PATH`: a certificate (Fulcio's, or a private CA's)
 *   naming that OIDC issuer and an identity matching the glob, chaining to a certificate authority of
 *   the Sigstore trusted root at PATH (supplied offline: `cosign trusted-root create`, or the public
 *   instance's `trusted_root.json`), at a time a timestamp authority or transparency log of that
 *   root vouches for. What the root lists is required: a root with a transparency log asks for an
 *   entry in it, one with a CT log for a certificate timestamp.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toTrustMaterial, Verifier } from '@sigstore/verify';
import { ConfigError } from '../errors.ts';
import { globRegExp } from '../util/regexp.ts';
import { canonicalRegistry, type ImageReference } from './reference.ts';

/** One party whose signature is accepted: how to check a signature is theirs, and how to name them. */
export interface SignerTrust {
  /** How the pull request and the logs name it: the key file, or the identity and issuer asked for. */
  readonly name: string;
  readonly kind: 'key' | 'keyless';
  readonly verifier: Verifier;
  /** Keyless: the identity (a glob, and it anchored) and the issuer the signing certificate must name. */
  readonly certificate?: { readonly identity: string; readonly identityPattern: RegExp; readonly issuer: string };
}

export interface SignatureRule {
  readonly pattern: string;
  readonly trust: readonly SignerTrust[];
}

export class SignaturePolicy {
  readonly rules: readonly SignatureRule[];
  readonly #matchers: ReadonlyArray<{ readonly regexp: RegExp; readonly rule: SignatureRule }>;

  constructor(rules: readonly SignatureRule[] = []) {
    this.rules = rules;
    this.#matchers = rules.map((rule) => ({ regexp: globRegExp(rule.pattern, 'i'), rule }));
  }

  /** Whom a signature of `source` must come from (every rule that matches it counts), or undefined when none asks. */
  trustFor(source: ImageReference): readonly SignerTrust[] | undefined {
    // However the workload spells the host (case, :443, Docker Hub's other names), the rule applies.
    const name = `${canonicalRegistry(source.registry)}/${source.repository}`;
    const trust = this.#matchers.filter((m) => m.regexp.test(name)).flatMap((m) => m.rule.trust);
    return trust.length > 0 ? trust : undefined;
  }
}

const FORMS = 'PATTERN=key:PATH (a cosign public key, PEM) or PATTERN=keyless:issuer=URL,identity=GLOB,root=PATH (a Sigstore trusted root, JSON)';

/** Each flag one key or one keyless identity (a pattern given twice: any of them verifies). */
export function parseSignaturePolicy(flags: readonly string[], read: (path: string) => string = (path) => readFileSync(path, 'utf8')): SignaturePolicy {
  const byPattern = new Map<string, SignerTrust[]>();
  for (const flag of flags) {
    const match = /^([^=\s]+)=(key|keyless):(.+)$/.exec(flag);
    if (!match) throw new ConfigError(`--verify-signature ${JSON.stringify(flag)}: expected ${FORMS}, as ghcr.io/acme/*=key:/keys/acme.pub`);
    const [, pattern, kind, rest] = match as unknown as [string, string, 'key' | 'keyless', string];
    if (!/^[a-z0-9.*-]+(:\d+)?\/[a-z0-9._/*-]+$/i.test(pattern))
      throw new ConfigError(`--verify-signature ${JSON.stringify(flag)}: ${JSON.stringify(pattern)} is not a registry/repository pattern (globs with *)`);
    const trust = kind === 'key' ? keyTrust(pattern, rest, read) : keylessTrust(pattern, rest, read);
    byPattern.set(pattern, [...(byPattern.get(pattern) ?? []), trust]);
  }
  return new SignaturePolicy([...byPattern].map(([pattern, trust]) => ({ pattern, trust })));
}

/** A key the operator holds: no transparency log, no certificate authority. */
function keyTrust(pattern: string, path: string, read: (path: string) => string): SignerTrust {
  let key: KeyObject;
  try {
    const pem = read(path);
    // A private key would be accepted (its public half derived): refused, so none is ever mounted for this.
    if (/PRIVATE KEY/.test(pem)) throw new Error('it holds a private key; give the public one (cosign.pub)');
    key = createPublicKey(pem);
  } catch (error) {
    throw new ConfigError(`--verify-signature ${pattern}: the key ${path} is not readable as a PEM public key (${(error as Error).message})`);
  }
  const material = toTrustMaterial({ mediaType: '', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] }, () => ({
    publicKey: key,
    validFor: () => true,
  }));
  return { name: path, kind: 'key', verifier: new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }) };
}

function keylessTrust(pattern: string, spec: string, read: (path: string) => string): SignerTrust {
  const fail = (why: string) => new ConfigError(`--verify-signature ${pattern}=keyless:…: ${why}`);
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const [name, ...value] = part.split('=');
    if (!['issuer', 'identity', 'root'].includes(name!) || value.length === 0 || fields.has(name!))
      throw fail(`${JSON.stringify(part)} is not one of issuer=URL, identity=GLOB, root=PATH (each once)`);
    fields.set(name!, value.join('='));
  }
  const [issuer, identity, path] = ['issuer', 'identity', 'root'].map((name) => fields.get(name));
  if (!issuer || !identity || !path) throw fail('issuer=URL, identity=GLOB and root=PATH are all required');
  if (!/^https?:\/\/\S+$/.test(issuer)) throw fail(`the issuer ${JSON.stringify(issuer)} is not a URL (as https://token.actions.githubusercontent.com)`);
  let root: TrustedRoot;
  try {
    root = TrustedRoot.fromJSON(JSON.parse(read(path)));
  } catch (error) {
    throw fail(`the trusted root ${path} is not readable as a Sigstore trusted root, JSON (${(error as Error).message})`);
  }
  // A log key's validity must start somewhere (Sigstore's trust root spec); a missing start is not "always".
  const unbounded = [...root.tlogs, ...root.ctlogs].find((log) => log.publicKey?.validFor?.start === undefined);
  if (unbounded) throw fail(`the trusted root ${path} has a log (${unbounded.baseUrl || 'no URL'}) whose key has no validity start`);
  if (root.certificateAuthorities.length === 0) throw fail(`the trusted root ${path} lists no certificate authority, so no certificate can chain to it`);
  if (root.timestampAuthorities.length === 0 && root.tlogs.length === 0)
    throw fail(`the trusted root ${path} lists neither a timestamp authority nor a transparency log, so no signing time can be vouched for`);
  let material: ReturnType<typeof toTrustMaterial>;
  try {
    material = toTrustMaterial(root);
  } catch (error) {
    throw fail(`the trusted root ${path} holds a key or certificate that does not parse (${(error as Error).message})`);
  }
  return {
    name: `${identity} from ${issuer}`,
    kind: 'keyless',
    // A certificate is only valid at a vouched-for time; a log or CT log the root lists must have seen the signature.
    verifier: new Verifier(material, { timestampThreshold: 1, tlogThreshold: root.tlogs.length > 0 ? 1 : 0, ctlogThreshold: root.ctlogs.length > 0 ? 1 : 0 }),
    certificate: { identity, identityPattern: globRegExp(identity), issuer },
  };
}
