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
  return selfSigned(dir, 'ca', name);
}

export interface CertificateRequest {
  /** File name stem in `dir`. */
  readonly name: string;
  /** Subject, e.g. `/CN=admin/O=system:masters` (Kubernetes reads user and groups from CN and O). */
  readonly subject: string;
  readonly usage: 'server' | 'client';
  /** subjectAltName entries for a server: `IP:127.0.0.1`, `DNS:localhost`. */
  readonly altNames?: readonly string[];
}

/** A certificate signed by `ca`. */
export async function createCertificate(dir: string, ca: CertificateAuthority, req: CertificateRequest): Promise<ServerCertificate> {
  const keyFile = join(dir, `${req.name}.key`);
  const csrFile = join(dir, `${req.name}.csr`);
  const certFile = join(dir, `${req.name}.crt`);
  const extFile = join(dir, `${req.name}.ext`);
  const lines = [`extendedKeyUsage=${req.usage === 'server' ? 'serverAuth' : 'clientAuth'}`];
  if (req.altNames?.length) lines.push(`subjectAltName=${req.altNames.join(',')}`);
  writeFileSync(extFile, `${lines.join('\n')}\n`);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', req.subject, '-keyout', keyFile, '-out', csrFile]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csrFile,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    extFile,
    '-out',
    certFile,
  ]);
  return { certFile, keyFile };
}

/** A server certificate for 127.0.0.1, 127.0.0.2 and localhost, signed by `ca`. */
export function createServerCertificate(dir: string, ca: CertificateAuthority, name = 'server'): Promise<ServerCertificate> {
  return createCertificate(dir, ca, { name, subject: `/CN=${name}`, usage: 'server', altNames: ['IP:127.0.0.1', 'IP:127.0.0.2', 'DNS:localhost'] });
}

/** A self-signed certificate and key, e.g. for signing registry tokens. */
export async function createSelfSigned(dir: string, name: string): Promise<ServerCertificate> {
  return selfSigned(dir, name, name);
}

/** `<file>.crt` and `<file>.key` in `dir`: a self-signed RSA certificate for `/CN=<commonName>`, valid two days. */
async function selfSigned(dir: string, file: string, commonName: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, `${file}.crt`);
  const keyFile = join(dir, `${file}.key`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-days',
    '2',
    '-subj',
    `/CN=${commonName}`,
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  return { certFile, keyFile };
}
