/**
 * kustomize/ against a real API server: every overlay renders (real kustomize, built from the Go
 * module proxy), every object is accepted by a server-side dry run, the RBAC is least privilege
 * (SubjectAccessReviews for the controller's service account), and every container's arguments
 * are options the CLI knows.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuthorizationV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { BIN_DIR } from '../../devenv/cache.ts';
import { startCluster, type Cluster } from '../../devenv/cluster.ts';
import { installGitOpsCrds } from '../../devenv/gitops-crds.ts';

const ROOT = join(import.meta.dirname, '../..');
const OVERLAYS = ['argocd', 'argocd-spoke', 'argocd-hub', 'flux', 'direct-patch'];
const BASE_KINDS = ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'Namespace', 'NetworkPolicy', 'Role', 'RoleBinding', 'ServiceAccount'];
const NAMESPACED_KINDS = ['ConfigMap', 'Deployment', 'Namespace', 'NetworkPolicy', 'Role', 'RoleBinding', 'ServiceAccount'];
// What each overlay renders where it is not the base's: direct-patch adds patch rights; the hub's has
// nothing cluster-wide (its RBAC is checked in test/e2e/argocd-hub.test.ts, on its own apiservers).
const KINDS: Record<string, string[]> = {
  'direct-patch': [...BASE_KINDS, 'ClusterRole', 'RoleBinding'],
  'argocd-hub': [...NAMESPACED_KINDS, 'Role', 'RoleBinding'],
};
const NAMESPACE = 'image-clone-namespace';

function render(path: string): KubernetesObject[] {
  const text = execFileSync(join(BIN_DIR, 'kustomize'), ['build', join(ROOT, path)], { encoding: 'utf8' });
  return parseAllDocuments(text).map((d) => d.toJS() as KubernetesObject);
}

let work: string;
let cluster: Cluster;
let kc: KubeConfig;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'image-clone-kustomize-'));
  cluster = await startCluster({ dir: join(work, 'cluster') });
  kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  await installGitOpsCrds(kc);
});
after(async () => {
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('kustomize manifests', () => {
  for (const overlay of OVERLAYS) {
    it(`overlays/${overlay} renders and every object passes a server-side dry run`, async () => {
      const objects = render(`kustomize/overlays/${overlay}`);
      assert.deepEqual(objects.map((o) => o.kind).sort(), (KINDS[overlay] ?? BASE_KINDS).sort());
      const api = KubernetesObjectApi.makeApiClient(kc);
      // The namespace must exist for a dry run of what goes in it; everything else is dry-run only.
      const namespace = objects.find((o) => o.kind === 'Namespace')!;
      await api.create(namespace).catch((error: { code?: number }) => assert.equal(error.code, 409));
      // The direct-patch overlay's example RoleBinding lives in the workloads' namespace.
      for (const other of new Set(objects.map((o) => o.metadata?.namespace).filter((n): n is string => n !== undefined && n !== namespace.metadata!.name)))
        await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: other } }).catch((error: { code?: number }) => assert.equal(error.code, 409));
      for (const object of objects.filter((o) => o.kind !== 'Namespace')) {
        await api.create(object, undefined, 'All').catch((error: Error) => assert.fail(`${object.kind}/${object.metadata?.name} rejected: ${error.message}`));
      }
    });

    it(`overlays/${overlay} runs non-root, read-only, without privileges, with options the CLI knows`, () => {
      const deployment = render(`kustomize/overlays/${overlay}`).find((o) => o.kind === 'Deployment') as V1Deployment;
      const pod = deployment.spec!.template.spec!;
      assert.equal(pod.securityContext?.runAsNonRoot, true);
      assert.deepEqual(
        pod.containers.map((c) => c.name),
        ['rewriter', 'copier'],
      );
      for (const container of pod.containers) {
        assert.equal(container.securityContext?.readOnlyRootFilesystem, true, container.name);
        assert.equal(container.securityContext?.allowPrivilegeEscalation, false, container.name);
        assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL'], container.name);
        assert.ok(container.resources?.requests?.memory, `${container.name} requests memory`);
        assert.ok(
          container.volumeMounts?.some((m) => m.name === 'handoff' && m.mountPath === '/handoff'),
          `${container.name} shares the handoff volume`,
        );
        // The CLI's own parser rejects an unknown option before it looks at --help.
        const args = [...(container.args ?? []), '--help'];
        assert.doesNotThrow(
          () => execFileSync(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], { stdio: 'pipe' }),
          `${container.name}: ${args.join(' ')}`,
        );
      }
      for (const container of pod.containers) {
        assert.equal(container.readinessProbe?.httpGet?.path, '/readyz', container.name);
        assert.equal(container.livenessProbe?.httpGet?.path, '/healthz', container.name);
        const port = container.readinessProbe?.httpGet?.port;
        assert.ok(
          container.ports?.some((p) => p.name === port),
          `${container.name} declares the probe port ${port}`,
        );
        assert.ok(
          container.args?.some((a) => a.startsWith('--health-address=$(POD_IP):') && container.ports?.some((p) => a.endsWith(`:${p.containerPort}`))),
          `${container.name} serves health on its declared port, on the Pod's own address`,
        );
        assert.ok(container.env?.some((e) => e.name === 'POD_IP' && e.valueFrom?.fieldRef?.fieldPath === 'status.podIP'));
      }
      const copier = pod.containers.find((c) => c.name === 'copier')!;
      assert.ok(copier.env?.some((e) => e.name === 'POD_NAMESPACE' && e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace'));
      // The service account token reaches the copier alone (and the rewriter only where it patches workloads).
      const tokenMounts = (name: string) =>
        pod.containers.find((c) => c.name === name)!.volumeMounts?.some((m) => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount') ?? false;
      assert.equal(pod.automountServiceAccountToken, false);
      assert.equal(tokenMounts('copier'), true);
      assert.equal(tokenMounts('rewriter'), overlay === 'direct-patch');
      // Each container its own /tmp.
      const tmp = (name: string) => pod.containers.find((c) => c.name === name)!.volumeMounts?.find((m) => m.mountPath === '/tmp')?.name;
      assert.notEqual(tmp('copier'), tmp('rewriter'));
    });
  }

  it('grants least privilege: reads workloads and GitOps objects, writes only Events and its Lease', async () => {
    const api = KubernetesObjectApi.makeApiClient(kc);
    const rbacKinds = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];
    for (const object of render('kustomize/base').filter((o) => rbacKinds.includes(o.kind!))) {
      await api.create(object).catch((error: { code?: number }) => assert.equal(error.code, 409));
    }
    const expectations: Array<[boolean, string, string, string, string?]> = [
      [true, 'list', 'apps', 'deployments'],
      [true, 'watch', 'apps', 'daemonsets'],
      [true, 'watch', 'apps', 'statefulsets'],
      [true, 'list', 'batch', 'cronjobs'],
      [true, 'watch', '', 'namespaces'],
      [true, 'get', 'argoproj.io', 'applications', 'argocd'],
      [true, 'watch', 'argoproj.io', 'rollouts', 'shop'],
      [true, 'get', 'kustomize.toolkit.fluxcd.io', 'kustomizations', 'flux-system'],
      [true, 'get', 'source.toolkit.fluxcd.io', 'gitrepositories', 'flux-system'],
      [true, 'get', 'helm.toolkit.fluxcd.io', 'helmreleases', 'shop'],
      [true, 'get', 'source.toolkit.fluxcd.io', 'helmrepositories', 'flux-system'],
      [true, 'get', 'source.toolkit.fluxcd.io', 'ocirepositories', 'flux-system'],
      [true, 'create', '', 'events', 'shop'],
      [true, 'get', '', 'serviceaccounts', 'shop'],
      [false, 'list', '', 'serviceaccounts', 'shop'],
      [true, 'get', 'monitoring.coreos.com', 'prometheuses', 'shop'],
      [false, 'list', 'monitoring.coreos.com', 'prometheuses', 'shop'],
      [false, 'patch', 'monitoring.coreos.com', 'prometheuses', 'shop'],
      [false, 'update', '', 'serviceaccounts', 'shop'],
      [true, 'update', 'coordination.k8s.io', 'leases', NAMESPACE],
      [false, 'update', 'coordination.k8s.io', 'leases', 'kube-system'],
      [false, 'patch', 'apps', 'deployments', 'shop'],
      [false, 'update', 'apps', 'deployments', 'shop'],
      [false, 'delete', 'apps', 'daemonsets', 'shop'],
      [false, 'get', '', 'secrets', 'default'],
      [false, 'get', '', 'secrets', 'kube-system'],
      [false, 'list', '', 'secrets', NAMESPACE],
      [false, 'update', 'argoproj.io', 'applications', 'argocd'],
      // Owners are read by name: no list or watch of them.
      [false, 'list', 'argoproj.io', 'applications', 'argocd'],
      [false, 'watch', 'kustomize.toolkit.fluxcd.io', 'kustomizations', 'flux-system'],
      [false, 'list', 'helm.toolkit.fluxcd.io', 'helmreleases', 'shop'],
      [false, 'list', 'source.toolkit.fluxcd.io', 'gitrepositories', 'flux-system'],
    ];
    for (const [allowed, verb, group, resource, namespace] of expectations) {
      assert.equal(
        await can(verb, group, resource, namespace),
        allowed,
        `${allowed ? 'may' : 'may not'} ${verb} ${group || 'core'}/${resource}${namespace ? ` in ${namespace}` : ' cluster-wide'}`,
      );
    }
  });

  it("argocd-hub-access, applied in a hub, lets a spoke's copier get Applications in Argo CD's namespace and do nothing else", async () => {
    const api = KubernetesObjectApi.makeApiClient(kc);
    const objects = render('kustomize/argocd-hub-access');
    assert.deepEqual(objects.map((o) => o.kind).sort(), ['Role', 'RoleBinding', 'ServiceAccount']);
    await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'argocd' } }).catch((error: { code?: number }) => assert.equal(error.code, 409));
    for (const object of objects) await api.create(object).catch((error: { code?: number }) => assert.equal(error.code, 409));
    const spoke = { namespace: 'argocd', name: 'image-clone-spoke' };
    const expectations: Array<[boolean, string, string, string, string | undefined]> = [
      [true, 'get', 'argoproj.io', 'applications', 'argocd'],
      [false, 'list', 'argoproj.io', 'applications', 'argocd'],
      [false, 'watch', 'argoproj.io', 'applications', 'argocd'],
      [false, 'update', 'argoproj.io', 'applications', 'argocd'],
      [false, 'get', 'argoproj.io', 'applications', 'shop'],
      [false, 'get', 'argoproj.io', 'appprojects', 'argocd'],
      [false, 'get', '', 'secrets', 'argocd'],
      [false, 'list', '', 'namespaces', undefined],
      [false, 'get', 'apps', 'deployments', 'argocd'],
    ];
    for (const [allowed, verb, group, resource, namespace] of expectations)
      assert.equal(
        await can(verb, group, resource, namespace, spoke),
        allowed,
        `${allowed ? 'may' : 'may not'} ${verb} ${group || 'core'}/${resource}${namespace ? ` in ${namespace}` : ' cluster-wide'}`,
      );
  });

  it('the direct-patch overlay adds patch on the workload kinds, in the namespaces it lists only, and nothing else', async () => {
    const api = KubernetesObjectApi.makeApiClient(kc);
    const rbacKinds = ['ClusterRole', 'RoleBinding'];
    for (const object of render('kustomize/overlays/direct-patch').filter(
      (o) => rbacKinds.includes(o.kind!) && o.metadata?.name === 'image-clone-controller-direct-patch',
    )) {
      await api.create(object).catch((error: { code?: number }) => assert.equal(error.code, 409));
    }
    const expectations: Array<[boolean, string, string, string, string]> = [
      [true, 'patch', 'apps', 'deployments', 'apps'],
      [true, 'patch', 'apps', 'daemonsets', 'apps'],
      [true, 'patch', 'apps', 'statefulsets', 'apps'],
      [true, 'patch', 'batch', 'cronjobs', 'apps'],
      [true, 'patch', 'argoproj.io', 'rollouts', 'apps'],
      [false, 'patch', 'apps', 'deployments', 'shop'],
      [false, 'patch', 'apps', 'deployments', 'kube-system'],
      [false, 'update', 'apps', 'deployments', 'apps'],
      [false, 'delete', 'apps', 'deployments', 'apps'],
      [false, 'patch', '', 'pods', 'apps'],
      [false, 'get', '', 'secrets', 'default'],
    ];
    for (const [allowed, verb, group, resource, namespace] of expectations) {
      assert.equal(
        await can(verb, group, resource, namespace),
        allowed,
        `${allowed ? 'may' : 'may not'} ${verb} ${group || 'core'}/${resource} in ${namespace}`,
      );
    }
  });
});

async function can(
  verb: string,
  group: string,
  resource: string,
  namespace?: string,
  account = { namespace: NAMESPACE, name: 'image-clone-controller' },
): Promise<boolean> {
  const review = await kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${account.namespace}:${account.name}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${account.namespace}`],
        resourceAttributes: { verb, group, resource, ...(namespace ? { namespace } : {}) },
      },
    },
  });
  return review.status?.allowed === true;
}
