/**
 * One small interface over the forges that host GitOps repositories: find the pull requests of a
 * branch, open one, update one. Implementations: Gitea/Forgejo (./gitea.ts). GitHub and GitLab:
 * issue #4, to be checked against their published API descriptions.
 */
import { ConfigError } from '../../errors.ts';
import { GiteaForge } from './gitea.ts';

export interface PullRequest {
  readonly number: number;
  readonly url: string;
  readonly state: 'open' | 'closed' | 'merged';
  readonly head: string;
  readonly base: string;
  readonly title: string;
  readonly body: string;
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
  readonly kind: 'gitea';
  /** Pull requests from `head` into `base`, any state, newest first. */
  pullRequests(head: string, base: string): Promise<PullRequest[]>;
  open(spec: PullRequestSpec): Promise<PullRequest>;
  update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest>;
}

export interface ForgeOptions {
  readonly kind?: 'gitea';
  /** API base URL, for self-hosted forges whose API is not at the repository's origin. */
  readonly apiBase?: string;
  readonly token: string;
}

/** `https://host/owner/name(.git)` → owner and name. */
export function repositoryPath(repoURL: string): { origin: string; owner: string; name: string } {
  let url: URL;
  try {
    url = new URL(repoURL);
  } catch {
    throw new ConfigError(`pull requests need an http(s) repository URL, got ${JSON.stringify(repoURL)}`);
  }
  const parts = url.pathname.replace(/\.git$/, '').split('/').filter(Boolean);
  if (parts.length < 2) throw new ConfigError(`cannot find owner/name in the repository URL ${url.origin}${url.pathname}`);
  return { origin: url.origin, owner: parts.at(-2)!, name: parts.at(-1)! };
}

export function forgeFor(repoURL: string, options: ForgeOptions): Forge {
  const { origin, owner, name } = repositoryPath(repoURL);
  const host = new URL(origin).hostname;
  if (options.kind === undefined && (host === 'github.com' || host.startsWith('gitlab.'))) {
    throw new ConfigError(`${host}: GitHub and GitLab pull requests are not supported yet; use --git-mode branch or commit`);
  }
  return new GiteaForge(options.apiBase ?? `${origin}/api/v1`, owner, name, options.token);
}
