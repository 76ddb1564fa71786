/**
 * The direct-patch fallback: set the images of some containers of a workload through the API,
 * for workloads no GitOps tool manages. A strategic merge patch keyed by container name changes
 * only those containers' `image`; the record's uid rides along as a precondition, so a workload
 * deleted and recreated under the same name is not patched by mistake.
 */
import { AppsV1Api, BatchV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { WorkloadRef } from './workloads.ts';

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
  const spec = ref.kind === 'CronJob' ? { jobTemplate: { spec: { template: { spec: podSpec } } } } : { template: { spec: podSpec } };
  return { metadata: { uid: ref.uid }, spec };
}

export async function patchWorkloadImages(kubeConfig: KubeConfig, ref: WorkloadRef, changes: readonly ContainerImageChange[], pullSecret?: string): Promise<void> {
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
