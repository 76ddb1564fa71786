/**
 * The referrers scenario of `bench:copy` and `bench:wan`: a batch of images, each signed by the real
 * cosign (its legacy `.sig` tag, what `cosign copy` copies) and given an SBOM by the real oras (an
 * OCI 1.1 referrer: the fallback tag on a registry without the referrers API, which
 * `regctl --referrers` and `oras copy -r` copy). The peers, each as its users copy images with their
 * referrers: `regctl image copy --referrers --digest-tags`, `crane copy` then `cosign copy --only
 * sig,att,sbom`, and `oras copy -r`; 4 processes at once, having no batch mode. Afterwards each
 * backup is checked for the image's digest, the signature and the SBOM, and what a tool left behind
 * is printed beside its time.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { referrersTools } from '../devenv/referrers-registry.ts';
import { run } from '../devenv/process.ts';
import { manifestDigestAt, seedImage, type SeedImageSpec } from '../devenv/seed.ts';
import { goTool, measure, measurePool } from './peers.ts';
import { PEER_POOL, regctlEnvironment, type Tool, type ToolSetup } from './copy-tools.ts';

const MiB = 1 << 20;
const SBOM = 'application/spdx+json';

export interface SignedImage {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
}

/** `count` small images sharing an Alpine-like base, each signed (`.sig`) and with an SBOM, in the registry at `address`. */
export async function seedSignedImages(url: string, address: string, count: number, work: string): Promise<SignedImage[]> {
  const keys = mkdtempSync(join(work, 'keys-'));
  const env = { ...process.env, COSIGN_PASSWORD: '', COSIGN_YES: 'true' };
  const { cosign, oras } = referrersTools();
  await run(cosign, ['generate-key-pair'], undefined, { env, cwd: keys });
  writeFileSync(join(keys, 'sbom.spdx.json'), JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'app', packages: [{ name: 'busybox', versionInfo: '1.36' }] }));
  const specs: SeedImageSpec[] = Array.from({ length: count }, (_, i) => ({
    repository: `signed/app-${i}`,
    tag: '1.0.0',
    format: 'oci',
    layers: [
      { seed: 'signed-base-alpine', size: 4 * MiB, shared: true },
      { seed: `signed-app-${i}`, size: (1 + (i % 3)) * MiB },
    ],
  }));
  const images: SignedImage[] = [];
  for (let i = 0; i < specs.length; i += 4) {
    images.push(
      ...(await Promise.all(
        specs.slice(i, i + 4).map(async (spec) => {
          const { digest } = await seedImage({ url }, spec);
          const at = `${address}/${spec.repository}@${digest}`;
          await run(
            cosign,
            ['sign', '--key', 'cosign.key', '--tlog-upload=false', '--use-signing-config=false', '--allow-http-registry', '--new-bundle-format=false', at],
            undefined,
            {
              env,
              cwd: keys,
            },
          );
          await run(oras, ['attach', '--plain-http', '--artifact-type', SBOM, at, 'sbom.spdx.json'], undefined, { cwd: keys });
          return { repository: spec.repository, tag: spec.tag, digest };
        }),
      )),
    );
  }
  return images;
}

/** What a backup holds beside the image: the `.sig` tag, and the SBOM listed for it (referrers API or fallback tag). */
export async function carried(url: string, repository: string, digest: string): Promise<{ signature: boolean; sbom: boolean }> {
  const tag = digest.replace(':', '-');
  const signature = (await manifestDigestAt({ url }, repository, `${tag}.sig`)) !== undefined;
  const listing = async (path: string, headers: Record<string, string> = {}) => {
    const response = await request(`${url}/v2/${repository}/${path}`, { headers });
    if (response.statusCode !== 200) {
      await response.body.dump();
      return [];
    }
    return ((await response.body.json()) as { manifests?: Array<{ artifactType?: string }> }).manifests ?? [];
  };
  const listed = [...(await listing(`referrers/${digest}`)), ...(await listing(`manifests/${tag}`, { accept: 'application/vnd.oci.image.index.v1+json' }))];
  return { signature, sbom: listed.some((m) => m.artifactType === SBOM) };
}

/** This project and the peers that copy referrers, each as its users would. */
export function referrerTools(setup: ToolSetup): Tool[] {
  const { cosign, oras } = referrersTools();
  const crane = goTool('crane');
  const regctl = goTool('regctl');
  return [
    {
      name: 'image-clone',
      peer: false,
      run(pairs) {
        const file = join(setup.work, `pairs-${Date.now()}.txt`);
        writeFileSync(file, pairs.map((p) => p.join(' ')).join('\n'));
        return measure(process.execPath, [...setup.ours, 'copy', '--from-file', file, ...setup.insecure()]);
      },
    },
    {
      name: 'regctl --referrers',
      peer: true,
      run: (pairs) =>
        measurePool(
          pairs.map(([s, d]) => [regctl, ['image', 'copy', '--referrers', '--digest-tags', s, d]] as const),
          PEER_POOL,
          regctlEnvironment(setup.work),
        ),
    },
    {
      name: 'crane + cosign copy',
      peer: true,
      run: (pairs) =>
        measurePool(
          pairs.map(
            ([s, d]) =>
              ['sh', ['-c', '"$0" copy --insecure "$2" "$3" && "$1" copy --allow-http-registry --only sig,att,sbom "$2" "$3"', crane, cosign, s, d]] as const,
          ),
          PEER_POOL,
        ),
    },
    {
      name: 'oras copy -r',
      peer: true,
      run: (pairs) =>
        measurePool(
          pairs.map(([s, d]) => [oras, ['copy', '-r', '--from-plain-http', '--to-plain-http', s, d]] as const),
          PEER_POOL,
        ),
    },
  ];
}

/**
 * The scenario's plan for a tool's run: every image into a repository of the run's own, its digest
 * checked; what the backup carries beside it tallied in `tally` (signature, SBOM), not failed, since
 * a peer may copy less; this project must carry both.
 */
export function signedBatchPlan(
  images: readonly SignedImage[],
  source: () => string,
  target: () => { readonly address: string; readonly url: string },
  tally: Map<string, { signatures: number; sboms: number }>,
) {
  return (tool: Tool, run: number) => {
    const prefix = `signed-${tool.name.replace(/[^a-z]+/g, '-')}-${run}`;
    const name = (image: SignedImage) => image.repository.split('/').pop()!;
    return {
      pairs: images.map((image): [string, string] => [
        `${source()}/${image.repository}:${image.tag}`,
        `${target().address}/${prefix}/${name(image)}:${image.tag}`,
      ]),
      sync: { images: {}, destination: '' },
      check: async () => {
        const counts = { signatures: 0, sboms: 0 };
        for (const image of images) {
          const repository = `${prefix}/${name(image)}`;
          const digest = await manifestDigestAt({ url: target().url }, repository, image.tag);
          if (digest !== image.digest) throw new Error(`${tool.name}: ${repository}:${image.tag} has digest ${digest}, expected ${image.digest}`);
          const { signature, sbom } = await carried(target().url, repository, image.digest);
          counts.signatures += signature ? 1 : 0;
          counts.sboms += sbom ? 1 : 0;
        }
        if (!tool.peer && (counts.signatures < images.length || counts.sboms < images.length))
          throw new Error(`image-clone left referrers behind: ${counts.signatures} signatures and ${counts.sboms} SBOMs of ${images.length}`);
        tally.set(tool.name, counts);
      },
    };
  };
}
