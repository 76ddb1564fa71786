/**
 * A real OpenSSH server on 127.0.0.1 for Git over SSH in tests: key-only login for the current
 * user, a throw-away host key, and a known_hosts line for it. Debian's openssh-server.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, run, startDaemon, waitFor } from './process.ts';
import { createConnection } from 'node:net';

export interface SshServer {
  readonly port: number;
  readonly user: string;
  /** The client key that may log in, and a known_hosts file that trusts this server. */
  readonly clientKeyFile: string;
  readonly knownHostsFile: string;
  /** `ssh://user@127.0.0.1:PORT<absolute path>` */
  urlFor(path: string): string;
  stop(): Promise<void>;
}

export async function startSshServer(dir: string): Promise<SshServer> {
  mkdirSync(dir, { recursive: true });
  mkdirSync('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'host_ed25519');
  const clientKey = join(dir, 'client_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`), { mode: 0o600 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      `PidFile ${join(dir, 'sshd.pid')}`,
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const knownHostsFile = join(dir, 'known_hosts');
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ')}\n`);
  const daemon = startDaemon('/usr/sbin/sshd', ['-D', '-e', '-f', config]);
  await waitFor(
    `sshd on 127.0.0.1:${port}`,
    () =>
      new Promise((resolve) => {
        const socket = createConnection({ host: '127.0.0.1', port }, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      }),
    10_000,
    daemon.child,
  );
  const user = userInfo().username;
  return {
    port,
    user,
    clientKeyFile: clientKey,
    knownHostsFile,
    urlFor: (path) => `ssh://${user}@127.0.0.1:${port}${path}`,
    stop: () => daemon.stop(),
  };
}
