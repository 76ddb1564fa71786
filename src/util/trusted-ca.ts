/** The CAs TLS connections trust: the system's roots, plus an operator's extra PEM file (`--ca-file`). */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ConfigError } from '../errors.ts';

/** Node's `ca` option for `caFile` (it replaces the default roots, so they are kept), or undefined: the defaults. */
export function trustedCa(caFile: string | undefined): string[] | undefined {
  if (caFile === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(caFile, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the CA file ${caFile}: ${(error as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`the CA file ${caFile} holds no PEM certificate`);
  return [...rootCertificates, pem];
}
