/**
 * Remote bases rendered by the rewriter itself, never fetched by kustomize: an overlay whose
 * kustomization lists a Git URL (`https://host/org/repo//path?ref=v1`, kustomize's remote target
 * grammar) is built in a copy of the checkout in which each such URL is replaced by a directory the
 * rewriter cloned (anonymously, shallow, at the ref; https only, plain http only under a prefix the
 * operator named), so the proof renders what Argo CD or Flux render and nothing reaches the network
 * from kustomize. What a base fetched that way names is held to the same rule as the checkout (no
 * read outside the copy, no URL but a base) by the gate the proof runs on the copy (build-gate.ts). A base that cannot be fetched so makes the build
 * unprovable, and the change is refused.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { parseDocument } from 'yaml';
import { readBounded } from '../../util/bounded-body.ts';
import { REMOTE_RESOURCE } from '../edit/kustomize.ts';
import { plainHttpNamed } from '../git/credential-scope.ts';
import { kustomizationsBuiltFrom } from './build-gate.ts';
import { items, scalarSite } from '../edit/yaml-scalars.ts';
import { RenderProofError } from './tools.ts';

const run = promisify(execFile);
/** How deep remote bases may list remote bases of their own. */
const MAX_DEPTH = 3;
const CLONE_TIMEOUT_MS = 60_000;
/** A remote base's checkout: kustomize bases are a few files; a clone past this is stopped. */
const CLONE_MAX_BYTES = 64 * 1024 * 1024;

export interface RemoteBase {
  /** What `git clone` is given. */
  readonly repoURL: string;
  /** The directory in the repository (empty: its root). */
  readonly path: string;
  readonly ref: string | undefined;
}

/**
 * A remote target as kustomize reads one: `[git::]URL[//path][?ref=R|?version=R]`, the URL https,
 * http, ssh or `git@host:org/repo`, or the `github.com/org/repo[/path]` shorthand. Undefined when
 * it is not one.
 */
export function parseRemoteBase(value: string): RemoteBase | undefined {
  let text = value.replace(/^git::/, '');
  let ref: string | undefined;
  const query = text.indexOf('?');
  if (query >= 0) {
    const params = new URLSearchParams(text.slice(query + 1));
    ref = params.get('ref') ?? params.get('version') ?? undefined;
    text = text.slice(0, query);
  }
  if (/^github\.com\//.test(text)) {
    const [org, repo, ...rest] = text.slice('github.com/'.length).replace('//', '/').split('/');
    if (!org || !repo) return undefined;
    return { repoURL: `https://github.com/${org}/${repo.replace(/\.git$/, '')}.git`, path: rest.filter(Boolean).join('/'), ref };
  }
  if (!/^(https?|ssh):\/\//.test(text) && !/^git@/.test(text)) return undefined;
  const schemeEnd = text.indexOf('://') >= 0 ? text.indexOf('://') + 3 : 0;
  const separator = text.indexOf('//', schemeEnd);
  if (separator >= 0) return { repoURL: text.slice(0, separator), path: text.slice(separator + 2).replace(/\/+$/, ''), ref };
  const dotGit = text.indexOf('.git/', schemeEnd);
  if (dotGit >= 0) return { repoURL: text.slice(0, dotGit + 4), path: text.slice(dotGit + 5).replace(/\/+$/, ''), ref };
  // No marker: as kustomize splits it, Azure's `_git/<repo>`, else the first two segments of the path (org/repo).
  const pathStart = /^git@/.test(text) ? text.indexOf(':') + 1 : text.indexOf('/', schemeEnd) + 1;
  if (pathStart <= 0) return { repoURL: text, path: '', ref };
  const segments = text.slice(pathStart).split('/');
  const azure = segments.indexOf('_git');
  const repoSegments = azure >= 0 ? azure + 2 : 2;
  if (segments.length <= repoSegments) return { repoURL: text.replace(/\/+$/, ''), path: '', ref };
  return {
    repoURL: `${text.slice(0, pathStart)}${segments.slice(0, repoSegments).join('/')}`,
    path: segments.slice(repoSegments).filter(Boolean).join('/'),
    ref,
  };
}

/** Which remote bases may be fetched: over https, or over plain http under a prefix the operator named. */
export interface RemoteBasePolicy {
  readonly httpPrefixes?: readonly string[];
  /** The most a base's clone may write (default 64 MiB). */
  readonly maxCloneBytes?: number;
}

/** Bytes under `dir` (files as they are, links not followed); what vanishes meanwhile (git moves its temporary packs) counts 0. */
function bytesUnder(dir: string): number {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  let total = 0;
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    try {
      total += lstatSync(join(entry.parentPath, entry.name)).size;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** The bases one proof fetched, each once for all its builds (before and after the change); removed when the proof ends. */
export class FetchedBases {
  readonly #clones = new Map<string, string>();

  get(key: string): string | undefined {
    return this.#clones.get(key);
  }

  remember(key: string, clone: string): void {
    this.#clones.set(key, clone);
  }

  removeAll(): void {
    for (const dir of this.#clones.values()) rmSync(dir, { recursive: true, force: true });
    this.#clones.clear();
  }
}

/**
 * A copy of the checkout at `root` in which every remote base that a kustomization lists (and
 * those the fetched bases list, to a bounded depth) is a local directory, each fetched once per
 * proof (`fetched`). Returns the copy's root.
 */
export async function withRemoteBases(root: string, dir: string, policy: RemoteBasePolicy, fetched: FetchedBases): Promise<string> {
  const rootReal = realpathSync(root);
  const copy = mkdtempSync(join(tmpdir(), 'image-clone-remote-'));
  cpSync(rootReal, copy, { recursive: true, verbatimSymlinks: true, filter: (src) => !src.split(sep).includes('.git') });
  const store = join(copy, '.image-clone-remote-bases');
  try {
    const start = join(copy, relative(rootReal, dir));
    for (let depth = 0; ; depth++) {
      const rewritten = await localiseOnce(copy, start, store, policy, fetched);
      if (rewritten === 0) break;
      if (depth >= MAX_DEPTH) throw new RenderProofError(`remote bases list remote bases more than ${MAX_DEPTH} levels deep; not rendered`);
    }
    // What the fetched bases name is held to the checkout's rule by the gate the proof runs on the copy (build-gate.ts).
    return copy;
  } catch (error) {
    rmSync(copy, { recursive: true, force: true });
    throw error;
  }
}

/** Replaces each remote base of the kustomizations the build of `start` reads by a fetched directory (or file); how many were replaced. */
async function localiseOnce(copy: string, start: string, store: string, policy: RemoteBasePolicy, fetched: FetchedBases): Promise<number> {
  let replaced = 0;
  for (const file of kustomizationsBuiltFrom(start).filter((f) => statSync(f, { throwIfNoEntry: false })?.isFile())) {
    const text = readFileSync(file, 'utf8');
    const doc = parseDocument(text);
    const edits: Array<{ start: number; end: number; text: string }> = [];
    for (const field of ['resources', 'bases', 'components']) {
      for (const node of items(doc.get(field, true) as Parameters<typeof items>[0])) {
        const site = scalarSite(text, node);
        if (!site || !REMOTE_RESOURCE.test(site.value)) continue;
        // A URL to one manifest (kustomize downloads it over HTTP): fetched the same way, anonymously and bounded.
        if (/\.(ya?ml|json)(\?.*)?$/i.test(site.value) && /^https?:\/\//.test(site.value)) {
          const local = await fetchFile(site.value, store, policy);
          edits.push({ start: site.start, end: site.end, text: JSON.stringify(relative(dirname(file), local)) });
          continue;
        }
        const base = parseRemoteBase(site.value);
        if (!base) throw new RenderProofError(`${relative(copy, file)}: ${field} names ${site.value}, which is not a remote base the rewriter can fetch`);
        const checkout = await fetchBase(base, store, policy, fetched);
        const target = resolve(checkout, base.path);
        if (target !== checkout && !target.startsWith(checkout + sep))
          throw new RenderProofError(`${relative(copy, file)}: the remote base ${site.value} leads outside its repository`);
        if (!existsSync(target))
          throw new RenderProofError(
            `${relative(copy, file)}: the remote base ${site.value} has no ${base.path || 'root'} at ${base.ref ?? 'its default branch'}`,
          );
        edits.push({ start: site.start, end: site.end, text: JSON.stringify(relative(dirname(file), target) || '.') });
      }
    }
    if (edits.length === 0) continue;
    let out = text;
    for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
    writeFileSync(file, out);
    replaced += edits.length;
  }
  return replaced;
}

/** A shallow anonymous clone of the base's repository at its ref, once per proof. */
async function fetchBase(base: RemoteBase, store: string, policy: RemoteBasePolicy, fetched: FetchedBases): Promise<string> {
  const key = `${base.repoURL}@${base.ref ?? ''}`;
  const known = fetched.get(key);
  if (known) {
    const dest = join(store, createHash('sha256').update(key).digest('hex').slice(0, 16));
    if (!existsSync(dest)) cpSync(known, dest, { recursive: true, verbatimSymlinks: true });
    return dest;
  }
  const url = base.repoURL;
  const httpAllowed = plainHttpNamed(url, policy.httpPrefixes ?? []);
  if (!url.startsWith('https://') && !httpAllowed)
    throw new RenderProofError(`the remote base ${url} is not fetched: only https (or plain http under a prefix named with --credentials-for) is, anonymously`);
  if (base.ref !== undefined && (base.ref.startsWith('-') || !/^[\w./-]+$/.test(base.ref)))
    throw new RenderProofError(`the remote base ${url} names an unsafe ref`);
  const dest = join(store, createHash('sha256').update(key).digest('hex').slice(0, 16));
  const cache = mkdtempSync(join(tmpdir(), 'image-clone-base-'));
  // The clone is watched as it writes: a hostile base could otherwise fill the rewriter's disk within its time.
  const maxBytes = policy.maxCloneBytes ?? CLONE_MAX_BYTES;
  const stop = new AbortController();
  let tooLarge = false;
  const watch = setInterval(() => {
    if (bytesUnder(cache) > maxBytes) {
      tooLarge = true;
      stop.abort();
    }
  }, 250);
  try {
    await run(
      'git',
      [
        '-c',
        'protocol.allow=never',
        '-c',
        `protocol.${url.startsWith('http://') ? 'http' : 'https'}.allow=always`,
        'clone',
        '--quiet',
        '--depth',
        '1',
        ...(base.ref ? ['--branch', base.ref] : []),
        '--',
        url,
        cache,
      ],
      {
        timeout: CLONE_TIMEOUT_MS,
        signal: stop.signal,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' },
      },
    );
    if (bytesUnder(cache) > maxBytes) tooLarge = true;
    if (tooLarge) throw new Error('too large');
  } catch (error) {
    rmSync(cache, { recursive: true, force: true });
    if (tooLarge)
      throw new RenderProofError(
        `the remote base ${url} is more than ${Math.round(maxBytes / 1024 / 1024)} MiB; not fetched (a kustomize base is a few files)`,
      );
    const detail = ((error as { stderr?: string }).stderr ?? '').trim().split('\n').pop() ?? '';
    throw new RenderProofError(
      `the remote base ${url}${base.ref ? ` at ${base.ref}` : ''} could not be fetched without credentials (${detail || (error as Error).message})`,
    );
  } finally {
    clearInterval(watch);
  }
  rmSync(join(cache, '.git'), { recursive: true, force: true });
  fetched.remember(key, cache);
  cpSync(cache, dest, { recursive: true, verbatimSymlinks: true });
  return dest;
}

/** A manifest at a URL, fetched anonymously (https, or plain http under a prefix the operator named), at most 8 MiB. */
async function fetchFile(url: string, store: string, policy: RemoteBasePolicy): Promise<string> {
  const httpAllowed = plainHttpNamed(url, policy.httpPrefixes ?? []);
  if (!url.startsWith('https://') && !httpAllowed)
    throw new RenderProofError(
      `the remote resource ${url} is not fetched: only https (or plain http under a prefix named with --credentials-for) is, anonymously`,
    );
  let bytes: Buffer | undefined;
  try {
    // The whole answer within the time, not each chunk: a server sending a byte a minute is given up.
    const response = await request(url, {
      method: 'GET',
      headersTimeout: CLONE_TIMEOUT_MS,
      bodyTimeout: CLONE_TIMEOUT_MS,
      signal: AbortSignal.timeout(CLONE_TIMEOUT_MS),
    });
    if (response.statusCode !== 200) {
      await response.body.dump().catch(() => undefined);
      throw new Error(`HTTP ${response.statusCode}`);
    }
    bytes = await readBounded(response.body, 8 * 1024 * 1024);
    if (bytes === undefined) throw new Error('larger than 8 MiB');
  } catch (error) {
    throw new RenderProofError(`the remote resource ${url} could not be fetched without credentials (${(error as Error).message})`);
  }
  mkdirSync(store, { recursive: true });
  const local = join(store, `${createHash('sha256').update(url).digest('hex').slice(0, 16)}.yaml`);
  writeFileSync(local, bytes);
  return local;
}
