/** Docker config.json files for the tests' registries. */
import type { Credential } from '../src/registry/credentials.ts';

/** The `auth` form of a credential, as Docker writes it. */
export function dockerConfigJson(entries: Record<string, Credential>): string {
  const auths: Record<string, { auth: string }> = {};
  for (const [registry, { username, password }] of Object.entries(entries)) {
    auths[registry] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  }
  return JSON.stringify({ auths });
}
