/**
 * Kubernetes manifests as the planner reads them: the workload kinds whose pod template it edits,
 * the objects of a file (each document, each item of a `kind: List`), and every container image.
 * Pure: parsed text in, image uses out.
 */
import { sep } from 'node:path';
import type { Node } from 'yaml';
import { operatorResource } from '../../cluster/operator-images.ts';
import { podSpecNode } from './pull-secrets.ts';
import { get, items, scalarSite, stringAt, type ParsedYaml, type ScalarSite } from './yaml-scalars.ts';

/** Kinds whose pod template is edited; an Argo Rollout keeps its template where a Deployment does. */
export const MANIFEST_KINDS = ['Deployment', 'DaemonSet', 'StatefulSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod', 'Rollout'] as const;

export const isWorkloadKind = (kind: string | undefined) => kind !== undefined && (MANIFEST_KINDS as readonly string[]).includes(kind);

export interface Workload {
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
}

export interface ImageUse {
  readonly file: string;
  readonly where: string;
  readonly site: ScalarSite;
  readonly workload: Workload;
  readonly container: string;
  readonly init: boolean;
  /** Its position in its list (what a JSON 6902 patch names it by). */
  readonly index: number;
  /** The names the pod spec lists in imagePullSecrets. */
  readonly pullSecrets: readonly string[];
}

/** The objects of a file's documents: each document, and each item of a `kind: List`. */
export function objectsOf(yaml: ParsedYaml): Node[] {
  return yaml.documents.flatMap((doc) => {
    const root = doc.contents as Node | null;
    if (!root) return [];
    return stringAt(root, 'kind') === 'List' ? items(get(root, 'items')) : [root];
  });
}

/** The workload an object declares: kind, namespace and name (a `generateName` shown as `name*`). */
export function workloadOf(root: Node): Workload | undefined {
  const kind = stringAt(root, 'kind');
  if (!kind) return undefined;
  const metadata = get(root, 'metadata');
  const generated = stringAt(metadata, 'generateName');
  return { kind, namespace: stringAt(metadata, 'namespace'), name: stringAt(metadata, 'name') ?? (generated ? `${generated}*` : '(no name)') };
}

/** Every container and init container image of the workload objects in a file. */
export function imageUses(file: string, yaml: ParsedYaml): ImageUse[] {
  return objectsOf(yaml).flatMap((object) => objectImageUses(file, yaml.text, object));
}

/** Whether the planner edits images of this object: a workload kind, or a resource whose operator documents an image field. */
export const editsImagesOf = (object: Node) =>
  isWorkloadKind(stringAt(object, 'kind')) || operatorResource(stringAt(object, 'apiVersion'), stringAt(object, 'kind')) !== undefined;

/**
 * The container and init container images of one object, if it is a workload, or the image fields of
 * an operator's resource (cluster/operator-images.ts), each as the container the operator runs it in;
 * `text` is what its ranges index.
 */
export function objectImageUses(file: string, text: string, object: Node): ImageUse[] {
  const workload = workloadOf(object);
  const operator = operatorResource(stringAt(object, 'apiVersion'), workload?.kind);
  if (workload && operator)
    return operator.fields.flatMap(({ container, path }, index): ImageUse[] => {
      const site = scalarSite(
        text,
        path.reduce<Node | undefined>((node, key) => get(node, key), object),
      );
      return site
        ? [
            {
              file,
              where: `${workload.kind}/${workload.name} ${path.join('.')} (run as container ${container})`,
              site,
              workload,
              container,
              init: false,
              index,
              pullSecrets: [],
            },
          ]
        : [];
    });
  if (!workload || !isWorkloadKind(workload.kind)) return [];
  // A literal in a chart's template is edited like any manifest, and said to be one.
  const template = /(^|\/)templates\/[^/]+\.ya?ml$/.test(file.split(sep).join('/')) ? 'Helm chart template: ' : '';
  const podSpec = podSpecNode(workload.kind, object);
  const pullSecrets = items(get(podSpec, 'imagePullSecrets')).flatMap((r) => stringAt(r, 'name') ?? []);
  return (['initContainers', 'containers'] as const).flatMap((list) =>
    items(get(podSpec, list)).flatMap((container, index): ImageUse[] => {
      const site = scalarSite(text, get(container, 'image'));
      const name = stringAt(container, 'name') ?? '?';
      return site
        ? [
            {
              file,
              where: `${template}${workload.kind}/${workload.name} ${list === 'initContainers' ? 'init container' : 'container'} ${name}`,
              site,
              workload,
              container: name,
              init: list === 'initContainers',
              index,
              pullSecrets,
            },
          ]
        : [];
    }),
  );
}
