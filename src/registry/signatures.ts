/**
 * Whether a backup carries a signature that verifies with the operator's key, read at the backup
 * itself (what nodes will pull is what is checked): cosign's signatures in both the schemes it
 * writes, a Sigstore bundle referring to the image (cosign v3, through the referrers API or the
 * fallback tag) and the legacy `sha256-<hex>.sig` tag (simple signing). The cryptography is
 * Sigstore's own library (@sigstore/verify); what is checked here is that the signed statement names
 * this very digest.
 */
import { createHash } from 'node:crypto';
import { bundleFromJSON, type SerializedBundle } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { describeError } from '../errors.ts';
import type { ImageReference } from '../image/reference.ts';
import type { SignaturePolicy, VerificationKey } from '../image/signature-policy.ts';
import { DEFAULT_RETRY_POLICY, withRetries } from '../util/retry.ts';
import type { RegistryClient, Repo } from './client.ts';
import { parseManifest } from './manifest.ts';
import { findReferrers, repositoryView } from './referrers.ts';

/** A signature blob (a bundle, a simple-signing payload) is a few KiB; more is not one. */
const MAX_SIGNATURE_BYTES = 256 * 1024;
/** Signatures tried per image (a real one has a few). */
const MAX_SIGNATURES = 16;
const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const BUNDLE_MEDIA = /^application\/vnd\.dev\.sigstore\.bundle(\.v[\d.]+)?\+json/;

export type SignatureVerdict =
  | { readonly verified: true; readonly key: string; readonly scheme: 'sigstore bundle' | 'cosign .sig tag' }
  | { readonly verified: false; readonly reason: string };

/**
 * Where `policy` asks for a signature of `source` (--verify-signature): whether one verifies at the
 * backup `backup@digest`; undefined where nothing asks. Each request retried as copies are.
 */
export function verifyIfAsked(
  client: RegistryClient,
  policy: SignaturePolicy | undefined,
  source: ImageReference,
  backup: Repo,
  digest: string,
): Promise<SignatureVerdict | undefined> {
  const keys = policy?.keysFor(source);
  if (keys === undefined) return Promise.resolve(undefined);
  return verifyBackupSignature(client, { registry: backup.registry, repository: backup.repository }, digest, keys, (operation) =>
    withRetries(operation, DEFAULT_RETRY_POLICY),
  );
}

/** Whether one of the backup's signatures verifies with one of `keys`; the reason when none does. */
export async function verifyBackupSignature(
  client: RegistryClient,
  backup: Repo,
  digest: string,
  keys: readonly VerificationKey[],
  call: <T>(operation: () => Promise<T>) => Promise<T>,
): Promise<SignatureVerdict> {
  const found = await findReferrers(client, backup, digest, { mode: 'signatures' }, repositoryView(client, backup, false, call), call);
  const candidates = [
    ...found.referrers.map((r) => ({ scheme: 'sigstore bundle' as const, selector: r.digest })),
    ...found.cosignTags.map((tag) => ({ scheme: 'cosign .sig tag' as const, selector: tag })),
  ].slice(0, MAX_SIGNATURES);
  if (candidates.length === 0) return { verified: false, reason: `no signature at the backup ${backup.registry}/${backup.repository}@${digest}` };
  const failures: string[] = [];
  for (const { scheme, selector } of candidates) {
    const manifest = await call(() => client.getManifest(backup, selector));
    const parsed = parseManifest(manifest.bytes, manifest.mediaType, `signature ${selector}`);
    if (parsed.kind !== 'image') continue;
    for (const layer of parsed.layers.slice(0, MAX_SIGNATURES)) {
      if (layer.mediaType !== SIMPLE_SIGNING && !BUNDLE_MEDIA.test(layer.mediaType)) continue;
      const content = await call(() => client.readBlob(backup, layer.digest, MAX_SIGNATURE_BYTES));
      for (const key of keys) {
        const why =
          scheme === 'sigstore bundle'
            ? checkBundle(content, digest, key)
            : checkSimpleSigning(content, layer.annotations?.[SIGNATURE_ANNOTATION], digest, key);
        if (why === undefined) return { verified: true, key: key.name, scheme };
        failures.push(`${scheme} ${selector.slice(0, 19)}…: ${why}`);
      }
    }
  }
  return {
    verified: false,
    reason: `${candidates.length} signature${candidates.length === 1 ? '' : 's'} at the backup, none verified with ${keys.map((k) => k.name).join(' or ')} (${failures.slice(0, 3).join('; ') || 'no signature layer'})`,
  };
}

/** A cosign v3 bundle: a DSSE envelope signed by `key` whose in-toto statement names `digest` as a cosign signature. */
function checkBundle(content: Buffer, digest: string, key: VerificationKey): string | undefined {
  try {
    const bundle = bundleFromJSON(JSON.parse(content.toString('utf8')) as SerializedBundle);
    verifier(key).verify(toSignedEntity(bundle));
    if (bundle.content.$case !== 'dsseEnvelope') return 'the bundle holds no signed statement';
    const statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString('utf8')) as {
      subject?: Array<{ digest?: Record<string, string> }>;
      predicateType?: string;
    };
    if (statement.predicateType !== COSIGN_SIGN_PREDICATE) return `the statement is a ${statement.predicateType}, not a signature`;
    const [algorithm, hex] = digest.split(':');
    if (!statement.subject?.some((s) => s.digest?.[algorithm!] === hex)) return `the signed statement does not name ${digest}`;
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}

/** A legacy cosign signature: a simple-signing payload naming `digest`, its signature in the layer's annotation. */
function checkSimpleSigning(payload: Buffer, signature: string | undefined, digest: string, key: VerificationKey): string | undefined {
  if (signature === undefined) return 'the layer carries no signature';
  try {
    const bundle = bundleFromJSON({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { publicKey: { hint: '' }, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(payload).digest('base64') }, signature },
    });
    verifier(key).verify(toSignedEntity(bundle, payload));
    const signed = (JSON.parse(payload.toString('utf8')) as { critical?: { image?: { 'docker-manifest-digest'?: string } } }).critical?.image?.[
      'docker-manifest-digest'
    ];
    return signed === digest ? undefined : `the signed payload names ${signed ?? 'no image'}, not ${digest}`;
  } catch (error) {
    return describeError(error);
  }
}

/** A verifier that trusts `key` alone: no transparency log, no certificate authority (a key the operator holds). */
function verifier(key: VerificationKey): Verifier {
  const trust = toTrustMaterial({ mediaType: '', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] }, () => ({
    publicKey: key.key,
    validFor: () => true,
  }));
  return new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
}
