/**
 * The direct-patch fallback: set the images of some containers of a workload through the API,
 * for workloads no GitOps tool manages. A strategic merge patch keyed by container name changes
 * only those containers' `image`; the record's uid rides along as a precondition, so a workload
 * deleted and recreated under the same name is not patched by mistake. An Argo Rollout (a custom
 * resource, no strategic merge) gets a JSON patch with the same guarantees (rolloutPatch).
 */
import { AppsV1Api, BatchV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { nestAt, podSpecOf, podSpecPath, type RolloutObject, type WorkloadRef } from './workloads.ts';

export interface ContainerImageChange {
  readonly container: string;
  readonly init: boolean;
  readonly image: string;
}

/**
 * The patch body: `{metadata: {uid}, spec: …template.spec: {containers: [{name, image}]}}`, and with
 * `pullSecret` an `imagePullSecrets` entry, which a strategic merge adds to the list (merged by name).
 */
export function imagePatch(ref: WorkloadRef, changes: readonly ContainerImageChange[], pullSecret?: string): object {
  const list = (init: boolean) => changes.filter((c) => c.init === init).map((c) => ({ name: c.container, image: c.image }));
  const podSpec = {
    ...(list(false).length ? { containers: list(false) } : {}),
    ...(list(true).length ? { initContainers: list(true) } : {}),
    ...(pullSecret ? { imagePullSecrets: [{ name: pullSecret }] } : {}),
  };
  return { metadata: { uid: ref.uid }, ...nestAt(podSpecPath(ref.kind), podSpec) };
}

/**
 * For a custom resource (an Argo Rollout), which takes no strategic merge: a JSON patch that tests
 * the uid and each container's name at its index (read from `current`) before replacing its image,
 * so a concurrent change makes it fail rather than patch the wrong container.
 */
export function rolloutPatch(ref: WorkloadRef, current: RolloutObject, changes: readonly ContainerImageChange[], pullSecret?: string): object[] {
  const spec = podSpecOf('Rollout', current);
  const podSpecPointer = `/${podSpecPath('Rollout').join('/')}`;
  const ops: object[] = [{ op: 'test', path: '/metadata/uid', value: ref.uid }];
  for (const change of changes) {
    const list = change.init ? 'initContainers' : 'containers';
    const index = (spec?.[list] ?? []).findIndex((c) => c.name === change.container);
    if (index < 0) throw new Error(`Rollout ${ref.namespace}/${ref.name} has no ${change.init ? 'init container' : 'container'} ${change.container}`);
    const at = `${podSpecPointer}/${list}/${index}`;
    ops.push({ op: 'test', path: `${at}/name`, value: change.container }, { op: 'replace', path: `${at}/image`, value: change.image });
  }
  if (pullSecret && !(spec?.imagePullSecrets ?? []).some((r) => r.name === pullSecret)) {
    ops.push(
      spec?.imagePullSecrets
        ? { op: 'add', path: `${podSpecPointer}/imagePullSecrets/-`, value: { name: pullSecret } }
        : { op: 'add', path: `${podSpecPointer}/imagePullSecrets`, value: [{ name: pullSecret }] },
    );
  }
  return ops;
}

export async function patchWorkloadImages(
  kubeConfig: KubeConfig,
  ref: WorkloadRef,
  changes: readonly ContainerImageChange[],
  pullSecret?: string,
): Promise<void> {
  if (ref.kind === 'Rollout') {
    const api = kubeConfig.makeApiClient(CustomObjectsApi);
    const target = { group: 'argoproj.io', version: 'v1alpha1', namespace: ref.namespace, plural: 'rollouts', name: ref.name };
    const current = (await api.getNamespacedCustomObject(target)) as RolloutObject;
    await api.patchNamespacedCustomObject(
      { ...target, body: rolloutPatch(ref, current, changes, pullSecret) },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    return;
  }
  const body = imagePatch(ref, changes, pullSecret);
  // client-node sends a JSON-patch content type unless told otherwise.
  const options = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
  const target = { name: ref.name, namespace: ref.namespace, body };
  switch (ref.kind) {
    case 'Deployment':
      await kubeConfig.makeApiClient(AppsV1Api).patchNamespacedDeployment(target, options);
      return;
    case 'DaemonSet':
      await kubeConfig.makeApiClient(AppsV1Api).patchNamespacedDaemonSet(target, options);
      return;
    case 'StatefulSet':
      await kubeConfig.makeApiClient(AppsV1Api).patchNamespacedStatefulSet(target, options);
      return;
    case 'CronJob':
      await kubeConfig.makeApiClient(BatchV1Api).patchNamespacedCronJob(target, options);
      return;
  }
}
