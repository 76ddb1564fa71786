/**
 * One small interface over the forges that host GitOps repositories: find the pull requests of a
 * branch, open one, update one; and how a repository URL names its repository on a forge.
 * Implementations: Gitea/Forgejo (./gitea.ts), GitHub and GitHub Enterprise Server (./github.ts),
 * GitLab (./gitlab.ts), Bitbucket Cloud (./bitbucket.ts), Bitbucket Data Center (./bitbucket-server.ts),
 * Azure DevOps Services and Server (./azure-devops.ts), registered in ./registry.ts.
 */
import { ConfigError } from '../../errors.ts';

/** The forges pull requests open on (--forge). A new one: its module, and its line in ./registry.ts. */
export const FORGE_KINDS = ['gitea', 'github', 'gitlab', 'bitbucket', 'bitbucket-server', 'azure-devops'] as const;
export type ForgeKind = (typeof FORGE_KINDS)[number];
export const isForgeKind = (kind: string): kind is ForgeKind => (FORGE_KINDS as readonly string[]).includes(kind);

export interface PullRequest {
  readonly number: number;
  readonly url: string;
  readonly state: 'open' | 'closed' | 'merged';
  readonly head: string;
  readonly base: string;
  readonly title: string;
  readonly body: string;
  /** Where the forge versions a pull request for its updates (Bitbucket Data Center): the version read. */
  readonly version?: number;
}

export interface PullRequestSpec {
  readonly head: string;
  readonly base: string;
  readonly title: string;
  readonly body: string;
  readonly draft?: boolean;
  readonly labels?: readonly string[];
}

export interface Forge {
  readonly kind: ForgeKind;
  /**
   * Pull requests from `head` of this very repository into `base`, any state, newest first. A fork's
   * pull request from a branch of the same name is never one of them: a tenant who forks the
   * repository could otherwise have theirs updated with our rows, or closed to decline our change.
   */
  pullRequests(head: string, base: string): Promise<PullRequest[]>;
  open(spec: PullRequestSpec): Promise<PullRequest>;
  update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest>;
}

export interface ForgeOptions {
  /**
   * Chosen from the URL when absent: github.com → github, gitlab.* → gitlab, bitbucket.org → bitbucket,
   * dev.azure.com and *.visualstudio.com → azure-devops, anything else → gitea.
   */
  readonly kind?: ForgeKind;
  /** API base URL, for self-hosted forges whose API is not at the repository's origin. */
  readonly apiBase?: string;
  readonly token: string;
  /** Extra CA certificates (PEM) the forge's TLS certificate may chain to (--ca-file). */
  readonly caFile?: string;
}

/**
 * What `pullRequests(head, base)` returns of a forge's answer: every entry read (one that cannot be
 * read fails the call: skipping it could hide our open pull request), only this repository's own
 * (`own`: a fork's has its own repository), from `head` into `base`, newest first.
 */
export function ownPullRequests<T>(answered: readonly T[], read: (raw: T) => PullRequest, own: (raw: T) => boolean, head: string, base: string): PullRequest[] {
  return answered
    .map((raw) => ({ pull: read(raw), own: own(raw) }))
    .filter(({ pull, own }) => own && pull.head === head && pull.base === base)
    .map(({ pull }) => pull)
    .sort((a, b) => b.number - a.number);
}

/** A forge's owner, group and repository names: letters, digits, `.`, `_` and `-` (never `.` or `..`). */
const NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]+$/;

/**
 * An Azure DevOps project or repository name: NAME's characters, and single spaces between words
 * (Azure allows spaces in both; a URL carries them as %20, and nothing else percent-encoded is taken).
 */
const AZURE_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]+( [A-Za-z0-9._-]+)*$/;

/**
 * The repository a URL names on its forge: `owner/name` right under the forge's root on GitHub and
 * Gitea, `group/…/name` on GitLab. The root is `/`, or the path the configured API sits under
 * (`https://host/gitea/api/v1` → `/gitea/`). Anything else is refused rather than guessed: taking the
 * last two segments of `https://host/team-a/x/y` would act on team `x`'s repository with a token the
 * operator bound to `team-a`.
 */
export function repositoryPath(repoURL: string, kind: ForgeKind = 'gitea', apiBase?: string): RepositoryPath {
  let url: URL;
  try {
    url = new URL(repoURL);
  } catch {
    throw new ConfigError(`pull requests need an http(s) repository URL, got ${JSON.stringify(repoURL)}`);
  }
  const shown = `${url.origin}${url.pathname}`;
  // The operator's API address serves its own forge: a repository on another host is not one of its repositories.
  if (apiBase !== undefined && URL.canParse(apiBase)) {
    const api = new URL(apiBase);
    // github.com and bitbucket.org answer their API on a host of its own.
    const apiHost = { 'github.com': 'api.github.com', 'bitbucket.org': 'api.bitbucket.org' }[url.hostname];
    if (api.origin !== url.origin && !(apiHost !== undefined && api.hostname === apiHost))
      throw new ConfigError(`the repository ${url.origin} is not on the forge whose API is ${api.origin} (--forge-api)`);
  }
  if (kind === 'azure-devops') return azureRepository(url, shown, apiBase);
  const root =
    apiBase !== undefined && URL.canParse(apiBase) && new URL(apiBase).origin === url.origin
      ? new URL(apiBase).pathname.replace(/\/(api(\/v\d+)?|2\.0|rest\/api\/(1\.0|latest))\/?$/, '/')
      : '/';
  const rooted = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  if (!`${rooted}/`.startsWith(root.endsWith('/') ? root : `${root}/`))
    throw new ConfigError(`the repository URL ${shown} is not under the forge's root ${url.origin}${root}`);
  const path = rooted
    .slice(root.length)
    .replace(/\.git$/, '')
    .split('/')
    .filter(Boolean);
  // Bitbucket Data Center clones at /scm/<project key>/<repository>.
  const scm = kind === 'bitbucket-server';
  if (scm && path[0] !== 'scm')
    throw new ConfigError(`cannot find the ${kind} repository in ${shown}: scm/<project>/<repository> under ${url.origin}${root} expected`);
  const parts = scm ? path.slice(1) : path;
  const bad = parts.find((part) => !NAME.test(part));
  if (bad !== undefined) throw new ConfigError(`the repository URL ${shown} has a path segment that is not a ${kind} name: ${JSON.stringify(bad)}`);
  const fits = kind === 'gitlab' ? parts.length >= 2 : parts.length === 2;
  if (!fits)
    throw new ConfigError(
      `cannot find the ${kind} repository in ${shown}: ${kind === 'gitlab' ? 'group/…/project' : 'owner/name'} under ${url.origin}${root} expected`,
    );
  return { origin: url.origin, root, owner: parts.at(-2)!, name: parts.at(-1)!, path: parts.join('/') };
}

export interface RepositoryPath {
  readonly origin: string;
  /** The forge's root under the origin (`/`, `/gitea/`; on Azure DevOps the organization's or collection's path, `/acme/`). */
  readonly root: string;
  /** The owner (on Azure DevOps: the project). */
  readonly owner: string;
  readonly name: string;
  /** The whole path under the root (a GitLab project's group/…/name; on Azure DevOps project/repository). */
  readonly path: string;
}

/**
 * An Azure DevOps repository: `<root>/<project>/_git/<repository>`, where the root is the organization
 * on dev.azure.com (`/acme/`), nothing or a collection on <organization>.visualstudio.com, and the
 * collection (`/tfs/DefaultCollection/`) on Azure DevOps Server: the API's path where --forge-api
 * names it, else whatever precedes the project. Project and repository names are read decoded (a
 * space is %20 in the URL) and held to AZURE_NAME; a URL without a project (`<root>/_git/<name>`) is
 * refused rather than guessed.
 */
function azureRepository(url: URL, shown: string, apiBase: string | undefined): RepositoryPath {
  const segments = url.pathname.split('/').filter(Boolean);
  const git = segments.indexOf('_git');
  if (git < 1 || git !== segments.length - 2)
    throw new ConfigError(`cannot find the azure-devops repository in ${shown}: <organization or collection>/<project>/_git/<repository> expected`);
  const decoded = (segment: string) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return segment;
    }
  };
  const [project, name] = [decoded(segments[git - 1]!), decoded(segments[git + 1]!)];
  const bad = [project, name].find((part) => !AZURE_NAME.test(part));
  if (bad !== undefined) throw new ConfigError(`the repository URL ${shown} has a path segment that is not an azure-devops name: ${JSON.stringify(bad)}`);
  const prefix = segments.slice(0, git - 1);
  const host = url.hostname;
  let root: string;
  if (apiBase !== undefined && URL.canParse(apiBase)) {
    root = `${new URL(apiBase).pathname.replace(/\/+$/, '')}/`;
    if (`/${prefix.join('/')}/`.replace(/^\/\/$/, '/') !== root)
      throw new ConfigError(
        `cannot find the azure-devops repository in ${shown}: <project>/_git/<repository> under ${url.origin}${root} (--forge-api) expected`,
      );
  } else {
    root = prefix.length ? `/${prefix.join('/')}/` : '/';
    if (host === 'dev.azure.com' && prefix.length !== 1)
      throw new ConfigError(
        `cannot find the azure-devops repository in ${shown}: <organization>/<project>/_git/<repository> under https://dev.azure.com expected`,
      );
    if (host !== 'dev.azure.com' && !host.endsWith('.visualstudio.com') && prefix.length === 0)
      throw new ConfigError(
        `cannot find the azure-devops repository in ${shown}: <collection>/<project>/_git/<repository> expected (or the collection's URL as --forge-api)`,
      );
  }
  const org = prefix.find((part) => !NAME.test(decoded(part)) || decoded(part) !== part);
  if (org !== undefined)
    throw new ConfigError(`the repository URL ${shown} has a path segment that is not an azure-devops name: ${JSON.stringify(decoded(org))}`);
  return { origin: url.origin, root, owner: project, name, path: `${project}/${name}` };
}

/** Why no forge call may be made for this repository URL (it names no repository of the forge's), or undefined. */
export function forgeRefusal(repoURL: string, options: Pick<ForgeOptions, 'kind' | 'apiBase'>): string | undefined {
  try {
    const kind = kindOf(repoURL, options);
    repositoryPath(repoURL, kind, options.apiBase ?? fixedApi(kind));
    return undefined;
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
}

/** Bitbucket Cloud's API is at one place: a repository elsewhere is not one of its repositories. */
export function fixedApi(kind: ForgeKind): string | undefined {
  return kind === 'bitbucket' ? 'https://api.bitbucket.org/2.0' : undefined;
}

/**
 * The forge a repository URL is on: as configured, else github.com → github, gitlab.* → gitlab,
 * bitbucket.org → bitbucket, dev.azure.com and *.visualstudio.com → azure-devops, anything else → gitea.
 */
export function kindOf(repoURL: string, options: Pick<ForgeOptions, 'kind'>): ForgeKind {
  if (options.kind) return options.kind;
  const host = URL.canParse(repoURL) ? new URL(repoURL).hostname : '';
  if (host === 'dev.azure.com' || host.endsWith('.visualstudio.com')) return 'azure-devops';
  return host === 'github.com' ? 'github' : host.startsWith('gitlab.') ? 'gitlab' : host === 'bitbucket.org' ? 'bitbucket' : 'gitea';
}
