/**
 * What a keyless signature needs, on this machine: Sigstore's own timestamp authority (built from the
 * Go module proxy, its signing key in memory, NTP monitoring off so it reaches nothing outside), and a
 * certificate authority shaped as Fulcio's (a root, an intermediate for code signing, and short-lived
 * leaf certificates naming an identity in the SAN and the OIDC issuer in Fulcio's extensions
 * 1.3.6.1.4.1.57264.1.1 and .8), made by openssl. `cosign trusted-root create` turns both into the
 * trusted root a verifier is given offline.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { run, startDaemon, waitFor } from './process.ts';
import { referrersTools } from './referrers-registry.ts';

export interface TimestampAuthority {
  /** The RFC 3161 endpoint cosign is given (`--timestamp-server-url`). */
  readonly url: string;
  /** Its certificate chain, PEM. */
  readonly chain: string;
  stop(): Promise<void>;
}

export async function startTimestampAuthority(): Promise<TimestampAuthority> {
  const args = ['serve', '--host', '127.0.0.1', '--timestamp-signer', 'memory', '--disable-ntp-monitoring', '--log-type', 'prod'];
  const daemon = startDaemon(referrersTools().timestampServer, args);
  let base: string | undefined;
  let chain = '';
  try {
    await waitFor(
      'the timestamp authority',
      async () => {
        base = /Serving timestamp server at (http:\/\/127\.0\.0\.1:\d+)/.exec(daemon.output())?.[1];
        if (base === undefined) return false;
        const response = await request(`${base}/api/v1/timestamp/certchain`);
        chain = await response.body.text();
        return response.statusCode === 200 && chain.includes('BEGIN CERTIFICATE');
      },
      20_000,
      daemon.child,
    );
  } catch (error) {
    await daemon.stop();
    throw new Error(`${(error as Error).message}\n${daemon.output()}`);
  }
  return { url: `${base!}/api/v1/timestamp`, chain, stop: () => daemon.stop() };
}

export interface SigningCertificate {
  /** cosign's encrypted key file (empty password) for the leaf's key. */
  readonly key: string;
  /** The leaf certificate, PEM. */
  readonly certificate: string;
  /** Its authority's intermediate and root, PEM. */
  readonly chain: string;
}

/** A Fulcio-shaped certificate authority in `dir`: root.pem and intermediate.pem, chain.pem (both). */
export async function makeCertificateAuthority(dir: string): Promise<void> {
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[root]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '[intermediate]',
      'basicConstraints = critical,CA:TRUE,pathlen:0',
      'keyUsage = critical,keyCertSign,cRLSign',
      'extendedKeyUsage = codeSigning',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  const openssl = (...args: string[]) => run('openssl', args, undefined, { cwd: dir });
  await openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'root.key');
  await openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    'root.key',
    '-subj',
    '/O=test/CN=test-signing-root',
    '-days',
    '2',
    '-config',
    'ca.cnf',
    '-extensions',
    'root',
    '-out',
    'root.pem',
  );
  await openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'intermediate.key');
  await openssl('req', '-new', '-key', 'intermediate.key', '-subj', '/O=test/CN=test-signing-intermediate', '-out', 'intermediate.csr');
  await openssl(
    'x509',
    '-req',
    '-in',
    'intermediate.csr',
    '-CA',
    'root.pem',
    '-CAkey',
    'root.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'ca.cnf',
    '-extensions',
    'intermediate',
    '-out',
    'intermediate.pem',
  );
  writeFileSync(join(dir, 'chain.pem'), readFileSync(join(dir, 'intermediate.pem'), 'utf8') + readFileSync(join(dir, 'root.pem'), 'utf8'));
}

/**
 * A leaf certificate from the authority in `dir` for `identity` (a URI) and `issuer`, as Fulcio issues
 * for an OIDC token, named `name`; its key imported into cosign's format.
 */
export async function issueSigningCertificate(dir: string, name: string, identity: string, issuer: string): Promise<SigningCertificate> {
  const hex = Buffer.from(issuer).toString('hex');
  writeFileSync(
    join(dir, `${name}.cnf`),
    [
      '[leaf]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = codeSigning',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      `subjectAltName = URI:${identity}`,
      // Fulcio's issuer: v1 the raw string, v2 a DER UTF8String.
      `1.3.6.1.4.1.57264.1.1 = DER:${hex}`,
      `1.3.6.1.4.1.57264.1.8 = ASN1:UTF8String:${issuer}`,
      '',
    ].join('\n'),
  );
  const openssl = (...args: string[]) => run('openssl', args, undefined, { cwd: dir });
  await openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.ec`);
  await openssl('req', '-new', '-key', `${name}.ec`, '-subj', '/', '-out', `${name}.csr`);
  await openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'intermediate.pem',
    '-CAkey',
    'intermediate.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    `${name}.cnf`,
    '-extensions',
    'leaf',
    '-out',
    `${name}.pem`,
  );
  await run(referrersTools().cosign, ['import-key-pair', '--key', `${name}.ec`, '--output-key-prefix', name, '-y'], undefined, {
    cwd: dir,
    env: { ...process.env, COSIGN_PASSWORD: '', HOME: dir },
  });
  return { key: join(dir, `${name}.key`), certificate: join(dir, `${name}.pem`), chain: join(dir, 'chain.pem') };
}

/** The trusted root a verifier is given offline: the authority in `dir` and the timestamp authority, by cosign. */
export async function writeTrustedRoot(dir: string, tsa: TimestampAuthority): Promise<string> {
  writeFileSync(join(dir, 'tsa-chain.pem'), tsa.chain);
  const out = join(dir, 'trusted_root.json');
  await run(
    referrersTools().cosign,
    [
      'trusted-root',
      'create',
      `--fulcio=url=https://fulcio.example.test,certificate-chain=${join(dir, 'chain.pem')}`,
      `--tsa=url=${tsa.url},certificate-chain=${join(dir, 'tsa-chain.pem')}`,
      '--out',
      out,
    ],
    undefined,
    { cwd: dir, env: { ...process.env, HOME: dir } },
  );
  return out;
}
