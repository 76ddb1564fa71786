/**
 * A token server for the distribution token auth flow, so that a real registry verifies real
 * signed tokens: it checks Basic credentials, grants the requested scopes (pull to anyone when
 * `anonymousPull`, pull and push to known users), and signs an RS256 JWT whose `x5c` header
 * carries the certificate the registry trusts (its `rootcertbundle`).
 */
import { createSign, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { freePort } from './process.ts';
import { createSelfSigned } from './tls.ts';

export interface TokenServer {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** The certificate the registry must trust. */
  readonly rootCertFile: string;
  /** Every token request, for assertions: the scopes asked and the user (undefined when anonymous). */
  readonly requests: Array<{ user: string | undefined; scopes: string[] }>;
  stop(): Promise<void>;
}

export interface TokenServerOptions {
  readonly users: Readonly<Record<string, string>>;
  readonly anonymousPull?: boolean;
  readonly dir: string;
  readonly lifetimeSeconds?: number;
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const signer = await createSelfSigned(options.dir, 'token-signer');
  const key = readFileSync(signer.keyFile, 'utf8');
  const certDer = Buffer.from(readFileSync(signer.certFile, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const port = await freePort();
  const service = 'image-clone-test-registry';
  const issuer = 'image-clone-test-token-issuer';
  const requests: TokenServer['requests'] = [];

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const scopes = url.searchParams.getAll('scope');
    const user = authenticate(req, options.users);
    if (user === 'refused') {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'incorrect username or password' }));
      return;
    }
    requests.push({ user, scopes });
    const access = scopes.flatMap((scope) => {
      const [type, ...rest] = scope.split(':');
      const actions = (rest.pop() ?? '').split(',');
      const name = rest.join(':');
      const granted = actions.filter((a) => (user !== undefined ? a === 'pull' || a === 'push' : a === 'pull' && options.anonymousPull === true));
      return type === 'repository' && granted.length > 0 ? [{ type, name, actions: granted }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const lifetime = options.lifetimeSeconds ?? 300;
    const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] }));
    const claims = base64url(
      JSON.stringify({
        iss: issuer,
        sub: user ?? '',
        aud: url.searchParams.get('service') ?? service,
        exp: now + lifetime,
        nbf: now - 10,
        iat: now,
        jti: randomUUID(),
        access,
      }),
    );
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key);
    const token = `${header}.${claims}.${base64url(signature)}`;
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token, access_token: token, expires_in: lifetime, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertFile: signer.certFile,
    requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function authenticate(req: IncomingMessage, users: Readonly<Record<string, string>>): string | undefined | 'refused' {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Basic (.+)$/i.exec(header);
  if (!match) return 'refused';
  const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = decoded.slice(0, colon);
  return colon > 0 && users[user] === decoded.slice(colon + 1) ? user : 'refused';
}
