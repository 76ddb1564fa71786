/**
 * A registry with the OCI 1.1 referrers API on 127.0.0.1 (devenv/referrers-registry: go-containerregistry's
 * registry, in memory, with what the spec's referrers section asks in front of it), and the Go-built
 * tools the referrers tests run: cosign, oras and Sigstore's timestamp authority. All built by scripts/build-referrers-tools.sh into
 * the cache, once.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startDaemon, waitFor } from './process.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface ReferrersTools {
  readonly registry: string;
  readonly cosign: string;
  readonly oras: string;
  readonly timestampServer: string;
}

let tools: ReferrersTools | undefined;

/** The four binaries, built first where the cache lacks them (minutes, once). */
export function referrersTools(): ReferrersTools {
  if (tools === undefined) {
    const [registry, cosign, oras, timestampServer] = execFileSync('bash', [join(ROOT, 'scripts/build-referrers-tools.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
      .trim()
      .split('\n');
    tools = { registry: registry!, cosign: cosign!, oras: oras!, timestampServer: timestampServer! };
  }
  return tools;
}

export interface ReferrersRegistry {
  /** `127.0.0.1:PORT`. */
  readonly address: string;
  readonly url: string;
  stop(): Promise<void>;
}

export async function startReferrersRegistry(): Promise<ReferrersRegistry> {
  const daemon = startDaemon(referrersTools().registry, ['-port', '0']);
  let address: string | undefined;
  await waitFor(
    'the referrers registry',
    async () => {
      address = /listening on (127\.0\.0\.1:\d+)/.exec(daemon.output())?.[1];
      if (address === undefined) return false;
      const response = await request(`http://${address}/v2/`);
      await response.body.dump();
      return response.statusCode === 200;
    },
    20_000,
    daemon.child,
  ).catch(async (error: unknown) => {
    await daemon.stop();
    throw new Error(`${(error as Error).message}\n${daemon.output()}`);
  });
  return { address: address!, url: `http://${address}`, stop: () => daemon.stop() };
}
