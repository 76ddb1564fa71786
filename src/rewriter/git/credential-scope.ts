/**
 * Where the rewriter's Git credentials (HTTPS password or token, SSH key) and forge token may go:
 * only to repositories under the URL prefixes the operator bound them to (`--credentials-for`,
 * as git's `credential.<url>` and Renovate's host rules bind them), never over plain HTTP unless a
 * prefix names that `http://` URL itself. A repository a verified owner names can still be a
 * tenant's own server: without this, the token would be handed to it. Checked before any network
 * call; pure.
 */
import { hasControlCharacter } from '../../util/control-characters.ts';

/** Why credentials may not go to `repoURL`, or undefined when they may (or when there are none to send). */
export function credentialRefusal(repoURL: string, scopes: readonly string[] | undefined, holdsCredentials: boolean): string | undefined {
  if (!holdsCredentials) return undefined;
  // What git and curl would read differently from the URL parser (a backslash taken for a slash by one
  // and for part of a user name by the other, control characters, a user name in an http(s) URL, where
  // the password would go) is refused. An ssh:// user is the SSH login, as in git@host.
  if (/[\\\s]/.test(repoURL) || hasControlCharacter(repoURL) || /^https?:\/\/[^/]*@/i.test(repoURL))
    return 'the repository URL has a backslash, a control character or a user name in it; no credentials are sent to it';
  const url = normalise(repoURL);
  if (url === undefined) return 'the repository URL cannot be read; no credentials are sent to it';
  if (url.startsWith('file://')) return undefined;
  const origin = originOf(url);
  if (scopes === undefined || scopes.length === 0) {
    // Unbound: any https or ssh repository, never plain http (a token in clear text to anyone on the path).
    if (url.startsWith('http://'))
      return `no credentials are sent over plain http (${origin}); name that http:// prefix with --credentials-for to allow it (a lab)`;
    return undefined;
  }
  if (scopes.some((prefix) => withinPrefix(url, normalise(prefix) ?? prefix))) return undefined;
  return `no credentials are configured for ${origin} (the Git and forge credentials are bound to ${scopes.join(', ')} by --credentials-for)`;
}

/** `git@host:org/repo.git` → `ssh://git@host/org/repo.git`; URLs with their scheme and host lower-cased. */
function normalise(url: string): string | undefined {
  const scp = /^([\w.-]+@)?([\w.-]+):(?!\/\/)(.*)$/.exec(url);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return `ssh://${scp[1] ?? ''}${scp[2]!.toLowerCase()}/${scp[3]}`;
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.username ? `${parsed.username}@` : ''}${parsed.host.toLowerCase()}${parsed.pathname}`;
  } catch {
    return undefined;
  }
}

/**
 * Whether a plain-http URL is one the operator allowed (an `http://` prefix given with
 * `--credentials-for`): for fetches that carry no credential (remote bases, chart repositories).
 */
export function plainHttpNamed(url: string, prefixes: readonly string[]): boolean {
  // Compared as parsed (dot segments resolved, as curl resolves them): `…/team-a/../team-b` is not under `…/team-a`.
  const parsed = normalise(url);
  if (!parsed?.startsWith('http://')) return false;
  return prefixes.some((p) => p.startsWith('http://') && withinPrefix(parsed, normalise(p) ?? p));
}

/** A prefix matches at a path boundary: `https://git.example.com/team-a` covers `/team-a/x.git`, not `/team-ab/x.git`. */
export function withinPrefix(url: string, prefix: string): boolean {
  if (!url.startsWith(prefix)) return false;
  return prefix.endsWith('/') || url.length === prefix.length || url[prefix.length] === '/' || url.slice(prefix.length) === '.git';
}

function originOf(url: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/(?:[^@/]+@)?[^/]+)/i.exec(url);
  return (match?.[1] ?? url).replace(/\/\/[^@/]+@/, '//');
}
