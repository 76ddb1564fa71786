/**
 * The registry flags every command that copies shares (--insecure-registry, --ca-file, --auth-file,
 * --mutable-tag, --retry-budget, --max-image-size, --min-copy-rate), as the commands receive them,
 * and the registry stack's options they make: read in one place, as crane builds its options once.
 */
import { TagPolicy } from '../image/tag-policy.ts';
import type { CopyBounds } from '../registry/copy.ts';
import type { CredentialStore } from '../registry/credentials.ts';
import type { RegistryStackOptions } from '../registry/index.ts';
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
  };
}
