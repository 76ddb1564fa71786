/**
 * Git over HTTP on loopback with git's own smart-HTTP server, `git http-backend` (a CGI program),
 * behind Basic auth: the real protocol a GitOps repository speaks, for tests and the demo.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { freePort } from './process.ts';

export interface GitHttpServer {
  readonly url: string;
  /** Requests seen: method, path, and whether they carried valid credentials. */
  readonly log: Array<{ method: string; path: string; authorized: boolean }>;
  stop(): Promise<void>;
}

/** Serves the bare repositories under `root` at http://127.0.0.1:PORT/<name>.git. */
export async function startGitHttpServer(
  root: string,
  users: Readonly<Record<string, string>>,
  options: { readonly anonymousRead?: boolean } = {},
): Promise<GitHttpServer> {
  const backend = join(execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim(), 'git-http-backend');
  const port = await freePort();
  const log: GitHttpServer['log'] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const decoded = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /i, ''), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon > 0 ? decoded.slice(0, colon) : '';
    const authorized = colon > 0 && users[user] === decoded.slice(colon + 1);
    log.push({ method: req.method ?? '', path: url.pathname, authorized });
    // A public repository: clones (upload-pack) without credentials; pushes still need them.
    const reading = url.searchParams.get('service') === 'git-upload-pack' || url.pathname.endsWith('/git-upload-pack');
    if (!authorized && !(options.anonymousRead && reading)) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end();
      return;
    }
    const cgi = spawn(backend, [], {
      env: {
        PATH: process.env.PATH ?? '',
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        REMOTE_USER: user,
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.replace(/^\?/, ''),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    // A CGI answer is headers, a blank line, then the body.
    let head = Buffer.alloc(0);
    let headersSent = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersSent) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const sep = line.indexOf(':');
        const name = line.slice(0, sep).trim();
        const value = line.slice(sep + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      headersSent = true;
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => (headersSent ? res.end() : res.writeHead(502).end()));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
