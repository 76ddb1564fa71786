/**
 * Which images must carry a signature that verifies at the backup, and with which keys
 * (`--verify-signature PATTERN=key:PATH`): a backup of such an image whose signature does not
 * verify is not handed off. Patterns are globs with `*` over the source's `registry/repository`
 * (`ghcr.io/acme/*`, `docker.io/library/nginx`). Read and checked at start-up.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import { escapeRegExp } from '../util/regexp.ts';
import { canonicalRegistry, type ImageReference } from './reference.ts';

export interface VerificationKey {
  /** How the pull request and the logs name it: the file it was read from. */
  readonly name: string;
  readonly key: KeyObject;
}

export interface SignatureRule {
  readonly pattern: string;
  readonly keys: readonly VerificationKey[];
}

export class SignaturePolicy {
  readonly rules: readonly SignatureRule[];
  readonly #matchers: ReadonlyArray<{ readonly regexp: RegExp; readonly rule: SignatureRule }>;

  constructor(rules: readonly SignatureRule[] = []) {
    this.rules = rules;
    this.#matchers = rules.map((rule) => ({ regexp: new RegExp(`^${rule.pattern.split('*').map(escapeRegExp).join('.*')}$`, 'i'), rule }));
  }

  /** The keys one of which must verify a signature of `source` (every rule that matches it counts), or undefined when none asks. */
  keysFor(source: ImageReference): readonly VerificationKey[] | undefined {
    // However the workload spells the host (case, :443, Docker Hub's other names), the rule applies.
    const name = `${canonicalRegistry(source.registry)}/${source.repository}`;
    const keys = this.#matchers.filter((m) => m.regexp.test(name)).flatMap((m) => m.rule.keys);
    return keys.length > 0 ? keys : undefined;
  }
}

/** `PATTERN=key:PATH`, each flag one key (a pattern given twice: any of its keys verifies). */
export function parseSignaturePolicy(flags: readonly string[], readKey: (path: string) => string = (path) => readFileSync(path, 'utf8')): SignaturePolicy {
  const byPattern = new Map<string, VerificationKey[]>();
  for (const flag of flags) {
    const match = /^([^=\s]+)=key:(.+)$/.exec(flag);
    if (!match)
      throw new ConfigError(
        `--verify-signature ${JSON.stringify(flag)}: expected PATTERN=key:PATH (a cosign public key, PEM), as ghcr.io/acme/*=key:/keys/acme.pub`,
      );
    const [, pattern, path] = match as unknown as [string, string, string];
    if (!/^[a-z0-9.*-]+(:\d+)?\/[a-z0-9._/*-]+$/i.test(pattern))
      throw new ConfigError(`--verify-signature ${JSON.stringify(flag)}: ${JSON.stringify(pattern)} is not a registry/repository pattern (globs with *)`);
    let key: KeyObject;
    try {
      const pem = readKey(path);
      // A private key would be accepted (its public half derived): refused, so none is ever mounted for this.
      if (/PRIVATE KEY/.test(pem)) throw new Error('it holds a private key; give the public one (cosign.pub)');
      key = createPublicKey(pem);
    } catch (error) {
      throw new ConfigError(`--verify-signature ${pattern}: the key ${path} is not readable as a PEM public key (${(error as Error).message})`);
    }
    byPattern.set(pattern, [...(byPattern.get(pattern) ?? []), { name: path, key }]);
  }
  return new SignaturePolicy([...byPattern].map(([pattern, keys]) => ({ pattern, keys })));
}
