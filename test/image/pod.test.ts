/**
 * The image users deploy, running the Pod users deploy. The image is built from ./Dockerfile by
 * scripts/build-image.sh (buildah; scripts/test.sh builds it and names it in IMAGE_CLONE_IMAGE);
 * the Pod is `kustomize build kustomize/overlays/argocd`, applied to a real kube-apiserver and run
 * by test/support/pod-runner.ts: both containers from the image's filesystem with the rendered
 * arguments, environment (the ConfigMap as the API server holds it), volumes, user and read-only
 * root, the copier reaching the API server in-cluster with its own service account's token (so the
 * shipped RBAC is what it gets), the Secrets created as the README says.
 *
 * What the operator sets is what the README tells them to set: BACKUP_REGISTRY, BACKUP_PULL (here
 * secret:backup-pull: the backup registry wants credentials, and Pods pull with that Secret; one
 * namespace's service account lists it, the other's manifests get it), GIT_MODE=pr and GIT_USERNAME
 * in the ConfigMap, and the two Secrets. One addition is this machine's: the local
 * registries speak plain HTTP, so the copier gets their --insecure-registry flags.
 *
 * The end state is the demo's: every image backed up under its digest, no half image, the ledger
 * drained, exactly one pull request on a real Gitea moving every manifest, health endpoints on the
 * rendered ports, and both containers stopping cleanly on SIGTERM. Then the rewriter, as rendered,
 * pushes over SSH with the key and known_hosts from its Git Secret (ssh needs the image's passwd
 * entry for uid 65532, and a read-only $HOME).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Deployment,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { BIN_DIR } from '../../devenv/cache.ts';
import { startSshServer, type SshServer } from '../../devenv/sshd.ts';
import { Ledger } from '../../src/handoff/ledger.ts';
import { exhibit, plantSshKey } from '../support/canaries.ts';
import { deploymentYaml, git, startInstallation, type Installation } from '../support/installation.ts';
import { bareRepository } from '../support/git.ts';
import { buildah, probeStatus, startPod, type RunningContainer, type RunningPod } from '../support/pod-runner.ts';

const ROOT = join(import.meta.dirname, '../..');
const IMAGE = process.env.IMAGE_CLONE_IMAGE;
const NAMESPACE = 'image-clone-namespace';
const skip = IMAGE
  ? false
  : process.env.CI
    ? false
    : 'no image built: scripts/test.sh builds it as root (scripts/build-image.sh) and names it in IMAGE_CLONE_IMAGE';

let work: string;
let installation: Installation;
let sshd: SshServer;
let pod: RunningPod | undefined;
let ran: readonly RunningContainer[] = [];

describe('the container image runs the Pod of kustomize/overlays/argocd', { skip }, () => {
  before(async () => {
    assert.ok(IMAGE, 'CI must build the image: IMAGE_CLONE_IMAGE is not set');
    assert.equal(process.getuid?.(), 0, 'running the Pod needs root (mount namespaces)');
    work = mkdtempSync(join(tmpdir(), 'image-clone-pod-'));
    installation = await startInstallation({ dir: work, images: 3, workloads: 4, namespaces: 2, faultRate: 0, seed: 7, git: 'pr', startControllers: false });
    sshd = await startSshServer(join(work, 'sshd'));
    plantSshKey(sshd.clientKeyFile);
  });
  after(async () => {
    if (pod) {
      await pod.stop(5_000);
      pod.remove();
    }
    await sshd?.stop();
    if (installation) {
      for (const c of ran) assert.deepEqual(exhibit(`pod ${c.name} log`, c.log()), [], `no secret in the ${c.name} log`);
      await installation.stop();
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('is small: no compilers, npm, tests or development files', () => {
    const ctr = buildah('from', '--quiet', '--pull=never', IMAGE!);
    try {
      const root = buildah('mount', ctr);
      const present = (path: string) => execFileSync('sh', ['-c', `ls -d ${root}/${path} 2>/dev/null || true`], { encoding: 'utf8' }).trim() !== '';
      for (const path of [
        'usr/bin/gcc',
        'usr/bin/cc',
        'usr/local/bin/npm',
        'usr/local/lib/node_modules',
        'app/src',
        'app/test',
        'app/bench',
        'app/dist/devenv',
        'app/dist/commands/demo.js',
        'app/node_modules/typescript',
        'root/.npm',
        'app/.npm',
      ]) {
        assert.ok(!present(path), `${path} is not in the image`);
      }
      for (const path of [
        'usr/bin/git',
        'usr/bin/ssh',
        'usr/local/bin/node',
        'usr/local/bin/helm',
        'usr/local/bin/kustomize',
        'app/dist/cli.js',
        'etc/ssl/certs/ca-certificates.crt',
      ])
        assert.ok(present(path), `${path} is in the image`);
      for (const path of ['usr/local/go', 'go', 'usr/bin/go']) assert.ok(!present(path), `${path} (the Go toolchain) is not in the image`);
    } finally {
      buildah('rm', ctr);
    }
  });

  it('backs up, opens exactly one pull request, answers its probes, and stops on SIGTERM', async () => {
    const api = KubernetesObjectApi.makeApiClient(installation.kubeConfig);
    const core = installation.kubeConfig.makeApiClient(CoreV1Api);
    const rendered = parseAllDocuments(execFileSync(join(BIN_DIR, 'kustomize'), ['build', join(ROOT, 'kustomize/overlays/argocd')], { encoding: 'utf8' })).map(
      (d) => d.toJS() as KubernetesObject,
    );
    for (const object of rendered.filter((o) => o.kind !== 'Deployment')) {
      await api.create(object).catch((error: { code?: number }) => assert.equal(error.code, 409, `${object.kind}/${object.metadata?.name}`));
    }
    // What the README's install section has the operator do.
    const { registry, git: gitAccount } = installation.credentials;
    await core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'image-clone-registry' },
        stringData: { 'docker-server': registry.server, 'docker-username': registry.username, 'docker-password': registry.password },
      },
    });
    // The Git Secret also holds an SSH key and known_hosts, for the SSH run below.
    const sshFiles = { 'ssh-privatekey': readFileSync(sshd.clientKeyFile, 'utf8'), known_hosts: readFileSync(sshd.knownHostsFile, 'utf8') };
    await core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: { metadata: { name: 'image-clone-git' }, stringData: { password: gitAccount.token, ...sshFiles } },
    });
    await core.patchNamespacedConfigMap(
      {
        name: 'image-clone-controller',
        namespace: NAMESPACE,
        body: {
          data: {
            BACKUP_REGISTRY: `${registry.server}/backup`,
            BACKUP_PULL: 'secret:backup-pull',
            GIT_MODE: 'pr',
            GIT_USERNAME: gitAccount.username,
            // The Git token is bound to this lab's plain-http forge (behind its fault proxy) alone.
            GIT_CREDENTIALS_FOR: `${installation.proxies.git.url}/`,
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

    // The platform team's pull Secret: team-1's default service account lists it, team-0 lists nothing.
    await core.createNamespacedServiceAccount({ namespace: 'team-1', body: { metadata: { name: 'default' }, imagePullSecrets: [{ name: 'backup-pull' }] } });

    // What the kubelet reads: the objects as the API server holds them, and a token it issues.
    const configMap = (await core.readNamespacedConfigMap({ name: 'image-clone-controller', namespace: NAMESPACE })) as V1ConfigMap;
    const secretData = async (name: string) =>
      Object.fromEntries(
        Object.entries((await core.readNamespacedSecret({ name, namespace: NAMESPACE })).data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
      );
    const deployment = rendered.find((o) => o.kind === 'Deployment') as V1Deployment;
    const serviceAccount = deployment.spec!.template.spec!.serviceAccountName!;
    const token = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace: NAMESPACE,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const copierSpec = deployment.spec!.template.spec!.containers.find((c) => c.name === 'copier')!;
    copierSpec.args = [...copierSpec.args!, `--insecure-registry=${installation.proxies.source.address}`, `--insecure-registry=${registry.server}`];
    const server = new URL(installation.cluster.server);

    for (const port of [8080, 8081]) assert.equal(await probeStatus(`127.0.0.1:${port}/`), 0, `port ${port} is free for the Pod`);
    pod = startPod({
      deployment,
      image: IMAGE!,
      namespace: NAMESPACE,
      podName: 'image-clone-controller-7d9f-abcde',
      configMaps: { 'image-clone-controller': configMap.data ?? {} },
      secrets: { 'image-clone-registry': await secretData('image-clone-registry'), 'image-clone-git': await secretData('image-clone-git') },
      serviceAccount: {
        token: token.status?.token ?? assert.fail('the API server issued no token'),
        caCert: readFileSync(installation.cluster.caFile, 'utf8'),
      },
      apiServer: { host: server.hostname, port: server.port },
      dir: join(work, 'pod'),
      emptyDirAt: { handoff: installation.ledger.dir },
    });
    ran = pod.containers;
    const copier = pod.container('copier');
    const rewriter = pod.container('rewriter');
    assert.ok(copier.readiness && rewriter.readiness, 'both containers have readiness probes');

    // The sandbox is what the template says: uid 65532, no privileges, a read-only root.
    const id = copier.exec([
      'sh',
      '-c',
      'id -u; id -g; grep -E "^(NoNewPrivs|CapEff)" /proc/self/status; touch /app/x 2>&1; touch /handoff/.probe && echo handoff-writable; echo "pid $$"',
    ]);
    assert.match(id.output, /^pid 1$/m, 'the command is PID 1 of its container');
    assert.match(id.output, /^65532\n65532\n/, id.output);
    assert.match(id.output, /NoNewPrivs:\s+1/);
    assert.match(id.output, /CapEff:\s+0+\n/);
    assert.match(id.output, /Read-only file system/);
    assert.match(id.output, /handoff-writable/);
    // Least privilege inside the Pod: the service account token in the copier only, and a /tmp each.
    const holdsToken = (c: typeof copier) =>
      c.exec(['sh', '-c', 'test -e /var/run/secrets/kubernetes.io/serviceaccount/token && echo token || echo none']).output.trim();
    assert.equal(holdsToken(copier), 'token');
    assert.equal(holdsToken(rewriter), 'none', 'the rewriter holds no service account token');
    copier.exec(['sh', '-c', 'echo copier > /tmp/left-by-copier']);
    assert.match(rewriter.exec(['sh', '-c', 'cat /tmp/left-by-copier 2>&1 || true']).output, /No such file/, 'no /tmp shared between the containers');
    const tools = rewriter.exec(['sh', '-c', 'git --version && ssh -V 2>&1 && helm version --short && kustomize version && echo "HOME=$HOME"']);
    assert.equal(tools.status, 0, tools.output);
    assert.match(tools.output, /git version 2\./);
    assert.match(tools.output, /OpenSSH_/);
    // The render proof's programs run as the container's user, on its read-only root.
    assert.match(tools.output, /^v3\.22\.0/m);
    assert.match(tools.output, /^v5\.7\.1/m);

    const deadline = Date.now() + 60_000;
    const status = async () =>
      Object.fromEntries(await Promise.all(pod!.containers.flatMap((c) => [c.readiness!, c.liveness!]).map(async (a) => [a, await probeStatus(a)] as const)));
    let last: Record<string, number> = {};
    while (Date.now() < deadline) {
      last = await status();
      if (Object.values(last).every((s) => s === 200)) break;
      for (const c of pod.containers)
        if (c.process.exitCode !== null) assert.fail(`container ${c.name} exited ${c.process.exitCode}:\n${c.log().slice(-3000)}`);
      await sleep(500);
    }
    assert.ok(
      Object.values(last).every((s) => s === 200),
      `probes: ${JSON.stringify(last)}\ncopier:\n${copier.log().slice(-2000)}\nrewriter:\n${rewriter.log().slice(-2000)}`,
    );

    await installation.converge(90_000).catch((error: Error) => {
      throw new Error(`${error.message}\ncopier:\n${copier.log().slice(-3000)}\nrewriter:\n${rewriter.log().slice(-3000)}`);
    });
    const pulls = (await installation.pullRequests!()) as Array<{ body: string; title: string }>;
    assert.equal(pulls.length, 1);
    for (const image of installation.images) assert.ok(pulls[0]!.body.includes(image.digest), `the pull request names ${image.digest}`);
    // How each workload will pull: the Secret its service account lists, or the one this change adds.
    assert.match(pulls[0]!.body, /\| team-0\/Deployment\/web-0 \|.*\| Secret `backup-pull` \(this change adds it to the pod template\) \|/);
    assert.match(pulls[0]!.body, /\| team-1\/Deployment\/web-1 \|.*\| Secret `backup-pull` \(its service account lists it\) \|/);
    assert.match(pulls[0]!.body, /whether the Secret exists in the workload's namespace and holds credentials for the backup registry was not checked/);
    const branch = git(installation.bareRepo, 'for-each-ref', '--format=%(refname)', 'refs/heads/image-clone/');
    for (const w of installation.workloads) {
      const listed = git(installation.bareRepo, 'show', `${branch}:${w.file}`).includes('imagePullSecrets:\n        - name: backup-pull');
      assert.equal(listed, w.namespace === 'team-0', `${w.file}: imagePullSecrets added only where nothing lists the Secret`);
    }
    assert.doesNotMatch(copier.log(), /may not read service accounts/, 'the shipped RBAC lets the copier get service accounts');

    const stopped = await pod.stop();
    for (const result of stopped)
      assert.deepEqual([result.name, result.code], [result.name, 0], `${result.name} stops cleanly on SIGTERM (signal ${result.signal})`);
  });

  it('pushes over SSH from the image, with the key and known_hosts from the Git Secret', async () => {
    assert.ok(pod, 'the Pod ran');
    const origin = bareRepository(join(work, 'ssh-origin.git'), { 'apps/web.yaml': deploymentYaml({ namespace: 'shop', name: 'web' }, 'nginx:1.25') }, 'web');
    // A record on the rewriter's own /tmp volume, for a workload whose Application syncs over SSH.
    const handoff = join(pod.volumeDir('rewriter-tmp'), 'ssh-handoff');
    const digest = `sha256:${'5'.repeat(64)}`;
    await new Ledger(handoff).write({
      workload: { kind: 'Deployment', namespace: 'shop', name: 'web', uid: 'uid-ssh-web' },
      images: [
        {
          container: 'main',
          init: false,
          source: 'nginx:1.25',
          backup: 'backup.example/m/docker.io/library/nginx:1.25',
          digest,
          platforms: ['linux/amd64'],
          sizeBytes: 1,
        },
      ],
      owner: {
        tool: 'argocd',
        kind: 'Application',
        namespace: 'argocd',
        name: 'shop',
        sources: [{ repoURL: sshd.urlFor(origin), path: 'apps', revision: 'main' }],
      },
    });
    chmodSync(handoff, 0o777);
    const rewriter = pod.container('rewriter');
    const once = rewriter.exec([
      ...rewriter.argv,
      '--once',
      '--handoff-dir=/tmp/ssh-handoff',
      '--git-mode=commit',
      '--git-ssh-key-file=/secrets/git/ssh-privatekey',
      '--git-known-hosts-file=/secrets/git/known_hosts',
      `--credentials-for=${sshd.urlFor(origin)}`,
    ]);
    assert.equal(once.status, 0, once.output);
    assert.match(git(origin, 'show', 'main:apps/web.yaml'), new RegExp(`image: backup\\.example/m/docker\\.io/library/nginx:1\\.25@${digest}`));
    assert.deepEqual(exhibit('pod ssh run', once.output), [], 'no line of the key in the output');
  });
});
