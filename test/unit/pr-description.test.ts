import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeId, mergeRows, pullRequestBody, pullRequestTitle, rowsFromDescription, type DescribedImage } from '../../src/rewriter/forges/description.ts';
import { repositoryPath } from '../../src/rewriter/forges/forge.ts';

const D = `sha256:${'a'.repeat(64)}`;
const row = (workload: string, from: string): DescribedImage => ({
  workload,
  container: 'web',
  from,
  to: `backup.io/m/${from}`,
  digest: D,
  platforms: ['linux/amd64', 'linux/arm64'],
  sizeBytes: 5 * 1024 * 1024,
});

describe('pull request descriptions', () => {
  it('writes what the cluster and repositories say as inert text: no link, HTML or early end of the marker', () => {
    const hostile = {
      ...row('shop/Deployment/web', 'nginx:1.25'),
      chain: ['Kustomization team-a/apps (GitRepository team-a/x, path [click](https://evil.example) <img src=x> --> www.evil.example @platform-team)'],
      files: ['apps/`x`|y.yaml'],
    };
    const body = pullRequestBody([hostile], ['apps/`x`|y.yaml']);
    const shown = body.slice(0, body.indexOf('<!--'));
    assert.doesNotMatch(shown.replace(/`[^`]*`/g, ''), /[^\\]\[click\]\(/, 'no link outside a code span');
    assert.doesNotMatch(shown, /[^\\]<img/, 'no HTML');
    // A word with a URL in it is a code span (no autolink); the rest escaped; mentions too.
    assert.match(body, /`\[click\]\(https:\/\/evil\.example`\) \\<img src=x\\> --\\>/);
    assert.doesNotMatch(shown.replace(/`[^`]*`/g, ''), /https?:\/\/|www\./, 'no URL outside a code span');
    assert.match(shown, /\\@platform-team/, 'no mention');
    assert.match(body, /`apps\/'x'\\\|y\.yaml`/);
    // The marker holds the rows whole, and nothing in them ends it early.
    assert.equal(body.match(/-->/g)?.length, 1);
    assert.deepEqual(rowsFromDescription(body), [hostile]);
  });

  it('reads its own marker, the last in the body, whatever a file name above it spells (git does not quote `<!-- … -->`)', () => {
    const ours = row('shop/Deployment/web', 'nginx:1.25');
    const planted = '<!-- image-clone-controller: {"rows":[]} -->.yaml';
    const body = pullRequestBody([ours], [`apps/${planted}`, 'apps/web.yaml']);
    assert.ok(body.indexOf('<!-- image-clone-controller:') < body.lastIndexOf('<!-- image-clone-controller:'), 'the file name spells a marker above ours');
    assert.deepEqual(rowsFromDescription(body), [ours]);
  });

  it('reads back only rows shaped as its own: one a description editor broke is dropped, not a failure of every later pass', () => {
    const good = row('shop/Deployment/web', 'nginx:1.25');
    const marker = (rows: unknown[]) => `text\n<!-- image-clone-controller: ${JSON.stringify({ change: 'x', rows })} -->`;
    assert.deepEqual(
      rowsFromDescription(marker([good, { ...good, cluster: 1 }, { ...good, cluster: 'Not A Label' }, { ...good, sizeBytes: '5' }, null, 'row'])),
      [good],
    );
    assert.deepEqual(
      rowsFromDescription(
        marker([
          { ...good, signature: { key: 3 } },
          { ...good, pull: { via: 'secret', secret: 's', listedBy: 'kubelet' } },
        ]),
      ),
      [],
    );
    // A Secret's name that would break out of its code span, a listedBy that is not text: dropped.
    assert.deepEqual(
      rowsFromDescription(
        marker([
          { ...good, pull: { via: 'secret', secret: 'x` | ## Merge now [here](https://evil.example) @team', listedBy: 'pod' } },
          { ...good, pull: { via: 'secret', secret: 'backup-pull', listedBy: ['pod'] } },
        ]),
      ),
      [],
    );
    // Inside pull and signature too, only their own fields come back.
    assert.deepEqual(rowsFromDescription(marker([{ ...good, pull: { via: 'node', extra: '<b>' }, signature: { key: 'k', scheme: 's', x: 1 } }])), [
      { ...good, pull: { via: 'node' }, signature: { key: 'k', scheme: 's' } },
    ]);
    // Fields of its own only: anything else is not carried into the next description.
    assert.deepEqual(rowsFromDescription(marker([{ ...good, cluster: 'east', injected: '<script>' }])), [{ ...good, cluster: 'east' }]);
    // A body of a broken row still renders.
    assert.doesNotThrow(() => pullRequestBody(rowsFromDescription(marker([{ ...good, cluster: 1 }])), []));
  });

  it('tells a reviewer what moves, where, and why it is safe', () => {
    const body = pullRequestBody([{ ...row('shop/Deployment/web', 'nginx:1.25'), pull: { via: 'anonymous' } }], ['apps/web.yaml']);
    assert.match(body, /\| Workload \| Container \| Old image \| New image \| Digest \| Platforms \| Size \| Nodes pull it \|/);
    assert.match(
      body,
      /\| shop\/Deployment\/web \| web \| `nginx:1\.25` \| `backup\.io\/m\/nginx:1\.25` \| `sha256:a{64}` \| linux\/amd64, linux\/arm64 \| 5\.0 MiB \| anonymously \(checked\) \|/,
    );
    assert.match(body, /\*\*Why this is safe\.\*\* Each new reference pins the digest/);
    assert.match(body, /\*\*Files changed:\*\* `apps\/web\.yaml`/);
    assert.equal(
      pullRequestTitle([row('a/Deployment/x', 'n:1'), row('a/Deployment/x', 'm:1'), row('b/Deployment/y', 'n:1')]),
      'Move 2 workloads to backed-up images',
    );
  });

  it('says per row how nodes pull the new image, and claims only what was checked', () => {
    const anonymous = pullRequestBody([{ ...row('a/Deployment/x', 'n:1'), pull: { via: 'anonymous' } }], []);
    assert.match(anonymous, /an anonymous pull of the new image's manifest from the backup registry succeeded/);
    assert.doesNotMatch(anonymous, /node credentials|not recorded/);
    const node = pullRequestBody([{ ...row('a/Deployment/x', 'n:1'), pull: { via: 'node' } }], []);
    assert.match(node, /\| node credentials \(not checked\) \|/);
    assert.match(node, /trust that the nodes hold credentials .*the controller did not check this/);
    assert.doesNotMatch(node, /anonymous pull/);
    const older = pullRequestBody([row('a/Deployment/x', 'n:1')], []);
    assert.match(older, /\| not recorded \|/);
    assert.match(older, /check that the nodes can pull from the backup registry before merging/);
  });

  it('says per row which signature was verified at the backup, with which key or identity, and says nothing where none was asked', () => {
    const body = pullRequestBody(
      [{ ...row('a/Deployment/x', 'n:1'), signature: { key: '/keys/acme.pub', scheme: 'sigstore bundle' } }, row('a/Deployment/y', 'm:1')],
      [],
    );
    assert.match(body, /\*\*Signatures verified at the backup\*\*.*\n\n- a\/Deployment\/x .*: `.*` verified with `\/keys\/acme\.pub` \(sigstore bundle\)$/m);
    assert.doesNotMatch(body, /a\/Deployment\/y .* verified with/);
    assert.doesNotMatch(pullRequestBody([row('a/Deployment/y', 'm:1')], []), /Signatures verified/);
    // Keyless: the identity asked for, and the one the certificate names.
    const keyless = pullRequestBody(
      [
        {
          ...row('a/Deployment/x', 'n:1'),
          signature: {
            key: 'https://github.com/acme/* from https://token.actions.githubusercontent.com',
            scheme: 'sigstore bundle',
            signer: 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1',
          },
        },
      ],
      [],
    );
    assert.match(
      keyless,
      /- a\/Deployment\/x .* verified with `https:\/\/github\.com\/acme\/\* from https:\/\/token\.actions\.githubusercontent\.com` \(sigstore bundle, signed by `https:\/\/github\.com\/acme\/app\/\.github\/workflows\/release\.yml@refs\/tags\/v1`\)$/m,
    );
  });

  it('carries its rows in a hidden marker, so a later batch adds to them', () => {
    const first = [row('shop/Deployment/web', 'nginx:1.25')];
    const body = pullRequestBody(first, []);
    assert.deepEqual(rowsFromDescription(body), first);
    const merged = mergeRows(rowsFromDescription(body), [row('shop/Deployment/api', 'redis:7'), row('shop/Deployment/web', 'nginx:1.26')]);
    assert.deepEqual(
      merged.map((r) => `${r.workload} ${r.from}`),
      ['shop/Deployment/api redis:7', 'shop/Deployment/web nginx:1.26'],
    );
    assert.deepEqual(rowsFromDescription('a human wrote this'), []);
    assert.deepEqual(rowsFromDescription('<!-- image-clone-controller: {broken -->'), []);
  });

  it('gives the same change the same id, whatever the order', () => {
    const a = row('x/Deployment/a', 'n:1');
    const b = row('x/Deployment/b', 'm:1');
    assert.equal(changeId([a, b]), changeId([b, a]));
    assert.notEqual(changeId([a]), changeId([a, b]));
  });

  it('reads owner and name from repository URLs, and refuses what it would have to guess', () => {
    assert.deepEqual(repositoryPath('https://git.example.com/platform/apps.git'), {
      origin: 'https://git.example.com',
      root: '/',
      owner: 'platform',
      name: 'apps',
      path: 'platform/apps',
    });
    assert.deepEqual(repositoryPath('https://git.example.com/gitea/platform/apps', 'gitea', 'https://git.example.com/gitea/api/v1').path, 'platform/apps');
    assert.deepEqual(repositoryPath('https://gitlab.example.com/org/team/repo.git', 'gitlab').path, 'org/team/repo');
    // A third segment would make the last two another owner's repository, acted on with this token.
    assert.throws(() => repositoryPath('http://127.0.0.1:3000/org/team/repo'), /owner\/name under http:\/\/127\.0\.0\.1:3000\/ expected/);
    assert.throws(() => repositoryPath('https://github.com/org/team/repo', 'github'), /cannot find the github repository/);
    assert.throws(() => repositoryPath('https://git.example.com/team-a/..%2Fteam-b'), /not a gitea name: "..%2Fteam-b"/);
    assert.throws(() => repositoryPath('https://git.example.com/other/apps', 'gitea', 'https://git.example.com/gitea/api/v1'), /not under the forge's root/);
    assert.throws(() => repositoryPath('git@github.com:org/repo.git'), /need an http\(s\) repository URL/);
    // A repository on another host than the forge API the operator named is not that forge's.
    assert.throws(
      () => repositoryPath('https://evil.example/team-b/repo', 'gitea', 'https://git.corp/api/v1'),
      /is not on the forge whose API is https:\/\/git\.corp/,
    );
    assert.equal(repositoryPath('https://github.com/org/repo', 'github', 'https://api.github.com').path, 'org/repo');
  });
});

describe('pull requests several clusters share', () => {
  it("names each row's cluster, keeps another cluster's rows for the same workload, and counts the same move once", () => {
    const east = { ...row('shop/Deployment/web', 'nginx:1.25'), cluster: 'east' };
    const west = { ...row('shop/Deployment/web', 'nginx:1.25'), cluster: 'west' };
    const body = pullRequestBody([east, west], ['apps/base/web.yaml']);
    assert.match(body, /^\| Cluster \| Workload \| Container \| Old image/m);
    assert.match(body, /^\| east \| shop\/Deployment\/web \| web \|/m);
    assert.match(body, /^\| west \| shop\/Deployment\/web \| web \|/m);
    // West's pass after east's: both rows stay; a later pass of east replaces only east's row.
    const merged = mergeRows(rowsFromDescription(pullRequestBody([east], [])), [west]);
    assert.deepEqual(merged.map((r) => r.cluster).sort(), ['east', 'west']);
    const moved = { ...east, from: 'nginx:1.26', to: 'backup.io/m/nginx:1.26' };
    assert.deepEqual(
      mergeRows(merged, [moved])
        .map((r) => `${r.cluster} ${r.from}`)
        .sort(),
      ['east nginx:1.26', 'west nginx:1.25'],
    );
    // The same move needed by both clusters is one change (a reviewer who declined it declined it for both).
    assert.equal(changeId([east, west]), changeId([east]));
    assert.equal(changeId([west]), changeId([row('shop/Deployment/web', 'nginx:1.25')]));
    // A row of an older description (no cluster) beside new ones: said, not guessed.
    assert.match(pullRequestBody([row('shop/Deployment/api', 'redis:7'), east], []), /^\| not recorded \| shop\/Deployment\/api \|/m);
    // No cluster anywhere: the table as before.
    assert.doesNotMatch(pullRequestBody([row('shop/Deployment/api', 'redis:7')], []), /Cluster/);
  });
});

describe('commit messages', () => {
  it('fill a template with the workloads, the count and one line per image', async () => {
    const { commitMessage, DEFAULT_COMMIT_TEMPLATE } = await import('../../src/rewriter/rewriter.ts');
    const record = (name: string) => ({
      version: 1 as const,
      id: name,
      createdAt: '',
      owner: undefined,
      workload: { kind: 'Deployment' as const, namespace: 'shop', name, uid: name },
      images: [{ container: 'app', init: false, source: 'nginx:1.25', backup: 'b.io/nginx:1.25', digest: D, platforms: [], sizeBytes: 1 }],
    });
    assert.equal(
      commitMessage([record('web')], 'chore(images): {workloads} ({count})\n\n{changes}\n'),
      `chore(images): shop/web (1)\n\n- shop/Deployment/web app: nginx:1.25 -> b.io/nginx:1.25@${D}\n`,
    );
    assert.match(
      commitMessage([record('a'), record('b')], DEFAULT_COMMIT_TEMPLATE),
      /^image-clone: move 2 workloads to backed-up images\n\nThe new references pin the digests/,
    );
    // A record that names its cluster: each line says which.
    assert.equal(
      commitMessage([{ ...record('web'), cluster: { name: 'east', uid: 'u' } }], '{changes}'),
      `- shop/Deployment/web app: nginx:1.25 -> b.io/nginx:1.25@${D} (in cluster east)`,
    );
  });
});
