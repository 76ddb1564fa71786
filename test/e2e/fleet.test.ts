/**
 * Two clusters, one repository: two real kube-apiservers, each with its own installation (copier and
 * rewriter as processes, `--cluster-name east|west`), and one real Gitea repository whose two
 * overlays (`clusters/east`, `clusters/west`) share a base. Both installations run at once, and each
 * of their four processes is killed with SIGKILL once while they do. The end: one pull request
 * whose rows name each cluster, every edit present and made once (the shared base left as it is,
 * each overlay moving its own build), each overlay rendering onto the backups, and no push forced:
 * every head the branch had is an ancestor of its last.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../../devenv/cluster.ts';
import { startGitea, type Gitea } from '../../devenv/gitea.ts';
import { BIN_DIR } from '../../devenv/cache.ts';
import { createGitOpsObject, installGitOpsCrds } from '../../devenv/gitops-crds.ts';
import { freePort } from '../../devenv/process.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { seedImage } from '../../devenv/seed.ts';
import { Ledger } from '../../src/handoff/ledger.ts';
import { rowsFromDescription } from '../../src/rewriter/forges/description.ts';
import { plantCanary } from '../support/canaries.ts';
import { deploymentObject, deploymentYaml, Supervised } from '../support/installation.ts';

interface Installation {
  readonly name: string;
  readonly cluster: Cluster;
  readonly copier: Supervised;
  readonly rewriter: Supervised;
  readonly ledger: Ledger;
}

interface Pull {
  readonly number: number;
  readonly state: string;
  readonly body: string;
  readonly head: { readonly ref: string; readonly sha: string };
}

describe('two clusters whose overlays share a base converge on one pull request', () => {
  let work: string;
  let gitea: Gitea;
  let source: RegistryServer;
  let backup: RegistryServer;
  let repoURL: string;
  const installations: Installation[] = [];
  const images: Record<string, string> = {};

  /** git with the admin's credentials in its environment (never its arguments). */
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', args, {
      cwd,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: 'http.extraHeader',
        GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`${gitea.user}:${gitea.password}`).toString('base64')}`,
      },
    }).trim();

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'image-clone-fleet-'));
    [gitea, source, backup] = await Promise.all([startGitea(join(work, 'gitea')), startRegistryServer(), startRegistryServer()]);
    plantCanary(gitea.token);
    plantCanary(gitea.password);
    for (const name of ['web', 'api', 'worker']) {
      await seedImage({ url: source.url }, { repository: `team/${name}`, tag: '1.0', format: 'oci', layers: [{ seed: `fleet-${name}`, size: 16 * 1024 }] });
      images[name] = `${source.address}/team/${name}:1.0`;
    }

    // The repository: a base both clusters build, and one overlay per cluster with a workload of its own.
    repoURL = await gitea.createRepository('apps');
    const clone = join(work, 'platform');
    git(work, 'clone', '-q', repoURL, clone);
    const files: Record<string, string> = {
      'base/kustomization.yaml': 'resources:\n  - web.yaml\n',
      'base/web.yaml': deploymentYaml({ namespace: 'shop', name: 'web' }, images.web!),
      'clusters/east/kustomization.yaml': 'resources:\n  - ../../base\n  - api.yaml\n',
      'clusters/east/api.yaml': deploymentYaml({ namespace: 'shop', name: 'api' }, images.api!),
      'clusters/west/kustomization.yaml': 'resources:\n  - ../../base\n  - worker.yaml\n',
      'clusters/west/worker.yaml': deploymentYaml({ namespace: 'shop', name: 'worker' }, images.worker!),
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(clone, path, '..'), { recursive: true });
      writeFileSync(join(clone, path), text);
    }
    git(clone, 'add', '-A');
    git(clone, '-c', 'user.name=platform', '-c', 'user.email=platform@example.test', 'commit', '-qm', 'two clusters, one base');
    git(clone, 'push', '-q', 'origin', 'HEAD:main');

    const secrets = join(work, 'secrets');
    mkdirSync(secrets, { mode: 0o700 });
    writeFileSync(join(secrets, 'git-password'), gitea.password, { mode: 0o600 });
    writeFileSync(join(secrets, 'forge-token'), gitea.token, { mode: 0o600 });
    for (const [name, own] of [
      ['east', 'api'],
      ['west', 'worker'],
    ] as const) {
      const dir = join(work, name);
      const cluster = await startCluster({ dir: join(dir, 'cluster') });
      const kc = new KubeConfig();
      kc.loadFromFile(cluster.kubeconfig);
      await installGitOpsCrds(kc);
      const core = kc.makeApiClient(CoreV1Api);
      for (const namespace of ['argocd', 'shop', 'image-clone']) await core.createNamespace({ body: { metadata: { name: namespace } } });
      await createGitOpsObject(kc, 'Application', 'argocd', {
        metadata: { name: 'shop' },
        spec: {
          source: { repoURL, path: `clusters/${name}`, targetRevision: 'main' },
          destination: { server: 'https://kubernetes.default.svc', namespace: 'shop' },
        },
        status: {
          resources: ['web', own].map((workload) => ({ group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'shop', name: workload })),
        },
      });
      const apps = kc.makeApiClient(AppsV1Api);
      for (const workload of ['web', own])
        await apps.createNamespacedDeployment({ namespace: 'shop', body: deploymentObject({ namespace: 'shop', name: workload }, images[workload]!) });

      const handoff = join(dir, 'handoff');
      mkdirSync(join(dir, 'logs'), { recursive: true });
      const copier = new Supervised(
        'copier',
        [
          '--kubeconfig',
          cluster.kubeconfig,
          '--cluster-name',
          name,
          '--backup-registry',
          `${backup.address}/backup`,
          '--handoff-dir',
          handoff,
          '--insecure-registry',
          source.address,
          '--insecure-registry',
          backup.address,
          '--controller-namespace',
          'image-clone',
          '--backup-pull',
          'node',
          '--health-address',
          `127.0.0.1:${await freePort()}`,
        ],
        join(dir, 'logs', 'copier.log'),
      );
      const rewriter = new Supervised(
        'rewriter',
        [
          '--handoff-dir',
          handoff,
          '--cache-dir',
          join(dir, 'cache'),
          '--git-mode',
          'pr',
          '--git-username',
          gitea.user,
          '--git-password-file',
          join(secrets, 'git-password'),
          '--forge-token-file',
          join(secrets, 'forge-token'),
          '--credentials-for',
          `${gitea.url}/`,
          '--debounce',
          '500ms',
          '--health-address',
          `127.0.0.1:${await freePort()}`,
        ],
        join(dir, 'logs', 'rewriter.log'),
      );
      installations.push({ name, cluster, copier, rewriter, ledger: new Ledger(handoff) });
    }
  });

  after(async () => {
    for (const i of installations) {
      await Promise.all([i.copier.stop(), i.rewriter.stop()]);
      await i.cluster.stop();
    }
    await Promise.all([gitea?.stop(), source?.stop(), backup?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const pulls = async () => (await gitea.api('GET', `/repos/${gitea.user}/apps/pulls?state=all`)) as Pull[];

  it("both installations, run at once through several passes and a kill -9 of every process, end in one pull request with every cluster's rows and every edit, no push forced", async () => {
    for (const i of installations) {
      i.copier.start();
      i.rewriter.start();
    }
    // Every head the pull request's branch had, seen while the installations run.
    const heads = new Set<string>();
    const watch = async (until: number) => {
      while (Date.now() < until) {
        for (const pull of await pulls().catch(() => [])) heads.add(pull.head.sha);
        await sleep(200);
      }
    };
    // Each process killed once, at staggered moments, while the other installation works.
    const kills = [
      [1_500, installations[0]!.copier],
      [2_500, installations[1]!.rewriter],
      [4_000, installations[1]!.copier],
      [5_500, installations[0]!.rewriter],
    ] as const;
    const started = Date.now();
    await Promise.all([
      watch(started + 8_000),
      ...kills.map(async ([at, process]) => {
        await sleep(at);
        process.kill9();
      }),
    ]);
    // Then until both ledgers are drained and the pull request holds all four rows.
    const deadline = Date.now() + 120_000;
    let last: Pull[] = [];
    for (;;) {
      last = await pulls();
      for (const pull of last) heads.add(pull.head.sha);
      const rows = last.flatMap((p) => rowsFromDescription(p.body));
      const drained = installations.every((i) => i.ledger.pendingIds().length === 0);
      if (drained && rows.length >= 4) break;
      if (Date.now() > deadline)
        assert.fail(
          `not converged: ${last.length} pull requests, ${rows.length} rows; pending ${installations.map((i) => `${i.name} ${i.ledger.pendingIds().length}`).join(', ')}\n${logs()}`,
        );
      await sleep(500);
    }
    for (const i of installations) assert.ok(i.copier.restarts >= 1 && i.rewriter.restarts >= 1, `${i.name}: every process was killed and came back`);

    assert.equal(last.length, 1, `one pull request, not ${last.length}: ${last.map((p) => p.head.ref).join(', ')}`);
    const [pull] = last as [Pull];
    assert.equal(pull.state, 'open');
    assert.deepEqual(
      rowsFromDescription(pull.body)
        .map((r) => `${r.cluster} ${r.workload}`)
        .sort(),
      ['east shop/Deployment/api', 'east shop/Deployment/web', 'west shop/Deployment/web', 'west shop/Deployment/worker'],
    );
    assert.match(pull.body, /^\| Cluster \| Workload \|/m);

    // Every edit present on the pull request's branch, each file changed by one commit. The base both
    // overlays build is outside either Application's path: it stays as it is, and each overlay moves
    // its own build onto the backup with an `images:` entry (an edit of the base would move every
    // cluster that builds it, including ones no installation serves).
    const mirror = join(work, 'mirror');
    git(work, 'clone', '-q', repoURL, mirror);
    git(mirror, 'fetch', '-q', 'origin', `+refs/heads/*:refs/remotes/origin/*`);
    const head = `origin/${pull.head.ref}`;
    const diff = git(mirror, 'diff', `origin/main...${head}`);
    const changed = git(mirror, 'diff', '--name-only', `origin/main...${head}`).split('\n').sort();
    assert.deepEqual(
      changed,
      ['clusters/east/api.yaml', 'clusters/east/kustomization.yaml', 'clusters/west/kustomization.yaml', 'clusters/west/worker.yaml'],
      diff,
    );
    for (const file of changed)
      assert.equal(
        git(mirror, 'log', '--format=%H', `origin/main..${head}`, '--', file).split('\n').filter(Boolean).length,
        1,
        `${file} changed by one commit`,
      );
    // What each cluster's Argo CD would render from the branch: every image a backup, pinned.
    git(mirror, 'checkout', '-q', head);
    for (const [name, own] of [
      ['east', 'api'],
      ['west', 'worker'],
    ] as const) {
      const rendered = execFileSync(join(BIN_DIR, 'kustomize'), ['build', join(mirror, 'clusters', name)], { encoding: 'utf8' });
      const used = [...rendered.matchAll(/image: (\S+)/g)].map((m) => m[1]).sort();
      assert.deepEqual(
        used.map((image) => image!.replace(/@sha256:[0-9a-f]{64}$/, '@pinned')),
        [own, 'web'].sort().map((image) => `${backup.address}/backup/${source.address.replace(':', '_')}/team/${image}:1.0@pinned`),
        `${name}: ${rendered}`,
      );
    }

    // No push forced over another cluster's commit: each head seen is an ancestor of the last (one
    // a forced push dropped is not even in this clone, and fails the same way).
    for (const sha of heads) assert.doesNotThrow(() => git(mirror, 'merge-base', '--is-ancestor', sha, head), `head ${sha} is an ancestor of the last`);
    assert.ok(heads.size >= 2, `the branch moved at least twice (${heads.size} heads seen)`);
  });

  function logs(): string {
    return installations
      .map((i) => `--- ${i.name} copier\n${i.copier.logText().slice(-3000)}\n--- ${i.name} rewriter\n${i.rewriter.logText().slice(-3000)}`)
      .join('\n');
  }
});
