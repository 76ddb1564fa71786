/**
 * A real CNCF distribution registry (Debian's `docker-registry`) on 127.0.0.1 and a random port,
 * with filesystem storage in a directory of its own and, optionally, TLS, htpasswd Basic auth, or
 * token auth against a token server.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { findExecutable, freePort, run, startDaemon, waitFor, type Daemon } from './process.ts';
import type { ServerCertificate } from './tls.ts';

export type RegistryAuth =
  | { readonly kind: 'basic'; readonly users: Readonly<Record<string, string>> }
  | { readonly kind: 'token'; readonly realm: string; readonly service: string; readonly issuer: string; readonly rootCertFile: string };

export interface RegistryServerOptions {
  readonly auth?: RegistryAuth;
  readonly tls?: ServerCertificate & { readonly caFile: string };
  /** Listen address; 127.0.0.1 unless a test needs a second loopback host. */
  readonly host?: string;
  /** Keep data here (the caller removes it); a temporary directory otherwise. */
  readonly dataDir?: string;
  /** Listen on this port (to restart a registry where its clients expect it); a free one otherwise. */
  readonly port?: number;
  /** Distribution's read-only maintenance mode: reads work, every push is refused. */
  readonly readOnly?: boolean;
  /**
   * A full disk, as the registry meets it: no file it writes may grow past this many bytes (the
   * process's RLIMIT_FSIZE, with SIGXFSZ ignored), so a write fails with EFBIG and the registry
   * answers 500, as it does on ENOSPC. Needs no root, unlike a small filesystem.
   */
  readonly maxFileBytes?: number;
  /** Run inside this network namespace (`ip netns exec`), listening on `host`, which must be its address; `port` is then required. */
  readonly netns?: string;
}

export interface RegistryServer {
  /** `127.0.0.1:PORT`, the registry part of image references. */
  readonly address: string;
  readonly url: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

export function registryBinary(): string {
  const binary = findExecutable('docker-registry') ?? findExecutable('registry');
  if (binary === undefined) {
    throw new Error("no registry binary: install Debian's docker-registry package (apt-get install docker-registry)");
  }
  return binary;
}

export async function startRegistryServer(options: RegistryServerOptions = {}): Promise<RegistryServer> {
  const binary = registryBinary();
  const host = options.host ?? '127.0.0.1';
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'image-clone-registry-'));
  mkdirSync(join(dataDir, 'storage'), { recursive: true });
  if (options.netns !== undefined && options.port === undefined) throw new Error('a registry in a network namespace needs its port given');
  const port = options.port ?? (await freePort(host));
  const address = `${host}:${port}`;

  const config: string[] = [
    'version: 0.1',
    'log: {level: warn, accesslog: {disabled: true}}',
    'storage:',
    `  filesystem: {rootdirectory: ${JSON.stringify(join(dataDir, 'storage'))}}`,
    '  delete: {enabled: true}',
    `  maintenance: {uploadpurging: {enabled: false}, readonly: {enabled: ${options.readOnly === true}}}`,
    'http:',
    `  addr: ${address}`,
    `  secret: ${JSON.stringify(`test-secret-${port}`)}`,
    '  headers: {X-Content-Type-Options: [nosniff]}',
  ];
  if (options.tls) config.push(`  tls: {certificate: ${JSON.stringify(options.tls.certFile)}, key: ${JSON.stringify(options.tls.keyFile)}}`);
  if (options.auth?.kind === 'basic') {
    const htpasswd = join(dataDir, 'htpasswd');
    let lines = '';
    // The password goes through stdin, never a process argument.
    for (const [user, password] of Object.entries(options.auth.users)) lines += await run('htpasswd', ['-iBn', user], password);
    writeFileSync(htpasswd, lines, { mode: 0o600 });
    config.push('auth:', `  htpasswd: {realm: image-clone-test, path: ${JSON.stringify(htpasswd)}}`);
  } else if (options.auth?.kind === 'token') {
    const a = options.auth;
    config.push(
      'auth:',
      '  token:',
      `    realm: ${JSON.stringify(a.realm)}`,
      `    service: ${JSON.stringify(a.service)}`,
      `    issuer: ${JSON.stringify(a.issuer)}`,
      `    rootcertbundle: ${JSON.stringify(a.rootCertFile)}`,
    );
  }
  const configFile = join(dataDir, 'config.yml');
  writeFileSync(configFile, `${config.join('\n')}\n`);

  const daemon: Daemon =
    options.netns !== undefined
      ? startDaemon('ip', ['netns', 'exec', options.netns, binary, 'serve', configFile])
      : options.maxFileBytes === undefined
        ? startDaemon(binary, ['serve', configFile])
        : startDaemon('bash', [
            '-c',
            `trap '' XFSZ; ulimit -f ${Math.max(1, Math.floor(options.maxFileBytes / 1024))}; exec "$0" serve "$1"`,
            binary,
            configFile,
          ]);
  const url = `${options.tls ? 'https' : 'http'}://${address}`;
  const dispatcher = new Agent(options.tls ? { connect: { ca: readFileSync(options.tls.caFile, 'utf8') } } : {});
  try {
    await waitFor(
      `registry on ${address}`,
      async () => {
        const response = await request(`${url}/v2/`, { dispatcher });
        await response.body.dump();
        return response.statusCode === 200 || response.statusCode === 401;
      },
      20_000,
      daemon.child,
    );
  } catch (error) {
    await daemon.stop();
    throw new Error(`${(error as Error).message}\n${daemon.output()}`);
  } finally {
    await dispatcher.close();
  }
  return {
    address,
    url,
    dataDir,
    async stop() {
      await daemon.stop();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
