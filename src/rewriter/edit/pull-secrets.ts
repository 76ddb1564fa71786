/**
 * `imagePullSecrets` added to a workload's pod template, for `--backup-pull secret:NAME` when the
 * workload does not list the Secret yet: the image change and the Secret it needs land in the same
 * edit. Byte-minimal and in the file's own style: an existing list gets one more entry (block: a
 * `- name:` line at its dash column; flow: `, {name: …}`); a pod spec without the key gets it after
 * its last entry, at its keys' column, its list indented like the file's `containers:` list. CRLF
 * files get CRLF lines. Pure: text in, edits out.
 */
import { isMap, isScalar, isSeq, type Node, type YAMLMap } from 'yaml';
import { columnOf, formatScalar, get, items, stringAt, type ParsedYaml, type TextEdit } from './yaml-scalars.ts';

export interface PullSecretWant {
  readonly workload: { readonly kind: string; readonly namespace: string; readonly name: string };
  readonly secret: string;
}

/** Where a document keeps its pod spec, by kind (the one place the planner knows this). */
export function podSpecNode(kind: string, root: unknown): Node | undefined {
  const spec = get(root, 'spec');
  if (kind === 'Pod') return spec;
  if (kind === 'CronJob') return get(get(get(get(spec, 'jobTemplate'), 'spec'), 'template'), 'spec');
  return get(get(spec, 'template'), 'spec');
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
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const entry = `name: ${formatScalar(secret)}`;
  const existing = get(podSpec, 'imagePullSecrets');
  if (existing !== undefined && !isSeq(existing)) return 'its imagePullSecrets is not a list';
  if (isSeq(existing)) {
    if (items(existing).some((item) => stringAt(item, 'name') === secret)) return undefined;
    if (existing.flow) {
      const last = existing.items.at(-1) as Node | undefined;
      if (last?.range) return { start: last.range[1], end: last.range[1], text: `, {${entry}}` };
      const open = text.indexOf('[', existing.range![0]);
      return { start: open + 1, end: open + 1, text: `{${entry}}` };
    }
    const first = existing.items[0] as Node;
    const at = lineEndAfter(text, lastContentEnd(existing));
    return { start: at, end: at, text: `${eol}${' '.repeat(columnOf(text, text.lastIndexOf('-', first.range![0])))}- ${entry}` };
  }
  if (podSpec.flow) {
    const last = podSpec.items.at(-1);
    const end = (last?.value as Node | undefined)?.range?.[1] ?? (last?.key as Node | undefined)?.range?.[1];
    if (end === undefined) return 'its pod spec is an empty flow mapping';
    return { start: end, end, text: `, imagePullSecrets: [{${entry}}]` };
  }
  const firstKey = podSpec.items[0]?.key as Node | undefined;
  if (!firstKey?.range) return 'its pod spec is empty';
  const keyColumn = columnOf(text, firstKey.range[0]);
  const at = lineEndAfter(text, lastContentEnd(podSpec));
  return { start: at, end: at, text: `${eol}${' '.repeat(keyColumn)}imagePullSecrets:${eol}${' '.repeat(keyColumn + listIndent(text, podSpec))}- ${entry}` };
}

/** How far the file indents a list under its key, read from the pod spec's own lists (`containers:`). */
function listIndent(text: string, podSpec: YAMLMap): number {
  for (const pair of podSpec.items) {
    const value = pair.value as Node | undefined;
    if (isSeq(value) && !value.flow && value.items[0] && (pair.key as Node).range) {
      return columnOf(text, text.lastIndexOf('-', (value.items[0] as Node).range![0])) - columnOf(text, (pair.key as Node).range![0]);
    }
  }
  return 2;
}

/** The end of the last scalar inside `node` (a nested block collection's range runs on past comments and blank lines). */
function lastContentEnd(node: Node): number {
  if (isMap(node) || isSeq(node)) {
    const last = node.items.at(-1) as unknown;
    if (last === undefined) return node.range![1];
    if (isMap(node)) {
      const pair = last as { key: Node; value: Node | null };
      return pair.value && (isMap(pair.value) || isSeq(pair.value) || isScalar(pair.value)) && pair.value.range ? lastContentEnd(pair.value) : pair.key.range![1];
    }
    return lastContentEnd(last as Node);
  }
  return node.range![1];
}


/** The offset where the line holding `offset` ends (before its line break, CR included). */
function lineEndAfter(text: string, offset: number): number {
  if (offset > 0 && text[offset - 1] === '\n') return text[offset - 2] === '\r' ? offset - 2 : offset - 1;
  const newline = text.indexOf('\n', offset);
  if (newline === -1) return text.length;
  return text[newline - 1] === '\r' ? newline - 1 : newline;
}
