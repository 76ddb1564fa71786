/**
 * The workload kinds the controller watches, and the images of their pod templates (containers and
 * init containers). Pure functions over API objects.
 */
import type { V1CronJob, V1DaemonSet, V1Deployment, V1ObjectMeta, V1PodSpec, V1PodTemplateSpec, V1StatefulSet } from '@kubernetes/client-node';

export const WORKLOAD_KINDS = ['Deployment', 'DaemonSet', 'StatefulSet', 'CronJob', 'Rollout'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];
/** Kinds served only where a CRD installs them (Argo Rollouts): watched when the API has them. */
export const OPTIONAL_KINDS: readonly WorkloadKind[] = ['Rollout'];

/**
 * An Argo Rollout: a Deployment's pod template under `spec.template` (a Rollout that points at a
 * Deployment with `workloadRef` has none of its own; that Deployment is watched as one).
 */
export interface RolloutObject {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: { template?: V1PodTemplateSpec; [key: string]: unknown };
}
export type WorkloadObject = V1Deployment | V1DaemonSet | V1StatefulSet | V1CronJob | RolloutObject;

export interface WorkloadRef {
  readonly kind: WorkloadKind;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface ContainerImage {
  readonly container: string;
  /** True for an init container. */
  readonly init: boolean;
  readonly image: string;
}

/** API group/version and plural of each kind, for paths, RBAC and Events. */
export const KIND_INFO: Readonly<Record<WorkloadKind, { apiVersion: string; plural: string }>> = {
  Deployment: { apiVersion: 'apps/v1', plural: 'deployments' },
  DaemonSet: { apiVersion: 'apps/v1', plural: 'daemonsets' },
  StatefulSet: { apiVersion: 'apps/v1', plural: 'statefulsets' },
  CronJob: { apiVersion: 'batch/v1', plural: 'cronjobs' },
  Rollout: { apiVersion: 'argoproj.io/v1alpha1', plural: 'rollouts' },
};

/**
 * Where a kind keeps its pod spec: the one place this is written. The copier reads images there,
 * the direct patch writes there, and the manifest planner finds them there in YAML.
 */
export function podSpecPath(kind: string): readonly string[] {
  if (kind === 'Pod') return ['spec'];
  if (kind === 'CronJob') return ['spec', 'jobTemplate', 'spec', 'template', 'spec'];
  return ['spec', 'template', 'spec'];
}

/** `value` at `path`, in new objects: `{spec: {template: {spec: value}}}`. */
export function nestAt(path: readonly string[], value: unknown): Record<string, unknown> {
  return path.reduceRight<Record<string, unknown>>((inner, key) => ({ [key]: inner }), value as Record<string, unknown>);
}

export function podSpecOf(kind: WorkloadKind, object: WorkloadObject): V1PodSpec | undefined {
  let node: unknown = object;
  for (const key of podSpecPath(kind)) node = (node as Record<string, unknown> | undefined)?.[key];
  return node as V1PodSpec | undefined;
}

/** Every image of the pod template, init containers first, in the order the kubelet starts them. */
export function imagesOf(kind: WorkloadKind, object: WorkloadObject): ContainerImage[] {
  const spec = podSpecOf(kind, object);
  if (!spec) return [];
  const out: ContainerImage[] = [];
  for (const c of spec.initContainers ?? []) if (c.image) out.push({ container: c.name, init: true, image: c.image });
  for (const c of spec.containers ?? []) if (c.image) out.push({ container: c.name, init: false, image: c.image });
  return out;
}

export function workloadRef(kind: WorkloadKind, object: WorkloadObject): WorkloadRef {
  return { kind, namespace: object.metadata?.namespace ?? '', name: object.metadata?.name ?? '', uid: object.metadata?.uid ?? '' };
}

export function workloadKey(ref: { readonly kind: string; readonly namespace: string; readonly name: string }): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** Annotations too large to keep for nothing (a copy of the whole object, written by kubectl apply). */
const BULKY_ANNOTATIONS = ['kubectl.kubernetes.io/last-applied-configuration'];

/**
 * What the copier keeps of a workload in its cache: identity, labels and annotations (owner marks,
 * the ignore annotation), its controller owner reference, the containers' names and images, and the pod's pull Secrets and
 * service account. managedFields, status and the rest
 * of the pod template are dropped, so 10,000 cached workloads fit in little memory.
 */
export function slimWorkload(kind: WorkloadKind, object: WorkloadObject): WorkloadObject {
  const m = object.metadata ?? {};
  const annotations = m.annotations ? Object.fromEntries(Object.entries(m.annotations).filter(([k]) => !BULKY_ANNOTATIONS.includes(k))) : undefined;
  const spec = podSpecOf(kind, object);
  const serviceAccountName = spec?.serviceAccountName ?? spec?.serviceAccount;
  const slimSpec = {
    containers: (spec?.containers ?? []).map((c) => ({ name: c.name, image: c.image })),
    ...(spec?.initContainers ? { initContainers: spec.initContainers.map((c) => ({ name: c.name, image: c.image })) } : {}),
    // How its Pods pull: for --backup-pull secret:NAME.
    ...(spec?.imagePullSecrets?.length ? { imagePullSecrets: spec.imagePullSecrets.map((r) => ({ name: r.name })) } : {}),
    ...(serviceAccountName ? { serviceAccountName } : {}),
  };
  // Its controller, if one owns it (an operator's StatefulSet): such a workload is moved where the controller reads its images.
  const controller = m.ownerReferences?.find((r) => r.controller === true);
  const metadata = {
    name: m.name,
    namespace: m.namespace,
    uid: m.uid,
    resourceVersion: m.resourceVersion,
    labels: m.labels,
    annotations,
    ...(controller
      ? { ownerReferences: [{ apiVersion: controller.apiVersion, kind: controller.kind, name: controller.name, uid: controller.uid, controller: true }] }
      : {}),
  };
  return { metadata, ...nestAt(podSpecPath(kind), slimSpec) } as WorkloadObject;
}
