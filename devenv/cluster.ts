/**
 * A real Kubernetes control plane on loopback for end-to-end tests, the demo and people: etcd
 * (Debian's etcd-server) and kube-apiserver (built once from the Go module proxy by
 * scripts/build-kube-apiserver.sh and cached), with RBAC authorization on, certificates from a
 * throw-away CA, and a cluster-admin kubeconfig. No kubelet: objects are stored, pods never run.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { findExecutable, freePort, run, waitFor } from './process.ts';
import { createCertificate, createCertificateAuthority } from './tls.ts';

export const DEFAULT_KUBE_VERSION = 'v1.34.4';
const REPO_ROOT = resolve(import.meta.dirname, '..');
const BUILD_SCRIPT = join(REPO_ROOT, 'scripts/build-kube-apiserver.sh');

export interface ClusterOptions {
  /** Holds data, certificates, logs and the kubeconfig; created if missing. */
  readonly dir: string;
  readonly kubeVersion?: string;
  /** Progress lines (a first build takes minutes). */
  readonly progress?: (line: string) => void;
  /** Leave the servers running after this process exits (`npm run cluster -- up`). */
  readonly detached?: boolean;
}

export interface Cluster {
  readonly dir: string;
  readonly kubeconfig: string;
  /** `https://127.0.0.1:PORT` */
  readonly server: string;
  readonly caFile: string;
  /** Issues a client certificate for `user` in `groups` and writes a kubeconfig for it. */
  kubeconfigFor(user: string, groups?: readonly string[]): Promise<string>;
  /** Stops and starts kube-apiserver on the same port and data (cuts every watch). */
  restartApiServer(): Promise<void>;
  stop(): Promise<void>;
}

interface ClusterState {
  etcdPid: number;
  apiServerPid: number;
  apiServerArgs: string[];
  apiServerBinary: string;
  server: string;
}

/** The kube-apiserver binary, built into the cache the first time (with progress). */
export async function ensureKubeApiServer(version = DEFAULT_KUBE_VERSION, progress: (line: string) => void = () => {}): Promise<string> {
  return new Promise((resolvePath, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT], { env: { ...process.env, KUBE_VERSION: version }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let tail = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      const text = c.toString();
      tail = (tail + text).slice(-4000);
      for (const line of text.split('\n')) if (line.startsWith('>>')) progress(line.slice(3));
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const path = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && existsSync(path)) resolvePath(path);
      else reject(new Error(`building kube-apiserver ${version} failed (exit ${code}):\n${tail}`));
    });
  });
}

function etcdBinary(): string {
  const path = findExecutable('etcd');
  if (!path) throw new Error("etcd is missing: install Debian's etcd-server package (apt-get install etcd-server)");
  return path;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const say = options.progress ?? (() => {});
  const dir = resolve(options.dir);
  const pki = join(dir, 'pki');
  mkdirSync(pki, { recursive: true });
  const apiServerBinary = await ensureKubeApiServer(options.kubeVersion, say);
  const etcd = etcdBinary();

  say('generating certificates');
  const ca = await createCertificateAuthority(pki, 'image-clone test cluster CA');
  const serving = await createCertificate(pki, ca, {
    name: 'apiserver',
    subject: '/CN=kube-apiserver',
    usage: 'server',
    altNames: ['IP:127.0.0.1', 'IP:10.0.0.1', 'DNS:localhost', 'DNS:kubernetes.default.svc'],
  });
  const saKey = join(pki, 'sa.key');
  const saPub = join(pki, 'sa.pub');
  await run('openssl', ['genrsa', '-out', saKey, '2048']);
  await run('openssl', ['rsa', '-in', saKey, '-pubout', '-out', saPub]);

  const [etcdClientPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const spawnLogged = (binary: string, args: string[], log: string) => {
    const fd = openSync(join(dir, log), 'a');
    const child = spawn(binary, args, { stdio: ['ignore', fd, fd], detached: options.detached ?? false });
    closeSync(fd);
    if (options.detached) child.unref();
    return child;
  };

  say(`starting etcd on 127.0.0.1:${etcdClientPort}`);
  const etcdChild = spawnLogged(
    etcd,
    [
      '--name',
      'test',
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      `http://127.0.0.1:${etcdClientPort}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${etcdClientPort}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${etcdPeerPort}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${etcdPeerPort}`,
      '--initial-cluster',
      `test=http://127.0.0.1:${etcdPeerPort}`,
      '--log-level',
      'warn',
    ],
    'etcd.log',
  );

  await waitFor(
    `etcd on 127.0.0.1:${etcdClientPort}`,
    async () => {
      const response = await request(`http://127.0.0.1:${etcdClientPort}/health`);
      return (await response.body.text()).includes('true');
    },
    30_000,
    etcdChild,
  );

  const server = `https://127.0.0.1:${apiPort}`;
  const apiServerArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdClientPort}`,
    `--secure-port=${apiPort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--tls-cert-file=${serving.certFile}`,
    `--tls-private-key-file=${serving.keyFile}`,
    `--client-ca-file=${ca.certFile}`,
    '--authorization-mode=RBAC',
    '--service-cluster-ip-range=10.0.0.0/24',
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    '--service-account-issuer=https://kubernetes.default.svc',
    `--service-account-key-file=${saPub}`,
    `--service-account-signing-key-file=${saKey}`,
    '--endpoint-reconciler-type=none',
    `--cert-dir=${join(dir, 'apiserver-certs')}`,
  ];

  const admin = await createCertificate(pki, ca, { name: 'admin', subject: '/CN=admin/O=system:masters', usage: 'client' });
  const dispatcher = new Agent({
    connect: { ca: readFileSync(ca.certFile, 'utf8'), cert: readFileSync(admin.certFile, 'utf8'), key: readFileSync(admin.keyFile, 'utf8') },
  });
  const state: ClusterState = { etcdPid: etcdChild.pid ?? -1, apiServerPid: -1, apiServerArgs, apiServerBinary, server };

  const startApiServer = async () => {
    say(`starting kube-apiserver on ${server}`);
    const child = spawnLogged(apiServerBinary, apiServerArgs, 'kube-apiserver.log');
    state.apiServerPid = child.pid ?? -1;
    writeFileSync(join(dir, 'cluster.json'), JSON.stringify(state, null, 2));
    try {
      await waitFor(
        `kube-apiserver on ${server}`,
        async () => {
          const response = await request(`${server}/readyz`, { dispatcher });
          await response.body.dump();
          return response.statusCode === 200;
        },
        90_000,
      );
    } catch (error) {
      const log = existsSync(join(dir, 'kube-apiserver.log')) ? readFileSync(join(dir, 'kube-apiserver.log'), 'utf8').slice(-3000) : '';
      throw new Error(`${(error as Error).message}\n--- kube-apiserver.log (tail) ---\n${log}`);
    }
  };
  try {
    await startApiServer();
  } catch (error) {
    await stopClusterDir(dir, { keepData: true });
    await dispatcher.close();
    throw error;
  }

  const writeKubeconfig = (file: string, user: string, cert: { certFile: string; keyFile: string }) => {
    const b64 = (path: string) => readFileSync(path).toString('base64');
    writeFileSync(
      file,
      JSON.stringify(
        {
          apiVersion: 'v1',
          kind: 'Config',
          'current-context': 'test',
          clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': b64(ca.certFile) } }],
          users: [{ name: user, user: { 'client-certificate-data': b64(cert.certFile), 'client-key-data': b64(cert.keyFile) } }],
          contexts: [{ name: 'test', context: { cluster: 'test', user } }],
        },
        null,
        2,
      ),
      { mode: 0o600 },
    );
    return file;
  };
  const kubeconfig = writeKubeconfig(join(dir, 'kubeconfig'), 'admin', admin);
  say(`ready: ${server} (kubeconfig: ${kubeconfig})`);

  return {
    dir,
    kubeconfig,
    server,
    caFile: ca.certFile,
    async kubeconfigFor(user, groups = []) {
      const name = `user-${user.replace(/[^a-zA-Z0-9-]/g, '-')}`;
      const cert = await createCertificate(pki, ca, { name, subject: `/CN=${user}${groups.map((g) => `/O=${g}`).join('')}`, usage: 'client' });
      return writeKubeconfig(join(dir, `${name}.kubeconfig`), user, cert);
    },
    async restartApiServer() {
      await killAndWait(state.apiServerPid);
      await startApiServer();
    },
    async stop() {
      await dispatcher.close();
      await stopClusterDir(dir);
    },
  };
}

/** Stops the servers recorded in DIR/cluster.json and removes DIR (unless keepData). */
export async function stopClusterDir(dir: string, options: { keepData?: boolean } = {}): Promise<void> {
  const stateFile = join(dir, 'cluster.json');
  if (existsSync(stateFile)) {
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as ClusterState;
    await killAndWait(state.apiServerPid);
    await killAndWait(state.etcdPid);
  }
  if (!options.keepData) rmSync(dir, { recursive: true, force: true });
}

async function killAndWait(pid: number): Promise<void> {
  if (pid <= 0 || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 40 && alive(pid); i++) await sleep(50);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
