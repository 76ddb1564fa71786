/**
 * Throw-away TLS material for loopback servers: a CA, and certificates it signs for 127.0.0.1 and
 * localhost. Generated with the openssl command, into a directory the caller owns.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './process.ts';

export interface CertificateAuthority {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface ServerCertificate {
  readonly certFile: string;
  readonly keyFile: string;
}

export async function createCertificateAuthority(dir: string, name = 'image-clone test CA'): Promise<CertificateAuthority> {
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', certFile]);
  return { certFile, keyFile };
}

/** A certificate for 127.0.0.1, 127.0.0.2 and localhost, signed by `ca`. */
export async function createServerCertificate(dir: string, ca: CertificateAuthority, name = 'server'): Promise<ServerCertificate> {
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', csrFile]);
  await run('openssl', ['x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-days', '2', '-sha256', '-extfile', extFile, '-out', certFile]);
  return { certFile, keyFile };
}

/** A self-signed certificate and key, e.g. for signing registry tokens. */
export async function createSelfSigned(dir: string, name: string): Promise<ServerCertificate> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', certFile]);
  return { certFile, keyFile };
}
