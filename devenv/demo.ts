/**
 * The demo (`npm run demo`, `scripts/demo.sh`): the whole product on one machine, nothing outside it.
 * A development command of the checkout, not of the image: it needs the scripts, etcd and
 * docker-registry that only a development machine has. Starts a "public"
 * registry seeded with a multi-platform image, an empty backup registry, a real kube-apiserver
 * (built the first time, with progress), and a Git repository laid out like an Argo CD application,
 * on a local Gitea where its build is available (the change arrives as a pull request), else on
 * git's own HTTP server (the change arrives as a commit); creates the Deployment as Argo CD would;
 * runs the copier and the rewriter; shows the backup with its digest and the change with its diff
 * (on Gitea: the pull request's address, title and description, as a reviewer reads them); then
 * cleans everything up, or with `--keep` leaves the servers up to browse until Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Copier } from '../src/copier/copier.ts';
import { BIN_DIR } from './cache.ts';
import { startCluster, type Cluster } from './cluster.ts';
import { giteaAvailable, startGitea } from './gitea.ts';
import { startGitHttpServer } from './git-http-server.ts';
import { createGitOpsObject, installGitOpsCrds } from './gitops-crds.ts';
import { startRegistryServer } from './registry-server.ts';
import { seedImage } from './seed.ts';
import { describeError } from '../src/errors.ts';
import { parseBackupTarget } from '../src/image/backup.ts';
import { createLogger } from '../src/observability/log.ts';
import { createRegistryStack } from '../src/registry/index.ts';
import { DEFAULT_RENDER_TOOLS, Rewriter } from '../src/rewriter/rewriter.ts';

const STEPS = 7;

export interface DemoOptions {
  /** Leave the servers up after the change, until `stopped` resolves (Ctrl-C). */
  readonly keep?: { readonly stopped: Promise<unknown> };
}

export async function demoCommand(say: (line: string) => void, options: DemoOptions = {}): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'image-clone-demo-'));
  const stops: Array<() => Promise<void>> = [];
  const step = (n: number, text: string) => say(`\n[${n}/${STEPS}] ${text}`);
  const quiet = createLogger({ write: () => {} });
  /** What is running, for --keep: one line each. */
  const running: string[] = [];
  try {
    step(1, 'Starting two real registries on 127.0.0.1 (docker-registry): a "public" one and your backup registry');
    const [publicRegistry, backupRegistry] = await Promise.all([startRegistryServer(), startRegistryServer()]);
    stops.push(
      () => publicRegistry.stop(),
      () => backupRegistry.stop(),
    );
    say(`      public registry: ${publicRegistry.url}\n      backup registry: ${backupRegistry.url}`);
    running.push(`public registry ${publicRegistry.url}/v2/_catalog`, `backup registry ${backupRegistry.url}/v2/_catalog`);
    const seeded = await seedImage(
      { url: publicRegistry.url },
      {
        repository: 'demo/web',
        tag: '1.0',
        format: 'oci',
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64', variant: 'v8' },
        ],
        layers: [
          { seed: 'demo-base', size: 4 << 20, shared: true },
          { seed: 'demo-app', size: 2 << 20 },
        ],
      },
    );
    const sourceImage = `${publicRegistry.address}/demo/web:1.0`;
    say(`      seeded ${sourceImage} (linux/amd64, linux/arm64/v8), digest ${seeded.digest}`);

    step(
      2,
      'Starting a real Kubernetes API server with etcd on 127.0.0.1 (the first run builds kube-apiserver from the Go module proxy: several minutes, then cached)',
    );
    const cluster: Cluster = await startCluster({ dir: join(work, 'cluster'), progress: (line) => say(`      ${line}`) });
    stops.push(() => cluster.stop());
    running.push(`the API server: kubectl --kubeconfig ${cluster.kubeconfig} get deployments -A`);
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    await installGitOpsCrds(kc);

    const files = repositoryFiles(sourceImage);
    let repo: DemoRepository;
    // IMAGE_CLONE_DEMO_FORGE=none: plain git over HTTP even where Gitea is built.
    if (giteaAvailable() && process.env.IMAGE_CLONE_DEMO_FORGE !== 'none') {
      step(3, 'Starting a local Gitea (SQLite, 127.0.0.1) with a GitOps repository laid out like an Argo CD application');
      const gitea = await startGitea(join(work, 'gitea'));
      stops.push(() => gitea.stop());
      // A throw-away account of this local Gitea, made for the demo: shown so that the pull request can be browsed.
      running.push(`Gitea ${gitea.url}/ (sign in as ${gitea.user}, password ${gitea.password})`);
      const remote = await gitea.createRepository('apps');
      for (const [path, text] of Object.entries(files)) {
        await gitea.api('POST', `/repos/${gitea.user}/apps/contents/${path}`, {
          content: Buffer.from(text).toString('base64'),
          message: `add ${path}`,
          branch: 'main',
        });
      }
      repo = {
        remote,
        mode: 'pr',
        credentials: { username: gitea.user, password: gitea.password },
        forgeToken: gitea.token,
        show: async (pullRequest) => {
          const number = Number(/\/pulls\/(\d+)$/.exec(pullRequest ?? '')?.[1]);
          const pull = (await gitea.api('GET', `/repos/${gitea.user}/apps/pulls/${number}`)) as { title: string; body: string; html_url: string };
          const diff = await gitea.text(`/repos/${gitea.user}/apps/pulls/${number}.diff`);
          return [`pull request ${pull.html_url}`, `title: ${pull.title}`, '', ...pull.body.split('\n').filter((l) => !l.startsWith('<!--')), diff].join('\n');
        },
      };
    } else {
      step(
        3,
        'Creating a GitOps repository served over HTTP (git http-backend, token auth), laid out like an Argo CD application (build Gitea with scripts/build-gitea.sh to get a pull request instead of a commit)',
      );
      const token = `demo-token-${Math.random().toString(36).slice(2)}`;
      const git = await startGitHttpServer(work, { 'argocd-bot': token });
      stops.push(() => git.stop());
      const bare = createRepository(work, files);
      repo = {
        remote: `${git.url}/apps.git`,
        mode: 'commit',
        credentials: { username: 'argocd-bot', password: token },
        show: async () => execFileSync('git', ['--no-pager', 'show', '--stat', '--patch', '--format=%an <%ae>%n%n%B', 'main'], { cwd: bare, encoding: 'utf8' }),
      };
    }
    const remote = repo.remote;
    say(`      ${remote}: apps/web/deployment.yaml (image ${sourceImage}), apps/web/kustomization.yaml`);

    step(4, "Deploying it as Argo CD would: an Application, and the Deployment with Argo CD's tracking annotation");
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'argocd' } } });
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'shop' } } });
    await createGitOpsObject(kc, 'Application', 'argocd', {
      metadata: { name: 'web' },
      spec: {
        source: { repoURL: remote, path: 'apps/web', targetRevision: 'main' },
        destination: { server: 'https://kubernetes.default.svc', namespace: 'shop' },
      },
      // What Argo CD lists after syncing it: the controller trusts an owner only when it lists the workload.
      status: { resources: [{ group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'shop', name: 'web' }] },
    });
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: 'shop',
      body: {
        metadata: { name: 'web', annotations: { 'argocd.argoproj.io/tracking-id': 'web:apps/Deployment:shop/web' } },
        spec: {
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: sourceImage }] } },
        },
      },
    });
    say('      argocd/Application web → shop/Deployment web');

    step(5, 'The copier: one pass over the cluster, backing up every public image and writing a handoff record');
    const handoffDir = join(work, 'handoff');
    const backupTarget = parseBackupTarget(`${backupRegistry.address}/backup`);
    const copier = new Copier({
      kubeConfig: kc,
      backupTarget,
      handoffDir,
      controllerNamespace: 'image-clone-namespace',
      includeNamespaces: [],
      excludeNamespaces: [],
      registry: { insecureRegistries: [publicRegistry.address, backupRegistry.address] },
      logger: quiet,
    });
    const pass = await copier.runOnce();
    if (pass.failedWorkloads.length > 0) throw new Error(`the copier failed for ${pass.failedWorkloads.join(', ')}`);
    const backupImage = `${backupRegistry.address}/backup/${publicRegistry.address.replace(':', '_')}/demo/web:1.0`;
    const stack = createRegistryStack({ insecureRegistries: [backupRegistry.address] });
    const stored = await stack.client.headManifest(
      { registry: backupRegistry.address, repository: `backup/${publicRegistry.address.replace(':', '_')}/demo/web` },
      '1.0',
    );
    await stack.close();
    if (stored?.digest !== seeded.digest) throw new Error(`the backup has digest ${stored?.digest}, expected ${seeded.digest}`);
    say(
      `      backed up to ${backupImage}\n      backup digest ${stored.digest} ✔ the same as the source: the very same image\n      ${pass.recordsWritten} handoff record written for shop/Deployment/web, owner argocd/Application web`,
    );

    step(
      6,
      repo.mode === 'pr'
        ? 'The rewriter: the record becomes a branch and a pull request for a reviewer (pr mode)'
        : 'The rewriter: the record becomes a commit in the repository Argo CD syncs from (commit mode)',
    );
    const rewriter = new Rewriter({
      handoffDir,
      cacheDir: join(work, 'git-cache'),
      mode: repo.mode,
      author: { name: 'image-clone-controller', email: 'image-clone@demo.local' },
      logger: quiet,
      gitCredentials: repo.credentials,
      ...(repo.forgeToken ? { forge: { token: repo.forgeToken } } : {}),
      // This demo's Git server speaks plain http on 127.0.0.1: the credentials are bound to it alone.
      credentialScopes: [`${new URL(remote).origin}/`],
      // The change is proved by building the application's kustomization before and after it.
      renderTools: { ...DEFAULT_RENDER_TOOLS, kustomize: join(BIN_DIR, 'kustomize') },
    });
    const [outcome] = await rewriter.processPending();
    if (outcome?.result !== 'pushed') throw new Error(`the rewriter did not push: ${outcome?.result} ${outcome?.error ?? ''}`);
    say(`      pushed ${outcome.commit?.slice(0, 12)} to ${outcome.branch} of ${remote}${outcome.pullRequest ? `\n      opened ${outcome.pullRequest}` : ''}`);

    step(7, 'The change Argo CD will apply once merged: only the image value moved, pinned to the same digest');
    for (const line of (await repo.show(outcome.pullRequest)).trimEnd().split('\n')) say(`      ${line}`);
    if (options.keep) {
      say(`\nDone. Everything runs on 127.0.0.1 and stays up until Ctrl-C:\n${running.map((r) => `      ${r}`).join('\n')}`);
      await options.keep.stopped;
      say('\nStopping and removing everything.');
    } else say('\nDone. Everything ran on 127.0.0.1 and is being stopped and removed now.');
    return 0;
  } catch (error) {
    say(`\ndemo failed: ${describeError(error)}`);
    return 1;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

interface DemoRepository {
  readonly remote: string;
  readonly mode: 'pr' | 'commit';
  readonly credentials: { username: string; password: string };
  readonly forgeToken?: string;
  /** The change as a reviewer sees it. */
  show(pullRequest: string | undefined): Promise<string>;
}

/** One Argo CD application directory: a kustomization and a Deployment of `image`. */
function repositoryFiles(image: string): Record<string, string> {
  return {
    'apps/web/kustomization.yaml': 'resources:\n  - deployment.yaml\n',
    'apps/web/deployment.yaml': [
      '# The web front end, synced by Argo CD (Application "web").',
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: web',
      '  namespace: shop',
      'spec:',
      '  replicas: 2',
      '  selector:',
      '    matchLabels: {app: web}',
      '  template:',
      '    metadata:',
      '      labels: {app: web}',
      '    spec:',
      '      containers:',
      '        - name: web',
      `          image: ${image}   # from a public registry`,
      '          ports:',
      '            - containerPort: 8080',
      '',
    ].join('\n'),
  };
}

/** A bare repository `apps.git` under `root` holding `files` on main; returns its path. */
function createRepository(root: string, files: Record<string, string>): string {
  const bare = join(root, 'apps.git');
  const seed = join(root, 'apps-seed');
  const gitIn = (cwd: string, ...args: string[]) =>
    execFileSync('git', args, {
      cwd,
      stdio: 'pipe',
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 'platform team',
        GIT_AUTHOR_EMAIL: 'platform@demo.local',
        GIT_COMMITTER_NAME: 'platform team',
        GIT_COMMITTER_EMAIL: 'platform@demo.local',
      },
    });
  gitIn(root, 'init', '-q', '--bare', '--initial-branch=main', bare);
  gitIn(bare, 'config', 'http.receivepack', 'true');
  gitIn(root, 'clone', '-q', bare, seed);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(seed, dirname(path)), { recursive: true });
    writeFileSync(join(seed, path), text);
  }
  gitIn(seed, 'add', '-A');
  gitIn(seed, 'commit', '-qm', 'web: first deployment');
  gitIn(seed, 'push', '-q', 'origin', 'HEAD:main');
  return bare;
}

// Run when executed directly (node devenv/demo.ts), not when imported.
if (process.argv[1] !== undefined && import.meta.filename === realpathSync(process.argv[1])) {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(
      'Usage: npm run demo [-- --keep]   (or scripts/demo.sh [--keep], which installs and builds what is missing first)\n\nRuns the copier and the rewriter end to end on 127.0.0.1: registries, a kube-apiserver, a Git repository\n(a local Gitea where built: the change arrives as a pull request; else git over HTTP: a commit).\nIMAGE_CLONE_DEMO_FORGE=none forces plain git. --keep leaves the servers up to browse until Ctrl-C.',
    );
  } else {
    const keep = process.argv.includes('--keep');
    // Kept for the whole run: Ctrl-C reaches npm and this process both, and a second signal must not cut the clean-up short.
    const stopped = new Promise((resolve) => {
      process.on('SIGINT', resolve);
      process.on('SIGTERM', resolve);
    });
    process.exitCode = await demoCommand((line) => console.log(line), keep ? { keep: { stopped } } : {});
  }
}
