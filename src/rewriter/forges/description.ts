/**
 * The pull request a reviewer reads: what moves (a table of workload, container, old image, new
 * image, digest, platforms and size), which files change, and why it is safe; plus a hidden marker
 * by which the controller recognises its own pull requests and the rows it already described, so a
 * later batch on the same branch adds to the description instead of replacing it.
 */
import { createHash } from 'node:crypto';
import { CLUSTER_NAME, type HandoffRecord } from '../../handoff/schema.ts';
import { isSecretName, pullCell, pullStatement, type RecordedPull } from '../../image/backup-pull.ts';

export const MARKER_PREFIX = '<!-- image-clone-controller:';

export interface DescribedImage {
  /** The cluster the workload runs in (absent in rows of older descriptions, and of older records). */
  readonly cluster?: string;
  readonly workload: string;
  readonly container: string;
  readonly from: string;
  readonly to: string;
  readonly digest: string;
  readonly platforms: readonly string[];
  readonly sizeBytes: number;
  /** How the nodes will pull the new image (absent in rows of older descriptions). */
  readonly pull?: RecordedPull;
  /** Who applies the workload, nearest first (HelmRelease, then the Kustomization that applies it). */
  readonly chain?: readonly string[];
  /** The files its change is in, where they are not the workload's own manifest. */
  readonly files?: readonly string[];
  /** What the render proof left out of its comparison because it differs on every render of the unchanged chart. */
  readonly varies?: readonly string[];
  /** How the edit was found where no convention named it (the chart's values found by rendering, a guard it sets). */
  readonly how?: readonly string[];
  /** The signature that verified at the backup, where the operator asks for one (--verify-signature). */
  readonly signature?: { readonly key: string; readonly scheme: string; readonly signer?: string };
}

/** What the edit of one record says beside its rows: the files it is in, what varies on every render, how it was found. */
export interface EditNotes {
  readonly files?: readonly string[];
  readonly varies?: readonly string[];
  readonly how?: readonly string[];
}

/** The rows of a batch of records (`notes`: by record id, what its edit says). */
export function rowsOf(records: readonly HandoffRecord[], notes?: ReadonlyMap<string, EditNotes>): DescribedImage[] {
  return records.flatMap((r) =>
    r.images.map((i) => ({
      ...(r.cluster ? { cluster: r.cluster.name } : {}),
      workload: `${r.workload.namespace}/${r.workload.kind}/${r.workload.name}`,
      container: `${i.container}${i.init ? ' (init)' : ''}`,
      from: i.source,
      to: i.backup,
      digest: i.digest,
      platforms: i.platforms,
      sizeBytes: i.sizeBytes,
      ...(i.signature ? { signature: i.signature } : {}),
      ...(r.pull ? { pull: r.pull } : {}),
      ...(r.owner?.chain ? { chain: r.owner.chain } : {}),
      ...(notes?.get(r.id)?.files?.length ? { files: notes.get(r.id)!.files! } : {}),
      ...(notes?.get(r.id)?.varies?.length ? { varies: notes.get(r.id)!.varies! } : {}),
      ...(notes?.get(r.id)?.how?.length ? { how: notes.get(r.id)!.how! } : {}),
    })),
  );
}

/**
 * A stable id for a set of rows: the same change always has the same id. The cluster is not in it:
 * the same move of the same workload needed by two clusters is one change to the repository.
 */
export function changeId(rows: readonly DescribedImage[]): string {
  const lines = [...new Set(rows.map((r) => `${r.workload}|${r.container}|${r.from}|${r.to}@${r.digest}`))].sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}

/**
 * The rows a previous description of ours carried (from its marker, the last in the body, where we
 * write it: a file name in the "Files changed" line above it may spell a marker too), or none.
 */
export function rowsFromDescription(body: string | undefined): DescribedImage[] {
  const start = body?.lastIndexOf(MARKER_PREFIX) ?? -1;
  if (start < 0) return [];
  const end = body!.indexOf('-->', start);
  try {
    const parsed = JSON.parse(body!.slice(start + MARKER_PREFIX.length, end).trim()) as { rows?: unknown };
    // Whoever may edit the description may edit these: each row is read field by field, and one that is not ours in shape is dropped.
    return Array.isArray(parsed.rows) ? parsed.rows.slice(0, MAX_ROWS).flatMap((row) => describedRow(row) ?? []) : [];
  } catch {
    return [];
  }
}

/** More rows than any change of ours holds is not a description of ours. */
const MAX_ROWS = 10_000;

const text = (v: unknown): v is string => typeof v === 'string' && v.length <= 2_048;
const texts = (v: unknown): v is string[] => Array.isArray(v) && v.length <= 64 && v.every(text);

/** A row as this controller writes it, with only its own fields, or undefined. */
function describedRow(value: unknown): DescribedImage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Record<string, unknown>;
  if (![r.workload, r.container, r.from, r.to, r.digest].every(text) || !texts(r.platforms)) return undefined;
  if (typeof r.sizeBytes !== 'number' || !Number.isSafeInteger(r.sizeBytes) || r.sizeBytes < 0) return undefined;
  if (r.cluster !== undefined && !(typeof r.cluster === 'string' && CLUSTER_NAME.test(r.cluster))) return undefined;
  if (![r.chain, r.files, r.varies, r.how].every((v) => v === undefined || texts(v))) return undefined;
  const pull = describedPull(r.pull);
  const signature = describedSignature(r.signature);
  if (pull === null || signature === null) return undefined;
  const optional = <K extends keyof DescribedImage>(key: K) => (r[key] !== undefined ? { [key]: r[key] } : {});
  return {
    ...optional('cluster'),
    workload: r.workload as string,
    container: r.container as string,
    from: r.from as string,
    to: r.to as string,
    digest: r.digest as string,
    platforms: r.platforms as string[],
    sizeBytes: r.sizeBytes,
    ...(pull ? { pull } : {}),
    ...optional('chain'),
    ...optional('files'),
    ...optional('varies'),
    ...optional('how'),
    ...(signature ? { signature } : {}),
  } as DescribedImage;
}

/** A row's pull, rebuilt from its own fields (a Secret's name as Kubernetes names one); undefined if absent, null if not ours. */
function describedPull(value: unknown): RecordedPull | undefined | null {
  if (value === undefined) return undefined;
  const pull = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (pull.via === 'anonymous' || pull.via === 'node') return { via: pull.via };
  const listedBy = pull.listedBy;
  if (
    pull.via === 'secret' &&
    typeof pull.secret === 'string' &&
    isSecretName(pull.secret) &&
    (listedBy === 'pod' || listedBy === 'service-account' || listedBy === 'none')
  )
    return { via: 'secret', secret: pull.secret, listedBy };
  return null;
}

/** A row's verified signature, rebuilt from its own fields; undefined if absent, null if not ours. */
function describedSignature(value: unknown): DescribedImage['signature'] | undefined | null {
  if (value === undefined) return undefined;
  const signature = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (!text(signature.key) || !text(signature.scheme) || !(signature.signer === undefined || text(signature.signer))) return null;
  return { key: signature.key, scheme: signature.scheme, ...(signature.signer !== undefined ? { signer: signature.signer as string } : {}) };
}

/** Earlier rows, replaced by newer ones for the same workload and container of the same cluster (another cluster's rows stay). */
export function mergeRows(earlier: readonly DescribedImage[], later: readonly DescribedImage[]): DescribedImage[] {
  const key = (r: DescribedImage) => `${r.workload}|${r.container}|${r.cluster ?? ''}`;
  const merged = new Map(earlier.map((r) => [key(r), r]));
  for (const r of later) merged.set(key(r), r);
  return [...merged.values()].sort((a, b) => key(a).localeCompare(key(b)));
}

export function pullRequestTitle(rows: readonly DescribedImage[]): string {
  const workloads = new Set(rows.map((r) => r.workload));
  return `Move ${workloads.size} workload${workloads.size === 1 ? '' : 's'} to backed-up images`;
}

/**
 * Text from the cluster or a repository (names, paths, a Kustomization's `path`), made inert in
 * Markdown: no link, image, HTML, emphasis or table cell can be written through it.
 */
export function inert(text: string): string {
  // A word that GitHub would turn into a link (a scheme, `www.`) goes into a code span; elsewhere
  // Markdown's own characters, and `@` (a mention), are escaped.
  return text
    .replace(/\r?\n/g, ' ')
    .split(/(\s+)/)
    .map((word) => {
      const escaped = (t: string) => t.replace(/[\\`*_[\]<>|#!~@]/g, (c) => `\\${c}`);
      if (!/:\/\/|^\(?www\.|^[\w.+-]+@[\w-]+\./i.test(word)) return escaped(word);
      // The link-like part in a code span, the punctuation around it (a sentence's parentheses, commas) outside.
      const [, lead = '', core = '', trail = ''] = /^([(]*)(.*?)([),;]*)$/.exec(word) ?? [];
      return `${escaped(lead)}${code(core)}${escaped(trail)}`;
    })
    .join('');
}

/** Inside a code span: a backtick would end it, a pipe the table cell. */
function code(text: string): string {
  return `\`${text.replace(/`/g, "'").replace(/\|/g, '\\|').replace(/\r?\n/g, ' ')}\``;
}

export function pullRequestBody(rows: readonly DescribedImage[], files: readonly string[]): string {
  // The cluster column where any row names one (several clusters may share this pull request).
  const clustered = rows.some((r) => r.cluster !== undefined);
  const table = rows.map(
    (r) =>
      `|${clustered ? ` ${r.cluster ? inert(r.cluster) : 'not recorded'} |` : ''} ${inert(r.workload)} | ${inert(r.container)} | ${code(r.from)} | ${code(r.to)} | ${code(r.digest)} | ${r.platforms.length ? inert(r.platforms.join(', ')) : 'single platform'} | ${formatSize(r.sizeBytes)} | ${pullCell(r.pull)} |`,
  );
  return [
    'This change moves workloads onto copies of their images in our own registry, so a deleted, rate-limited or unreachable public image cannot stop them from starting.',
    '',
    `|${clustered ? ' Cluster |' : ''} Workload | Container | Old image | New image | Digest | Platforms | Size | Nodes pull it |`,
    `|${clustered ? '---|' : ''}---|---|---|---|---|---|---|---|`,
    ...table,
    ...ownerChains(rows),
    ...verifiedSignatures(rows),
    '',
    `**Why this is safe.** Each new reference pins the digest of the image the workload runs today (where Helm values without a digest key are edited, the backup's tag names it: that tag was copied from the same digest). The copy was made byte for byte, manifests included, so the digest in the backup registry is the same: it is the very same image, served from another place. Nothing else in the manifests changes${rows.some((r) => r.chain?.some((c) => c.startsWith('HelmRelease '))) ? '; each HelmRelease change was rendered with Helm before and after, and only container images differ' : ''}. ${pullStatement(rows.map((r) => r.pull))}`,
    '',
    `**Files changed:** ${files.map(code).join(', ') || 'none'}`,
    '',
    // `<` and `>` escaped inside the JSON, so no text in it can end the comment.
    `${MARKER_PREFIX} ${JSON.stringify({ change: changeId(rows), rows })
      .replace(/</g, '\\u003c')
      .replace(/>/g, '\\u003e')} -->`,
    '',
  ].join('\n');
}

/** What was verified, per row, where the operator asks for signatures: at the backup, with which key or identity. */
function verifiedSignatures(rows: readonly DescribedImage[]): string[] {
  const signed = rows.filter((r) => r.signature);
  if (signed.length === 0) return [];
  return [
    '',
    '**Signatures verified at the backup** (what the nodes will pull), with the keys and identities the operator set:',
    '',
    ...signed.map(
      (r) =>
        `- ${inert(r.workload)} ${inert(r.container)}: ${code(r.to)} verified with ${code(r.signature!.key)} (${inert(r.signature!.scheme)}${r.signature!.signer ? `, signed by ${code(r.signature!.signer)}` : ''})`,
    ),
  ];
}

/** Why each file changes: the chain from each workload to what declares it in Git. */
function ownerChains(rows: readonly DescribedImage[]): string[] {
  const chains = new Map(rows.flatMap((r) => (r.chain?.length ? [[r.workload, r] as const] : [])));
  if (chains.size === 0) return [];
  const where = (files: readonly string[] | undefined) => (files?.length ? `; changed in ${files.map(code).join(', ')}` : '');
  const how = (what: readonly string[] | undefined) => (what?.length ? `; ${what.map(inert).join('; ')}` : '');
  const varies = (what: readonly string[] | undefined) =>
    what?.length ? `; left out of the render comparison because it varies on every render of the unchanged chart: ${what.map(code).join(', ')}` : '';
  return [
    '',
    '**Who applies these workloads** (why these files change):',
    '',
    ...[...chains].map(([workload, r]) => `- ${inert(workload)} ← ${r.chain!.map(inert).join(' ← ')}${where(r.files)}${how(r.how)}${varies(r.varies)}`),
  ];
}

function formatSize(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
