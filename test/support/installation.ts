/**
 * The whole product installed on loopback the way a cluster runs it, with every server behind a
 * fault proxy of ours: a "public" source registry, the backup registry (Basic auth), a real
 * kube-apiserver with etcd (reached over TLS through the proxy), a Git server (git http-backend,
 * token auth) holding the GitOps repository, Argo CD Applications owning the workloads, and the
 * copier and the rewriter as separate processes (`image-clone copier|rewriter`, as the Pod runs
 * them) that a supervisor restarts when they die, like the kubelet would.
 *
 * Used by the faults and kill -9 end-to-end tests and by the soak (test/soak/soak.ts). `audit()`
 * states what a run must end with: every image backed up with its digest, no tag in the backup
 * registry in front of a missing blob or child, every workload's change in Git exactly once, the
 * ledger drained. All credentials are canaries (test/support/canaries.ts).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { request } from 'undici';
import { startCluster, type Cluster } from '../../devenv/cluster.ts';
import { startGitea, type Gitea } from '../../devenv/gitea.ts';
import { startGitHttpServer, type GitHttpServer } from '../../devenv/git-http-server.ts';
import { createGitOpsObject, installGitOpsCrds } from '../../devenv/gitops-crds.ts';
import { freePort } from '../../devenv/process.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { manifestDigestAt, seedImage } from '../../devenv/seed.ts';
import { startTcpFaultProxy, type TcpFaultProxy } from '../../devenv/tcp-fault-proxy.ts';
import { Ledger } from '../../src/handoff/ledger.ts';
import { backupReference, parseBackupTarget } from '../../src/image/backup.ts';
import { formatReference, parseReference } from '../../src/image/reference.ts';
import { dockerConfigJson } from '../../devenv/docker-config.ts';
import { CANARIES, plantCanary } from './canaries.ts';

const CLI = resolve(import.meta.dirname, '../../src/cli.ts');
const GIT_USER = 'argocd-bot';
const REGISTRY_USER = 'pusher';

export interface InstallationOptions {
  readonly dir: string;
  readonly images: number;
  readonly workloads: number;
  readonly namespaces?: number;
  readonly faultRate: number;
  readonly seed: number;
  /** Rewriter debounce; short in tests so batches are small and crashes land between them. */
  readonly debounce?: string;
  /** Size of each image's own layer (default 48 KiB; all share a 192 KiB base). */
  readonly layerBytes?: number;
  /** How many of the workloads are left for deploy() (their manifests are in Git from the start). */
  readonly deferWorkloads?: number;
  /** Extra arguments for `image-clone copier`. */
  readonly copierArgs?: readonly string[];
  /**
   * Where the GitOps repository lives: git's HTTP server, changed by commits to main (`commit`, the
   * default), or a real Gitea, changed through one pull request (`pr`; needs Gitea built).
   */
  readonly git?: 'commit' | 'pr';
  /** Start the copier and rewriter at once (default), or leave it to startControllers(). */
  readonly startControllers?: boolean;
  readonly progress?: (line: string) => void;
}

export interface SeededSource {
  readonly reference: string;
  readonly repository: string;
  readonly digest: string;
  readonly backup: string;
}

export interface Workload {
  readonly namespace: string;
  readonly name: string;
  image: number;
  readonly file: string;
}

/** A child process restarted after it exits (a crash, a kill -9), until stop(). */
export class Supervised {
  readonly role: string;
  restarts = 0;
  /** When the current process started (ms since the epoch). */
  startedAt = 0;
  #child: ChildProcess | undefined;
  #stopping = false;
  readonly #args: readonly string[];
  readonly #logFile: string;
  readonly #env: NodeJS.ProcessEnv;

  constructor(role: string, args: readonly string[], logFile: string, env: NodeJS.ProcessEnv = {}) {
    this.role = role;
    this.#args = args;
    this.#logFile = logFile;
    this.#env = env;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Whether a process is up now (not between a death and the restart). */
  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  start(): void {
    const fd = openSync(this.#logFile, 'a');
    const child = spawn(process.execPath, [CLI, this.role, ...this.#args], { stdio: ['ignore', fd, fd], env: { ...process.env, ...this.#env } });
    closeSync(fd);
    this.#child = child;
    this.startedAt = Date.now();
    child.once('exit', () => {
      if (this.#stopping || this.#child !== child) return;
      this.restarts++;
      setTimeout(() => !this.#stopping && this.start(), 500).unref();
    });
  }

  /** SIGKILL: no handler runs, nothing is flushed; the supervisor starts it again. */
  kill9(): void {
    this.#child?.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  logText(): string {
    return existsSync(this.#logFile) ? readFileSync(this.#logFile, 'utf8') : '';
  }
}

export interface Installation {
  readonly dir: string;
  readonly cluster: Cluster;
  readonly kubeConfig: KubeConfig;
  readonly proxies: { readonly source: TcpFaultProxy; readonly backup: TcpFaultProxy; readonly api: TcpFaultProxy; readonly git: TcpFaultProxy };
  readonly images: readonly SeededSource[];
  readonly workloads: Workload[];
  readonly copier: Supervised;
  readonly rewriter: Supervised;
  readonly ledger: Ledger;
  readonly bareRepo: string;
  /** The platform team's clone of the repository (pushes straight to the bare repository). */
  readonly platformClone: string;
  readonly metricsUrls: { readonly copier: string; readonly rewriter: string };
  /**
   * What an operator puts in the controller's Secrets: the backup registry's server and robot, and
   * the Git user with a token that may push and (pr mode, on Gitea) open pull requests.
   */
  readonly credentials: {
    readonly registry: { readonly server: string; readonly username: string; readonly password: string };
    readonly git: { readonly username: string; readonly token: string };
  };
  /** Creates a workload's Deployment, as Argo CD would on a sync (for deferred workloads). */
  deploy(w: Workload): Promise<void>;
  /** pr mode: every pull request on the repository, as the forge returns them. */
  readonly pullRequests: (() => Promise<unknown[]>) | undefined;
  /** Starts the copier and rewriter processes (unless `startControllers` was true). */
  startControllers(): void;
  /** Restarts the real backup registry on its port: writable, read-only (pushes refused), or full (no file may grow past 100 KiB). */
  restartBackupRegistry(state: 'writable' | 'read-only' | 'full'): Promise<void>;
  /**
   * Everything a finished run must hold; an empty list when it does. `exactlyOnce`: each manifest
   * changed by exactly one commit after the first (true unless the platform team edits it too).
   */
  audit(options?: { exactlyOnce?: boolean }): Promise<string[]>;
  /** Polls audit() until it is clean; throws with the last problems after timeoutMs. */
  converge(timeoutMs: number, options?: { exactlyOnce?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/** git in `cwd`; a trailing object is extra environment (credentials go there, never in arguments). */
export const git = (cwd: string, ...args: Array<string | Record<string, string>>) => {
  const env = typeof args.at(-1) === 'object' ? (args.pop() as Record<string, string>) : {};
  return execFileSync('git', args as string[], {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'platform',
      GIT_AUTHOR_EMAIL: 'p@example.com',
      GIT_COMMITTER_NAME: 'platform',
      GIT_COMMITTER_EMAIL: 'p@example.com',
      ...env,
    },
  }).trim();
};

export function deploymentYaml(w: Pick<Workload, 'namespace' | 'name'>, image: string): string {
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    `  name: ${w.name}`,
    `  namespace: ${w.namespace}`,
    'spec:',
    '  selector:',
    `    matchLabels: {app: ${w.name}}`,
    '  template:',
    '    metadata:',
    `      labels: {app: ${w.name}}`,
    '    spec:',
    '      containers:',
    `        - name: main`,
    `          image: ${image}`,
    '',
  ].join('\n');
}

export async function startInstallation(options: InstallationOptions): Promise<Installation> {
  const say = options.progress ?? (() => {});
  const dir = options.dir;
  mkdirSync(dir, { recursive: true });
  const stops: Array<() => Promise<unknown>> = [];
  try {
    say('registries');
    const backupData = join(dir, 'backup-registry');
    const backupAuth = { kind: 'basic' as const, users: { [REGISTRY_USER]: CANARIES.registryPassword } };
    let backup: RegistryServer;
    const source = await startRegistryServer();
    backup = await startRegistryServer({ dataDir: backupData, auth: backupAuth });
    stops.push(
      () => source.stop(),
      () => backup.stop(),
    );
    const backupPort = Number(backup.address.split(':')[1]);
    const proxy = (port: number, seed: number) =>
      startTcpFaultProxy({ upstream: { host: '127.0.0.1', port }, faultRate: options.faultRate, seed, stallMs: 1_500 });
    const sourceProxy = await proxy(Number(source.address.split(':')[1]), options.seed);
    const backupProxy = await proxy(backupPort, options.seed + 1);
    stops.push(
      () => sourceProxy.stop(),
      () => backupProxy.stop(),
    );

    say(`seeding ${options.images} images`);
    const backupTarget = parseBackupTarget(`${backupProxy.address}/backup`);
    const images: SeededSource[] = [];
    for (let i = 0; i < options.images; i++) {
      const repository = `team/app-${i}`;
      const seeded = await seedImage(
        { url: source.url },
        {
          repository,
          tag: '1.0',
          format: i % 3 === 0 ? 'docker' : 'oci',
          ...(i % 5 === 0
            ? {
                platforms: [
                  { os: 'linux', architecture: 'amd64' },
                  { os: 'linux', architecture: 'arm64', variant: 'v8' },
                ],
              }
            : {}),
          layers: [
            { seed: 'shared-base', size: 192 * 1024, shared: true },
            { seed: `app-${i}`, size: options.layerBytes ?? 48 * 1024 },
          ],
        },
      );
      const reference = `${sourceProxy.address}/${repository}:1.0`;
      images.push({ reference, repository, digest: seeded.digest, backup: formatReference(backupReference(parseReference(reference), backupTarget)) });
    }

    say('cluster');
    const cluster = await startCluster({ dir: join(dir, 'cluster'), progress: (line) => say(`  ${line}`) });
    stops.push(() => cluster.stop());
    const pki = join(cluster.dir, 'pki');
    const apiPort = Number(new URL(cluster.server).port);
    const apiProxy = await startTcpFaultProxy({
      upstream: {
        host: '127.0.0.1',
        port: apiPort,
        tls: {
          ca: readFileSync(cluster.caFile, 'utf8'),
          cert: readFileSync(join(pki, 'admin.crt'), 'utf8'),
          key: readFileSync(join(pki, 'admin.key'), 'utf8'),
        },
      },
      tls: { cert: readFileSync(join(pki, 'apiserver.crt'), 'utf8'), key: readFileSync(join(pki, 'apiserver.key'), 'utf8') },
      faultRate: options.faultRate,
      seed: options.seed + 2,
      stallMs: 1_500,
    });
    stops.push(() => apiProxy.stop());
    const proxiedKubeconfig = join(dir, 'kubeconfig-through-proxy');
    writeFileSync(proxiedKubeconfig, readFileSync(cluster.kubeconfig, 'utf8').replace(cluster.server, apiProxy.url), { mode: 0o600 });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(cluster.kubeconfig);
    await installGitOpsCrds(kubeConfig);

    const mode = options.git ?? 'commit';
    say(mode === 'pr' ? 'Gitea' : 'git server');
    const gitRoot = join(dir, 'git');
    mkdirSync(gitRoot, { recursive: true });
    let gitPort: number;
    let directRepoURL: string;
    let gitea: Gitea | undefined;
    let gitUser = GIT_USER;
    let gitPassword: string = CANARIES.gitToken;
    if (mode === 'pr') {
      gitea = await startGitea(join(dir, 'gitea'));
      stops.push(() => gitea!.stop());
      plantCanary(gitea.token);
      plantCanary(gitea.password);
      ({ user: gitUser, password: gitPassword } = gitea);
      directRepoURL = await gitea.createRepository('apps');
      gitPort = Number(new URL(gitea.url).port);
    } else {
      const gitServer: GitHttpServer = await startGitHttpServer(gitRoot, { [GIT_USER]: CANARIES.gitToken });
      stops.push(() => gitServer.stop());
      gitPort = Number(new URL(gitServer.url).port);
      directRepoURL = join(gitRoot, 'apps.git');
    }
    // Git sees few requests (one fetch and push per batch), so it is faulted more often, or a run
    // could pass without a Git fault at all (11 requests at 10%: a third of runs).
    const gitProxy = await startTcpFaultProxy({
      upstream: { host: '127.0.0.1', port: gitPort },
      faultRate: options.faultRate > 0 ? Math.max(options.faultRate, 0.3) : 0,
      seed: options.seed + 3,
      stallMs: 1_500,
    });
    stops.push(() => gitProxy.stop());
    const repoURL = mode === 'pr' ? directRepoURL.replace(new URL(gitea!.url).origin, gitProxy.url) : `${gitProxy.url}/apps.git`;
    // The test's own git talks to the server directly, with credentials in its environment (never
    // its arguments, which the canary scan reads).
    const asPlatform = {
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.extraHeader',
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`${gitUser}:${gitPassword}`).toString('base64')}`,
    };

    say(`${options.workloads} workloads`);
    const namespaces = options.namespaces ?? 10;
    const workloads: Workload[] = [];
    for (let i = 0; i < options.workloads; i++) {
      const namespace = `team-${i % namespaces}`;
      workloads.push({ namespace, name: `web-${i}`, image: i % images.length, file: `apps/${namespace}/web-${i}.yaml` });
    }
    // Locally: the bare repository itself (commit mode), or a mirror fetched from Gitea (pr mode).
    const bareRepo = join(gitRoot, 'apps.git');
    const seedDir = join(dir, 'apps-seed');
    if (mode === 'commit') {
      git(dir, 'init', '-q', '--bare', '--initial-branch=main', bareRepo);
      git(bareRepo, 'config', 'http.receivepack', 'true');
      git(bareRepo, 'config', 'core.logAllRefUpdates', 'always');
    }
    git(dir, 'clone', '-q', directRepoURL, seedDir, asPlatform);
    for (const w of workloads) {
      mkdirSync(join(seedDir, 'apps', w.namespace), { recursive: true });
      writeFileSync(join(seedDir, w.file), deploymentYaml(w, images[w.image]!.reference));
    }
    git(seedDir, 'add', '-A');
    git(seedDir, 'commit', '-qm', "the platform team's workloads");
    git(seedDir, 'push', '-q', 'origin', 'HEAD:main', asPlatform);
    const seededCommit = git(seedDir, 'rev-parse', 'HEAD');
    if (mode === 'pr') git(dir, 'init', '-q', '--bare', bareRepo);

    const core = kubeConfig.makeApiClient(CoreV1Api);
    const apps = kubeConfig.makeApiClient(AppsV1Api);
    const _custom = kubeConfig.makeApiClient(CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: 'argocd' } } });
    await core.createNamespace({ body: { metadata: { name: 'image-clone-namespace' } } });
    for (let n = 0; n < Math.min(namespaces, workloads.length); n++) {
      const namespace = `team-${n}`;
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      await createGitOpsObject(kubeConfig, 'Application', 'argocd', {
        metadata: { name: namespace },
        spec: { source: { repoURL, path: `apps/${namespace}`, targetRevision: 'main' }, destination: { server: 'https://kubernetes.default.svc', namespace } },
        // What Argo CD lists after a sync: every workload of the namespace in Git (the deferred ones too).
        status: {
          resources: workloads
            .filter((w) => w.namespace === namespace)
            .map((w) => ({ group: 'apps', version: 'v1', kind: 'Deployment', namespace, name: w.name })),
        },
      });
    }
    const deploy = async (w: Workload) => {
      await apps.createNamespacedDeployment({ namespace: w.namespace, body: deploymentObject(w, images[w.image]!.reference) });
    };
    // The last `deferWorkloads` are in Git only, until the test deploys them (work arriving mid-run).
    for (const w of workloads.slice(0, workloads.length - (options.deferWorkloads ?? 0))) await deploy(w);

    say('copier and rewriter');
    const secrets = join(dir, 'secrets');
    mkdirSync(secrets, { recursive: true, mode: 0o700 });
    writeFileSync(join(secrets, 'config.json'), dockerConfigJson({ [backupProxy.address]: { username: REGISTRY_USER, password: CANARIES.registryPassword } }), {
      mode: 0o600,
    });
    writeFileSync(join(secrets, 'git-password'), gitPassword, { mode: 0o600 });
    if (gitea) writeFileSync(join(secrets, 'forge-token'), gitea.token, { mode: 0o600 });
    const handoffDir = join(dir, 'handoff');
    const ledger = new Ledger(handoffDir);
    const [copierPort, rewriterPort] = [await freePort(), await freePort()];
    const logs = join(dir, 'logs');
    mkdirSync(logs, { recursive: true });
    const copier = new Supervised(
      'copier',
      [
        '--kubeconfig',
        proxiedKubeconfig,
        '--backup-registry',
        `${backupProxy.address}/backup`,
        '--handoff-dir',
        handoffDir,
        '--insecure-registry',
        sourceProxy.address,
        '--insecure-registry',
        backupProxy.address,
        '--auth-file',
        join(secrets, 'config.json'),
        // The backup registry wants credentials to pull, and the nodes are taken to hold them.
        '--controller-namespace',
        'image-clone-namespace',
        '--health-address',
        `127.0.0.1:${copierPort}`,
        '--backup-pull',
        'node',
        ...(options.copierArgs ?? []),
      ],
      join(logs, 'copier.log'),
    );
    const rewriter = new Supervised(
      'rewriter',
      [
        '--handoff-dir',
        handoffDir,
        '--cache-dir',
        join(dir, 'rewriter-cache'),
        '--git-mode',
        mode,
        '--git-username',
        gitUser,
        ...(gitea ? ['--forge-token-file', join(secrets, 'forge-token')] : []),
        '--git-password-file',
        join(secrets, 'git-password'),
        // The credentials go to this lab's plain-http Git server (through its fault proxy) and nowhere else.
        '--credentials-for',
        `${gitProxy.url}/`,
        '--debounce',
        options.debounce ?? '1s',
        '--health-address',
        `127.0.0.1:${rewriterPort}`,
      ],
      join(logs, 'rewriter.log'),
    );
    stops.push(
      () => copier.stop(),
      () => rewriter.stop(),
    );

    const proxies = { source: sourceProxy, backup: backupProxy, api: apiProxy, git: gitProxy };
    const registryAuth = `Basic ${Buffer.from(`${REGISTRY_USER}:${CANARIES.registryPassword}`).toString('base64')}`;
    const installation: Installation = {
      dir,
      cluster,
      kubeConfig,
      proxies,
      images,
      workloads,
      copier,
      rewriter,
      ledger,
      bareRepo,
      platformClone: seedDir,
      metricsUrls: { copier: `http://127.0.0.1:${copierPort}/metrics`, rewriter: `http://127.0.0.1:${rewriterPort}/metrics` },
      credentials: {
        registry: { server: backupProxy.address, username: REGISTRY_USER, password: CANARIES.registryPassword },
        git: { username: gitUser, token: gitea?.token ?? gitPassword },
      },
      deploy,
      pullRequests: gitea ? async () => (await gitea!.api('GET', `/repos/${gitea!.user}/apps/pulls?state=all`)) as unknown[] : undefined,
      startControllers() {
        copier.start();
        rewriter.start();
      },
      async restartBackupRegistry(state) {
        await backup.stop();
        backup = await startRegistryServer({
          dataDir: backupData,
          auth: backupAuth,
          port: backupPort,
          readOnly: state === 'read-only',
          ...(state === 'full' ? { maxFileBytes: 100 * 1024 } : {}),
        });
      },
      audit: (auditOptions) =>
        audit(installation, { url: `http://${backup.address}`, authorization: registryAuth }, auditOptions?.exactlyOnce ?? true, {
          seededCommit,
          // pr mode: fetch Gitea's branches into the local mirror; the change is the pull request's.
          ref: () => {
            if (!gitea) return 'main';
            git(bareRepo, 'fetch', '-q', '--prune', directRepoURL, '+refs/heads/*:refs/heads/*', asPlatform);
            return git(bareRepo, 'for-each-ref', '--format=%(refname)', 'refs/heads/image-clone/').split('\n').filter(Boolean)[0] ?? 'main';
          },
          pulls: gitea ? async () => (await installation.pullRequests!()) as Array<{ number: number; state: string }> : undefined,
        }),
      async converge(timeoutMs, auditOptions) {
        const deadline = Date.now() + timeoutMs;
        let problems: string[] = [];
        while (Date.now() < deadline) {
          problems = await installation.audit(auditOptions);
          if (problems.length === 0) return;
          await sleep(2_000);
        }
        throw new Error(`not converged after ${timeoutMs} ms: ${problems.length} problems, e.g.\n${problems.slice(0, 10).join('\n')}`);
      },
      async stop() {
        for (const stop of stops.reverse()) await stop().catch(() => undefined);
      },
    };
    if (options.startControllers !== false) installation.startControllers();
    return installation;
  } catch (error) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw error;
  }
}

export function deploymentObject(w: Pick<Workload, 'namespace' | 'name'>, image: string) {
  return {
    metadata: {
      name: w.name,
      namespace: w.namespace,
      annotations: { 'argocd.argoproj.io/tracking-id': `${w.namespace}:apps/Deployment:${w.namespace}/${w.name}` },
    },
    spec: { selector: { matchLabels: { app: w.name } }, template: { metadata: { labels: { app: w.name } }, spec: { containers: [{ name: 'main', image }] } } },
  };
}

interface RegistryView {
  readonly url: string;
  readonly authorization: string;
}

async function getJson(view: RegistryView, path: string, accept = 'application/json'): Promise<{ status: number; body: unknown; digest: string | undefined }> {
  const response = await request(`${view.url}${path}`, { headers: { authorization: view.authorization, accept } });
  const text = await response.body.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.statusCode, body, digest: response.headers['docker-content-digest'] as string | undefined };
}

const ANY_MANIFEST =
  'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

/**
 * Every tag of every repository in the backup registry, walked down to its blobs: a tag must never
 * stand in front of a missing child manifest, config or layer (a half-pushed image).
 */
export async function halfPushedImages(view: RegistryView): Promise<string[]> {
  const problems: string[] = [];
  const catalog = (await getJson(view, '/v2/_catalog?n=10000')).body as { repositories?: string[] } | undefined;
  for (const repository of catalog?.repositories ?? []) {
    const tags = ((await getJson(view, `/v2/${repository}/tags/list`)).body as { tags?: string[] | null } | undefined)?.tags ?? [];
    for (const tag of tags) {
      const walk = async (reference: string): Promise<void> => {
        const { status, body } = await getJson(view, `/v2/${repository}/manifests/${reference}`, ANY_MANIFEST);
        if (status !== 200) return void problems.push(`${repository}:${tag}: manifest ${reference} answers ${status}`);
        const manifest = body as { manifests?: Array<{ digest: string }>; config?: { digest: string }; layers?: Array<{ digest: string }> };
        for (const child of manifest.manifests ?? []) await walk(child.digest);
        for (const blob of [manifest.config, ...(manifest.layers ?? [])]) {
          if (!blob) continue;
          const head = await request(`${view.url}/v2/${repository}/blobs/${blob.digest}`, { method: 'HEAD', headers: { authorization: view.authorization } });
          await head.body.dump();
          if (head.statusCode !== 200) problems.push(`${repository}:${tag}: blob ${blob.digest} answers ${head.statusCode}`);
        }
      };
      await walk(tag);
    }
  }
  return problems;
}

interface GitView {
  /** The commit the platform team's manifests were pushed in; every change comes after it. */
  readonly seededCommit: string;
  /** The ref that must hold every change (main, or the pull request's branch), fetched now. */
  ref(): string;
  /** pr mode: every pull request of the repository. */
  readonly pulls: (() => Promise<Array<{ number: number; state: string }>>) | undefined;
}

async function audit(installation: Installation, view: RegistryView, exactlyOnce: boolean, gitView: GitView): Promise<string[]> {
  const problems: string[] = [];
  // 1. Every image in use is backed up with the source's digest.
  const inUse = new Set(installation.workloads.map((w) => w.image));
  for (const i of inUse) {
    const image = installation.images[i]!;
    const backup = parseReference(image.backup);
    const digest = await manifestDigestAt(view, backup.repository, backup.tag ?? '1.0');
    if (digest !== image.digest) problems.push(`${image.backup}: digest ${digest ?? 'missing'}, expected ${image.digest}`);
  }
  if (problems.length > 0) return problems;
  problems.push(...(await halfPushedImages(view)));
  // 2. The ledger is drained.
  const pending = installation.ledger.pendingIds();
  if (pending.length > 0) return [...problems, `${pending.length} handoff records pending`];
  // 3. Exactly one pull request (pr mode).
  if (gitView.pulls) {
    const pulls = await gitView.pulls();
    if (pulls.length !== 1 || pulls[0]!.state !== 'open')
      problems.push(`${pulls.length} pull requests (${pulls.map((p) => `#${p.number} ${p.state}`).join(', ')}), expected exactly one, open`);
  }
  // 4. Each workload's manifest points at its backup, and reached it in exactly one commit.
  const ref = gitView.ref();
  for (const w of installation.workloads) {
    const image = installation.images[w.image]!;
    const expected = `${image.backup}@${image.digest}`;
    let text = '';
    try {
      text = git(installation.bareRepo, 'show', `${ref}:${w.file}`);
    } catch {
      problems.push(`${w.file}: missing on ${ref}`);
      continue;
    }
    if (!text.includes(`image: ${expected}`)) problems.push(`${w.file}: image on ${ref} is not ${expected}`);
    if (!exactlyOnce) continue;
    const commits = git(installation.bareRepo, 'log', '--format=%H', `${gitView.seededCommit}..${ref}`, '--', w.file).split('\n').filter(Boolean).length;
    if (commits !== 1) problems.push(`${w.file}: changed by ${commits} commits, expected exactly 1`);
  }
  return problems;
}

/** Every line the controller processes wrote, for the canary scan. */
export function controllerLogs(installation: Installation): string {
  return installation.copier.logText() + installation.rewriter.logText();
}

export function handoffFiles(installation: Installation): string {
  return readdirSync(installation.ledger.dir)
    .map((n) => readFileSync(join(installation.ledger.dir, n), 'utf8'))
    .join('\n');
}
