/**
 * `image-clone copy`: one image (`SRC DST`, or `SRC --backup-registry HOST/PREFIX`), or a batch
 * from a file of `SRC DST` lines, copied concurrently. One line per image on stdout; failures on
 * stderr with what failed and why; exit 0 only when every copy succeeded.
 */
import { verifyIfAsked, type SignatureVerdict } from '../registry/signatures.ts';
import { registryStackOptions, type RegistrySettings } from './registry-settings.ts';
import { readFileSync } from 'node:fs';
import { ConfigError, describeError } from '../errors.ts';
import { backupReference, digestTag, parseBackupTarget, type BackupLayout } from '../image/backup.ts';
import { effectiveTag, formatReference, parseReference, withSelector, type ImageReference } from '../image/reference.ts';
import type { BatchResult, CopyRequest, CopyResult } from '../registry/copy.ts';
import { CredentialStore } from '../registry/credentials.ts';
import { createRegistryStack } from '../registry/index.ts';
import { formatBytes } from '../util/size.ts';

export interface CopyCommandOptions extends RegistrySettings {
  readonly pairs: ReadonlyArray<readonly [string, string | undefined]>;
  readonly backupRegistry?: string;
  readonly layout?: BackupLayout;
  readonly imageConcurrency?: number;
  readonly blobConcurrency?: number;
  readonly json?: boolean;
}

/** Reads `SRC DST` pairs, one per line; blank lines and `#` comments are skipped. */
export function readPairsFile(path: string): Array<[string, string]> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${path}: ${describeError(error)}`);
  }
  const pairs: Array<[string, string]> = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const fields = line.split(/\s+/);
    if (fields.length !== 2) throw new ConfigError(`${path}:${index + 1}: expected "SRC DST", found ${fields.length} field(s)`);
    pairs.push([fields[0]!, fields[1]!]);
  });
  return pairs;
}

/** A destination without tag or digest takes the source's tag (or a digest tag for a pinned source). */
export function resolveDestination(source: ImageReference, destinationText: string): ImageReference {
  const destination = parseReference(destinationText);
  const lastComponent = destinationText.split('@')[0]!.split('/').pop() ?? '';
  if (lastComponent.includes(':') || destinationText.includes('@')) return destination;
  const tag = effectiveTag(source) ?? digestTag(source.digest!);
  return withSelector(destination, { tag, digest: source.digest });
}

export async function copyCommand(options: CopyCommandOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const target = options.backupRegistry === undefined ? undefined : parseBackupTarget(options.backupRegistry, options.layout);
  const requests: CopyRequest[] = [];
  let invalid = 0;
  for (const [sourceText, destinationText] of options.pairs) {
    try {
      const source = parseReference(sourceText);
      let destination: ImageReference;
      if (destinationText !== undefined) destination = resolveDestination(source, destinationText);
      else if (target !== undefined) destination = backupReference(source, target);
      else throw new ConfigError(`no destination for ${sourceText}: give DST or --backup-registry`);
      requests.push({ source, destination });
    } catch (error) {
      invalid++;
      err(`error  ${sourceText}: ${describeError(error)}`);
    }
  }

  const credentials = options.authFile === undefined ? CredentialStore.empty() : CredentialStore.fromFile(options.authFile);
  const stack = createRegistryStack({
    ...registryStackOptions(options, () => credentials),
    ...(options.imageConcurrency === undefined ? {} : { imageConcurrency: options.imageConcurrency }),
    ...(options.blobConcurrency === undefined ? {} : { blobConcurrency: options.blobConcurrency }),
  });
  let results: BatchResult[];
  const signatures = new Map<BatchResult, SignatureVerdict | Error | undefined>();
  try {
    results = await stack.engine.copyAll(requests);
    // Where --verify-signature asks: the signature checked at the backup, after the copy.
    for (const entry of results)
      if (entry.ok)
        signatures.set(
          entry,
          await verifyIfAsked(stack.client, options.signatures, entry.request.source, entry.request.destination, entry.result.digest).catch((error: unknown) =>
            error instanceof Error ? error : new Error(String(error)),
          ),
        );
  } finally {
    await stack.close();
  }
  let failed = invalid;
  for (const entry of results) {
    if (!entry.ok) {
      failed++;
      err(`failed ${formatReference(entry.request.source)} -> ${formatReference(entry.request.destination)}: ${entry.error.message}`);
      continue;
    }
    const signature = signatures.get(entry);
    if (signature instanceof Error || signature?.verified === false) {
      failed++;
      const why = signature instanceof Error ? `it could not be checked: ${signature.message}` : signature.reason;
      err(`not verified ${entry.result.source} -> ${entry.result.destination} ${entry.result.digest}: ${why}`);
    } else if (options.json) out(JSON.stringify(signature ? { ...entry.result, signature } : entry.result));
    else
      out(
        `${formatResult(entry.result)}${signature ? `; signature verified with ${signature.key} (${signature.scheme}${signature.signer ? `, signed by ${signature.signer}` : ''})` : ''}`,
      );
  }
  if (options.pairs.length > 1) err(`${results.length - failed + invalid} of ${options.pairs.length} images copied or already backed up; ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

function formatResult(result: CopyResult): string {
  const details: string[] = [];
  if (result.platforms.length > 0) details.push(`${result.platforms.length} platforms`);
  if (result.outcome === 'copied') {
    details.push(`${formatBytes(result.blobs.bytesTransferred)} transferred`);
    if (result.blobs.mounted > 0) details.push(`${result.blobs.mounted} blobs mounted`);
    if (result.blobs.present > 0) details.push(`${result.blobs.present} blobs already there`);
  }
  if (result.referrers.copied > 0) details.push(`${result.referrers.copied} referrers copied`);
  if (result.referrers.present > 0) details.push(`${result.referrers.present} referrers already there`);
  for (const why of result.referrers.skipped) details.push(`left behind: ${why}`);
  return `${result.outcome.padEnd(9)} ${result.source} -> ${result.destination} ${result.digest}${details.length ? ` (${details.join(', ')})` : ''}`;
}
