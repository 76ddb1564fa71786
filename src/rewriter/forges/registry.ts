/**
 * The forges, each registered once: how its API is reached from a repository's origin, and its
 * client. `forgeFor` opens the one a repository URL is on.
 */
import { Agent } from 'undici';
import { trustedCa } from '../../util/trusted-ca.ts';
import { fixedApi, kindOf, repositoryPath, type Forge, type ForgeKind, type ForgeOptions } from './forge.ts';
import { GiteaForge } from './gitea.ts';
import { GitHubForge } from './github.ts';
import { GitLabForge } from './gitlab.ts';
import { BitbucketForge } from './bitbucket.ts';
import { BitbucketServerForge } from './bitbucket-server.ts';
import { AzureDevOpsForge } from './azure-devops.ts';

interface Located {
  readonly origin: string;
  readonly host: string;
  /** The forge's root under the origin (on Azure DevOps, the organization's or collection's path). */
  readonly root: string;
  readonly owner: string;
  readonly name: string;
  /** The whole path under the forge's root (a GitLab project's group/…/name). On Azure DevOps the owner is the project. */
  readonly path: string;
}

type Open = (at: Located, apiBase: string | undefined, token: string, dispatcher: Agent | undefined) => Forge;

const FORGES: Record<ForgeKind, Open> = {
  gitea: (at, api, token, d) => new GiteaForge(api ?? `${at.origin}/api/v1`, at.owner, at.name, token, d),
  github: (at, api, token, d) =>
    new GitHubForge(api ?? (at.host === 'github.com' ? 'https://api.github.com' : `${at.origin}/api/v3`), at.owner, at.name, token, d),
  gitlab: (at, api, token, d) => new GitLabForge(api ?? `${at.origin}/api/v4`, at.path, token, d),
  bitbucket: (at, api, token, d) => new BitbucketForge(api ?? fixedApi('bitbucket')!, at.owner, at.name, token, d),
  'bitbucket-server': (at, api, token, d) => new BitbucketServerForge(api ?? `${at.origin}/rest/api/1.0`, at.owner, at.name, token, d),
  // The organization (dev.azure.com/<organization>, <organization>.visualstudio.com) or the server's collection.
  'azure-devops': (at, api, token, d) => new AzureDevOpsForge(api ?? `${at.origin}${at.root.replace(/\/$/, '')}`, at.owner, at.name, token, d),
};

export function forgeFor(repoURL: string, options: ForgeOptions): Forge {
  const kind = kindOf(repoURL, options);
  const at = repositoryPath(repoURL, kind, options.apiBase ?? fixedApi(kind));
  return FORGES[kind]({ ...at, host: new URL(at.origin).hostname }, options.apiBase, options.token, dispatcherFor(options.caFile));
}

/** One connection pool per CA file for the process (a forge is opened per repository and pass). */
const dispatchers = new Map<string, Agent>();

export function dispatcherFor(caFile: string | undefined): Agent | undefined {
  if (caFile === undefined) return undefined;
  let agent = dispatchers.get(caFile);
  if (!agent) {
    agent = new Agent({ connect: { ca: trustedCa(caFile)!, rejectUnauthorized: true } });
    dispatchers.set(caFile, agent);
  }
  return agent;
}
