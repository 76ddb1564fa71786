/**
 * The registry flags every command that copies shares (--insecure-registry, --ca-file, --auth-file,
 * --mutable-tag, --retry-budget, --max-image-size, --min-copy-rate, --referrers, --referrer-artifact-type), as the commands receive them,
 * and the registry stack's options they make: read in one place, as crane builds its options once.
 */
import { TagPolicy } from '../image/tag-policy.ts';
import type { CopyBounds } from '../registry/copy.ts';
import type { CredentialStore } from '../registry/credentials.ts';
import { ConfigError } from '../errors.ts';
import type { SignaturePolicy } from '../image/signature-policy.ts';
import type { RegistryStackOptions } from '../registry/index.ts';
import type { RegistryRate } from '../registry/pull-quota.ts';
import { REFERRERS_MODES, type ReferrersMode, type ReferrersPolicy } from '../registry/referrers.ts';
import { retryPolicyWithBudget } from '../util/retry.ts';

export interface RegistrySettings {
  readonly insecureRegistries: readonly string[];
  readonly caFile?: string;
  /** A Docker config.json with registry credentials. */
  readonly authFile?: string;
  readonly mutableTags?: readonly string[];
  /** How long one registry operation is retried before it fails (ms). */
  readonly retryBudgetMs: number;
  /** --max-image-size and --min-copy-rate. */
  readonly bounds: CopyBounds;
  /** --registry-rate: manifest GETs per period for registries that publish no quota headers. */
  readonly registryRates?: ReadonlyMap<string, RegistryRate>;
  /** --verify-signature: images whose backups must carry a signature that verifies, and the keys. */
  readonly signatures?: SignaturePolicy;
  /** --referrers and --referrer-artifact-type: what travels with each backup (default: everything). */
  readonly referrers?: ReferrersPolicy;
}

/** The stack's options for these settings; `credentials` gives the credentials of the moment (a reloaded file applies to the next request). */
export function registryStackOptions(settings: RegistrySettings, credentials: () => CredentialStore): RegistryStackOptions {
  return {
    insecureRegistries: settings.insecureRegistries,
    ...(settings.caFile === undefined ? {} : { caFile: settings.caFile }),
    credentials,
    tagPolicy: new TagPolicy(settings.mutableTags),
    retry: retryPolicyWithBudget(settings.retryBudgetMs),
    ...settings.bounds,
    ...(settings.referrers ? { referrers: settings.referrers } : {}),
    ...(settings.registryRates ? { registryRates: settings.registryRates } : {}),
  };
}

/** `--referrers all|signatures|none` and the artifact types `--referrer-artifact-type` keeps, checked. */
export function parseReferrersPolicy(mode: string, artifactTypes: readonly string[] | undefined): ReferrersPolicy {
  if (!(REFERRERS_MODES as readonly string[]).includes(mode))
    throw new ConfigError(`--referrers ${JSON.stringify(mode)}: expected one of ${REFERRERS_MODES.join(', ')}`);
  for (const type of artifactTypes ?? [])
    if (!/^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i.test(type))
      throw new ConfigError(
        `--referrer-artifact-type ${JSON.stringify(type)}: not a media type (type/subtype, as application/vnd.dev.cosign.artifact.sig.v1+json)`,
      );
  if (mode === 'none' && artifactTypes?.length) throw new ConfigError('--referrer-artifact-type has no effect with --referrers none');
  return { mode: mode as ReferrersMode, ...(artifactTypes?.length ? { artifactTypes } : {}) };
}
