/**
 * `imagePullSecrets` added to a workload's pod template, for `--backup-pull secret:NAME` when the
 * workload does not list the Secret yet: the image change and the Secret it needs land in the same
 * edit. Byte-minimal and in the file's own style: an existing list gets one more entry (block: a
 * `- name:` line at its dash column; flow: `, {name: …}`); a pod spec without the key gets it after
 * its last entry, at its keys' column, its list indented like the file's `containers:` list. CRLF
 * files get CRLF lines. Pure: text in, edits out.
 */
import { isMap, isSeq, type Node, type YAMLMap } from 'yaml';
import { podSpecPath } from '../../cluster/workloads.ts';
import { addToMap, addToSeq } from './yaml-insert.ts';
import { get, items, stringAt, type ParsedYaml, type TextEdit } from './yaml-scalars.ts';

export interface PullSecretWant {
  readonly workload: { readonly kind: string; readonly namespace: string; readonly name: string };
  readonly secret: string;
}

/** A document's pod spec, where its kind keeps it. */
export function podSpecNode(kind: string, root: unknown): Node | undefined {
  let node = root as Node | undefined;
  for (const key of podSpecPath(kind)) node = get(node, key);
  return node;
}

/**
 * Edits that make each matching document's pod spec list `want.secret`, and how many documents
 * declared the workload (0: its pod template is not in this file). A document matches on kind and
 * name, and on namespace when it states one (kustomize and Argo CD often set it later).
 */
export function pullSecretEdits(yaml: ParsedYaml, want: PullSecretWant): { edits: TextEdit[]; declared: number; error?: string } {
  const edits: TextEdit[] = [];
  let declared = 0;
  for (const doc of yaml.documents) {
    const root = doc.contents;
    if (stringAt(root, 'kind') !== want.workload.kind) continue;
    const metadata = get(root, 'metadata');
    if (stringAt(metadata, 'name') !== want.workload.name) continue;
    const namespace = stringAt(metadata, 'namespace');
    if (namespace !== undefined && namespace !== want.workload.namespace) continue;
    const podSpec = podSpecNode(want.workload.kind, root);
    if (!isMap(podSpec)) continue;
    declared++;
    const edit = editFor(yaml.text, podSpec, want.secret);
    if (typeof edit === 'string') return { edits: [], declared, error: edit };
    if (edit) edits.push(edit);
  }
  return { edits, declared };
}

function editFor(text: string, podSpec: YAMLMap, secret: string): TextEdit | string | undefined {
  const existing = get(podSpec, 'imagePullSecrets');
  if (existing !== undefined && !isSeq(existing)) return 'its imagePullSecrets is not a list';
  const edit = isSeq(existing)
    ? items(existing).some((item) => stringAt(item, 'name') === secret)
      ? undefined
      : addToSeq(text, existing, { name: secret }, podSpec)
    : addToMap(text, podSpec, 'imagePullSecrets', [{ name: secret }]);
  return typeof edit === 'string' ? `its pod spec: ${edit}` : edit;
}
