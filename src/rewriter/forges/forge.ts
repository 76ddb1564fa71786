/**
 * One small interface over the forges that host GitOps repositories: find the pull requests of a
 * branch, open one, update one. Implementations: Gitea/Forgejo (./gitea.ts), GitHub and GitHub
 * Enterprise Server (./github.ts), GitLab (./gitlab.ts).
 */
import { Agent } from 'undici';
import { ConfigError } from '../../errors.ts';
import { trustedCa } from '../../util/trusted-ca.ts';
import { GiteaForge } from './gitea.ts';
import { GitHubForge } from './github.ts';
import { GitLabForge } from './gitlab.ts';

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
  readonly kind: 'gitea' | 'github' | 'gitlab';
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
  /** Chosen from the URL when absent: github.com → github, gitlab.* → gitlab, anything else → gitea. */
  readonly kind?: 'gitea' | 'github' | 'gitlab';
  /** API base URL, for self-hosted forges whose API is not at the repository's origin. */
  readonly apiBase?: string;
  readonly token: string;
  /** Extra CA certificates (PEM) the forge's TLS certificate may chain to (--ca-file). */
  readonly caFile?: string;
}

/** `https://host/owner/name(.git)` → owner and name. */
export function repositoryPath(repoURL: string): { origin: string; owner: string; name: string } {
  let url: URL;
  try {
    url = new URL(repoURL);
  } catch {
    throw new ConfigError(`pull requests need an http(s) repository URL, got ${JSON.stringify(repoURL)}`);
  }
  const parts = url.pathname
    .replace(/\.git$/, '')
    .split('/')
    .filter(Boolean);
  if (parts.length < 2) throw new ConfigError(`cannot find owner/name in the repository URL ${url.origin}${url.pathname}`);
  return { origin: url.origin, owner: parts.at(-2)!, name: parts.at(-1)! };
}

export function forgeFor(repoURL: string, options: ForgeOptions): Forge {
  const { origin, owner, name } = repositoryPath(repoURL);
  const dispatcher = dispatcherFor(options.caFile);
  const host = new URL(origin).hostname;
  const kind = options.kind ?? (host === 'github.com' ? 'github' : host.startsWith('gitlab.') ? 'gitlab' : 'gitea');
  if (kind === 'gitlab') {
    const path = new URL(repoURL).pathname.replace(/\.git$/, '').replace(/^\/+/, '');
    return new GitLabForge(options.apiBase ?? `${origin}/api/v4`, path, options.token, dispatcher);
  }
  if (kind === 'github')
    return new GitHubForge(options.apiBase ?? (host === 'github.com' ? 'https://api.github.com' : `${origin}/api/v3`), owner, name, options.token, dispatcher);
  return new GiteaForge(options.apiBase ?? `${origin}/api/v1`, owner, name, options.token, dispatcher);
}

/** One connection pool per CA file for the process (a forge is opened per repository and pass). */
const dispatchers = new Map<string, Agent>();

function dispatcherFor(caFile: string | undefined): Agent | undefined {
  if (caFile === undefined) return undefined;
  let agent = dispatchers.get(caFile);
  if (!agent) {
    agent = new Agent({ connect: { ca: trustedCa(caFile)!, rejectUnauthorized: true } });
    dispatchers.set(caFile, agent);
  }
  return agent;
}
