/**
 * Whether a backup carries a signature that verifies with the operator's key or keyless identity,
 * read at the backup itself (what nodes will pull is what is checked): cosign's signatures in both
 * the schemes it writes, a Sigstore bundle referring to the image (cosign v3, through the referrers
 * API or the fallback tag) and the legacy `sha256-<hex>.sig` tag (simple signing; keyless, its
 * certificate and timestamp in the layer's annotations). The cryptography is Sigstore's own library
 * (@sigstore/verify); what is checked here is that the signed statement names this very digest.
 */
import { createHash } from 'node:crypto';
import { bundleFromJSON, type SerializedBundle } from '@sigstore/bundle';
import { toSignedEntity, type SignedEntity } from '@sigstore/verify';
import { describeError } from '../errors.ts';
import type { ImageReference } from '../image/reference.ts';
import type { SignaturePolicy, SignerTrust } from '../image/signature-policy.ts';
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
const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
const TIMESTAMP_ANNOTATION = 'dev.sigstore.cosign/rfc3161timestamp';
const REKOR_BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';
const BUNDLE_MEDIA = /^application\/vnd\.dev\.sigstore\.bundle(\.v[\d.]+)?\+json/;

export type SignatureVerdict =
  | {
      readonly verified: true;
      /** The trust that verified it: the key file, or the keyless identity and issuer asked for. */
      readonly key: string;
      readonly scheme: 'sigstore bundle' | 'cosign .sig tag';
      /** Keyless: the identity the signing certificate names. */
      readonly signer?: string;
    }
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
  const trust = policy?.trustFor(source);
  if (trust === undefined) return Promise.resolve(undefined);
  return verifyBackupSignature(client, { registry: backup.registry, repository: backup.repository }, digest, trust, (operation) =>
    withRetries(operation, DEFAULT_RETRY_POLICY),
  );
}

/** Whether one of the backup's signatures verifies with one of `trust`; the reason when none does. */
export async function verifyBackupSignature(
  client: RegistryClient,
  backup: Repo,
  digest: string,
  trust: readonly SignerTrust[],
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
      for (const signer of trust) {
        const checked =
          scheme === 'sigstore bundle' ? checkBundle(content, digest, signer) : checkSimpleSigning(content, layer.annotations ?? {}, digest, signer);
        if (typeof checked !== 'string') return { verified: true, key: signer.name, scheme, ...checked };
        failures.push(`${scheme} ${selector.slice(0, 19)}…: ${checked}`);
      }
    }
  }
  return {
    verified: false,
    reason: `${candidates.length} signature${candidates.length === 1 ? '' : 's'} at the backup, none verified with ${trust.map((t) => t.name).join(' or ')} (${failures.slice(0, 3).join('; ') || 'no signature layer'})`,
  };
}

/** Who signed, where a signature verifies: the certificate's identity (keyless); else why not. */
type Checked = { readonly signer?: string } | string;

/** A cosign v3 bundle: a DSSE envelope signed by `trust` whose in-toto statement names `digest` as a cosign signature. */
function checkBundle(content: Buffer, digest: string, trust: SignerTrust): Checked {
  try {
    const bundle = bundleFromJSON(asCosignWritesIt(JSON.parse(content.toString('utf8')) as SerializedBundle));
    const signed = signedBy(trust, toSignedEntity(bundle));
    if (bundle.content.$case !== 'dsseEnvelope') return 'the bundle holds no signed statement';
    const statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString('utf8')) as {
      subject?: Array<{ digest?: Record<string, string> }>;
      predicateType?: string;
    };
    if (statement.predicateType !== COSIGN_SIGN_PREDICATE) return `the statement is a ${statement.predicateType}, not a signature`;
    const [algorithm, hex] = digest.split(':');
    if (!statement.subject?.some((s) => s.digest?.[algorithm!] === hex)) return `the signed statement does not name ${digest}`;
    return signed;
  } catch (error) {
    return describeError(error);
  }
}

/**
 * A bundle as cosign v3 writes it, in the shape the v0.3 format names: cosign leaves `tlogEntries` out
 * when no log was used, and given `--certificate-chain` writes the chain where v0.3 has room for the
 * signing certificate alone. The leaf is what is verified, against the trusted root's authorities
 * (which hold the intermediates), as Sigstore's Go verifier does.
 */
function asCosignWritesIt(bundle: SerializedBundle): SerializedBundle {
  const material = bundle.verificationMaterial as SerializedBundle['verificationMaterial'] & {
    x509CertificateChain?: { certificates?: Array<{ rawBytes: string }> };
  };
  if (material === undefined) return bundle;
  const { x509CertificateChain, ...rest } = material;
  const leaf = /v0\.3/.test(bundle.mediaType) ? x509CertificateChain?.certificates?.[0] : undefined;
  return {
    ...bundle,
    verificationMaterial: { ...(leaf ? { ...rest, certificate: leaf } : material), tlogEntries: material.tlogEntries ?? [] },
  } as SerializedBundle;
}

/**
 * A legacy cosign signature: a simple-signing payload naming `digest`, its signature in the layer's
 * annotation and, keyless, the signing certificate and a timestamp authority's answer beside it.
 */
function checkSimpleSigning(payload: Buffer, annotations: Readonly<Record<string, string>>, digest: string, trust: SignerTrust): Checked {
  const signature = annotations[SIGNATURE_ANNOTATION];
  if (signature === undefined) return 'the layer carries no signature';
  const certificate = annotations[CERTIFICATE_ANNOTATION];
  if (trust.kind === 'keyless' && certificate === undefined) return 'signed with a key, not a certificate';
  try {
    let timestamp: string | undefined;
    if (trust.kind === 'keyless' && annotations[TIMESTAMP_ANNOTATION] !== undefined)
      timestamp = (JSON.parse(annotations[TIMESTAMP_ANNOTATION]) as { SignedRFC3161Timestamp?: string }).SignedRFC3161Timestamp;
    if (trust.kind === 'keyless' && timestamp === undefined)
      return annotations[REKOR_BUNDLE_ANNOTATION] !== undefined
        ? "its only signing time is a transparency log's promise in cosign's legacy form, which is not read here (the Sigstore bundle format, cosign v3's default, is)"
        : 'no timestamp vouches for when it was signed';
    const bundle = bundleFromJSON({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: {
        ...(trust.kind === 'keyless' ? { certificate: { rawBytes: pemBody(certificate!) } } : { publicKey: { hint: '' } }),
        tlogEntries: [],
        timestampVerificationData: { rfc3161Timestamps: timestamp === undefined ? [] : [{ signedTimestamp: timestamp }] },
      },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(payload).digest('base64') }, signature },
    });
    const signed = signedBy(trust, toSignedEntity(bundle, payload));
    const named = (JSON.parse(payload.toString('utf8')) as { critical?: { image?: { 'docker-manifest-digest'?: string } } }).critical?.image?.[
      'docker-manifest-digest'
    ];
    return named === digest ? signed : `the signed payload names ${named ?? 'no image'}, not ${digest}`;
  } catch (error) {
    return describeError(error);
  }
}

/**
 * Verified by `trust` (its key alone; or its root, and the certificate naming the identity and issuer
 * it asks for): who signed. The names are compared here, not by the library, which would read the
 * identity as an unanchored regular expression.
 */
export function signedBy(trust: SignerTrust, entity: SignedEntity): { readonly signer?: string } {
  // The operator's key is the whole trust: a log entry or timestamp beside the signature (cosign uploads
  // to Rekor by default) is nothing a key policy checks, and would fail for want of the log's key.
  const signer = trust.verifier.verify(trust.kind === 'key' ? { ...entity, tlogEntries: [], timestamps: [] } : entity);
  if (trust.certificate === undefined) return {};
  const identity = signer.identity?.subjectAlternativeName ?? '';
  const issuer = signer.identity?.extensions?.issuer ?? '';
  // What a certificate names is the signer's to write: quoted and cut.
  const quote = (text: string) => JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);
  if (!trust.certificate.identityPattern.test(identity)) throw new Error(`signed by ${quote(identity)}, not ${trust.certificate.identity}`);
  if (issuer !== trust.certificate.issuer) throw new Error(`signed by ${quote(identity)} from ${quote(issuer)}, not from ${trust.certificate.issuer}`);
  return { signer: identity };
}

/** The base64 body of the first certificate of a PEM text. */
function pemBody(pem: string): string {
  const body = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem)?.[1];
  if (body === undefined) throw new Error('the certificate beside it is not PEM');
  return body.replace(/\s+/g, '');
}
