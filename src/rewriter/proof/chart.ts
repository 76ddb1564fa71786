/**
 * Fetches a Helm chart's package (.tgz) the way Helm does, to render it: from a chart repository,
 * `index.yaml` then the package it lists for the version; from an OCI registry, the chart's
 * manifest then its `application/vnd.cncf.helm.chart.content.v1.tar+gzip` layer, through this
 * project's own registry client (token flow, TLS checks, plain HTTP only where the source says
 * `insecure`). Every body is bounded and every digest that is given is checked.
 */
import { createHash } from 'node:crypto';
import semver from 'semver';
import { parse } from 'yaml';
import type { ChartLocation } from '../../handoff/schema.ts';
import { ImageCloneError } from '../../errors.ts';
import { createRegistryStack, type RegistryStack } from '../../registry/index.ts';
import { readBounded } from '../../util/bounded-body.ts';
import { plainHttpNamed } from '../git/credential-scope.ts';

/** A chart repository's index.yaml as downloaded; only the chart's own entries are then parsed. */
const INDEX_MAX_BYTES = 32 * 1024 * 1024;
/** An index that is not laid out as Helm writes it is parsed whole only up to this size. */
const INDEX_PARSED_WHOLE_MAX_BYTES = 2 * 1024 * 1024;
const CHART_MAX_BYTES = 20 * 1024 * 1024;
export const HELM_CHART_LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';

export class ChartFetchError extends ImageCloneError {
  override name = 'ChartFetchError';
}

export interface FetchedChart {
  readonly bytes: Buffer;
  readonly version: string;
  /** Where it came from, for messages: `oci://host/path/name:1.2.3` or the package's URL. */
  readonly from: string;
}

/**
 * The chart's package, fetched without credentials (the rewriter holds none for chart sources;
 * public charts need none). `caFile` adds trusted CAs, as for registries.
 */
export async function fetchChart(
  location: ChartLocation,
  options: { readonly caFile?: string; readonly httpPrefixes?: readonly string[] } = {},
): Promise<FetchedChart> {
  const host = location.repoURL.replace(/^[a-z]+:\/\//, '').split('/')[0]!;
  // The chart's source is a tenant's to name (a HelmRepository, an Application): over plain http
  // (an http URL, or an OCI registry marked insecure) only where the operator named that prefix.
  const plain = location.repoURL.startsWith('http://') ? location.repoURL : location.insecure ? `http://${host}/` : undefined;
  if (plain !== undefined && !plainHttpNamed(`${plain.replace(/\/+$/, '')}/`, options.httpPrefixes ?? []))
    throw new ChartFetchError(
      `the chart repository ${plain} is plain http, which is not fetched unless the operator names it (--credentials-for ${new URL(plain).origin}/)`,
    );
  const stack = createRegistryStack({ ...(options.caFile ? { caFile: options.caFile } : {}), insecureRegistries: location.insecure ? [host] : [] });
  try {
    return await (location.repoURL.startsWith('oci://') ? fetchOciChart(location, stack) : fetchRepositoryChart(location, stack));
  } finally {
    await stack.close();
  }
}

async function fetchRepositoryChart(location: ChartLocation, stack: RegistryStack): Promise<FetchedChart> {
  const indexUrl = `${location.repoURL}/index.yaml`;
  const index = (await get(stack, indexUrl, INDEX_MAX_BYTES)).toString('utf8');
  const entries = indexEntries(index, location.name, indexUrl).filter((e) => typeof e.version === 'string' && Array.isArray(e.urls) && e.urls.length > 0);
  if (entries.length === 0) throw new ChartFetchError(`${indexUrl} lists no chart named ${location.name}`);
  const version = chooseVersion(
    entries.map((e) => e.version!),
    location.version,
  );
  if (version === undefined) throw new ChartFetchError(`${indexUrl} lists no version of ${location.name} matching ${location.version}`);
  const entry = entries.find((e) => e.version === version)!;
  const packageUrl = new URL(entry.urls![0]!, `${location.repoURL}/`);
  // A package elsewhere than the repository (a CDN, a release page) is fetched only over https: a
  // tenant's index.yaml must not steer the rewriter to a plain-http internal service.
  if (packageUrl.origin !== new URL(location.repoURL).origin && packageUrl.protocol !== 'https:')
    throw new ChartFetchError(
      `${indexUrl} lists the package of ${location.name} ${version} at a ${packageUrl.protocol.replace(/:$/, '')} URL on another host; only https is fetched from elsewhere`,
    );
  const url = packageUrl.toString();
  const bytes = await get(stack, url, CHART_MAX_BYTES);
  if (entry.digest && createHash('sha256').update(bytes).digest('hex') !== entry.digest.replace(/^sha256:/, '')) {
    throw new ChartFetchError(`${url}: the package does not match the digest index.yaml gives for it`);
  }
  return { bytes, version, from: url };
}

async function fetchOciChart(location: ChartLocation, stack: RegistryStack): Promise<FetchedChart> {
  const rest = location.repoURL.slice('oci://'.length);
  const slash = rest.indexOf('/');
  const registry = slash < 0 ? rest : rest.slice(0, slash);
  const repository = [slash < 0 ? '' : rest.slice(slash + 1), location.name].filter(Boolean).join('/');
  const version = location.version;
  const from = `oci://${registry}/${repository}:${version ?? '?'}`;
  if (!version || (semver.valid(version) === null && !/^[\w][\w.-]*$/.test(version))) {
    throw new ChartFetchError(`${from}: the chart's version is not known (the release's status names none, and a range cannot be resolved in an OCI registry)`);
  }
  const repo = { registry, repository };
  const client = stack.client;
  const manifest = await client.getManifest(repo, version);
  const layers = (JSON.parse(manifest.bytes.toString('utf8')) as { layers?: Array<{ mediaType?: string; digest?: string }> }).layers ?? [];
  const layer = layers.find((l) => l.mediaType === HELM_CHART_LAYER && typeof l.digest === 'string');
  if (!layer) throw new ChartFetchError(`${from} is not a Helm chart (no ${HELM_CHART_LAYER} layer)`);
  return { bytes: await client.readBlob(repo, layer.digest!, CHART_MAX_BYTES), version, from };
}

type IndexEntry = { version?: string; urls?: string[]; digest?: string };

/**
 * The entries of one chart in an index.yaml, without parsing the whole index: a large repository's
 * index (tens of MiB, a tenant's HelmRepository may serve anything) parsed whole took more memory
 * than the rewriter's container has. Helm writes `entries:` at column 0 and each chart's name at
 * column 2, its versions as a list at the same column; that block alone is cut out and parsed. An
 * index laid out otherwise is parsed whole only when small.
 */
export function indexEntries(index: string, name: string, from: string): IndexEntry[] {
  const lines = index.split('\n');
  const entriesAt = lines.findIndex((l) => /^entries:\s*$/.test(l));
  if (entriesAt >= 0) {
    const keyAt = lines.findIndex((l, i) => i > entriesAt && (l === `  ${name}:` || l === `  "${name}":` || l === `  '${name}':`));
    if (keyAt < 0) return [];
    let end = keyAt + 1;
    // The block runs while lines are list items at column 2 or anything deeper (or blank).
    while (end < lines.length && (lines[end] === '' || /^ {2}- /.test(lines[end]!) || /^ {3,}/.test(lines[end]!))) end++;
    const block = parse(['entries:', `  ${JSON.stringify(name)}:`, ...lines.slice(keyAt + 1, end)].join('\n')) as {
      entries?: Record<string, IndexEntry[]>;
    } | null;
    const found = block?.entries?.[name];
    return Array.isArray(found) ? found : [];
  }
  if (Buffer.byteLength(index) > INDEX_PARSED_WHOLE_MAX_BYTES)
    throw new ChartFetchError(
      `${from} is ${Buffer.byteLength(index)} bytes and not laid out as Helm writes an index; not read (at most ${INDEX_PARSED_WHOLE_MAX_BYTES} bytes are parsed whole)`,
    );
  const whole = parse(index) as { entries?: Record<string, IndexEntry[]> } | null;
  const found = whole?.entries?.[name];
  return Array.isArray(found) ? found : [];
}

/** The version to render: the one named, else the newest that satisfies the range (Helm's comma-separated constraints included), else the newest release. */
export function chooseVersion(versions: readonly string[], wanted: string | undefined): string | undefined {
  if (wanted !== undefined && versions.includes(wanted)) return wanted;
  const valid = versions.filter((v) => semver.valid(v, { loose: true }) !== null);
  if (wanted === undefined || wanted === '' || wanted === '*') return semver.maxSatisfying(valid, '*', { loose: true }) ?? undefined;
  const range = semver.validRange(wanted.replace(/,/g, ' '), { loose: true });
  if (range === null) return undefined;
  return semver.maxSatisfying(valid, range, { loose: true }) ?? undefined;
}

async function get(stack: RegistryStack, url: string, limit: number): Promise<Buffer> {
  const what = `GET ${url}`;
  const response = await stack.transport.send({ method: 'GET', url, what });
  if (response.status !== 200) {
    await response.body.dump().catch(() => undefined);
    const hint = response.status === 401 || response.status === 403 ? ' (the chart repository wants credentials; the rewriter has none for it)' : '';
    throw new ChartFetchError(`${what}: HTTP ${response.status}${hint}`);
  }
  const bytes = await readBounded(response.body, limit);
  if (bytes === undefined) throw new ChartFetchError(`${what}: larger than ${limit / 1024 / 1024} MiB`);
  return bytes;
}
