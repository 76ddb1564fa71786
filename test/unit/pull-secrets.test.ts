/** imagePullSecrets added to a pod template, byte for byte, in the file's own style. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pullSecretEdits, type PullSecretWant } from '../../src/rewriter/edit/pull-secrets.ts';
import { applyTextEdits, parseYamlFile } from '../../src/rewriter/edit/yaml-scalars.ts';

const want = (kind = 'Deployment', name = 'web', namespace = 'shop'): PullSecretWant => ({ workload: { kind, namespace, name }, secret: 'backup-pull' });
const edit = (text: string, w = want()) => {
  const result = pullSecretEdits(parseYamlFile('f.yaml', text), w);
  return { ...result, text: applyTextEdits(text, result.edits) };
};

describe('imagePullSecrets added to a pod template', () => {
  it("adds the key after the pod spec's last entry, lists indented like containers:, comments and blank lines kept", () => {
    const before = [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: web',
      '  namespace: shop',
      'spec:',
      '  template:',
      '    spec:',
      '      containers:',
      '        - name: web',
      '          image: nginx:1.25   # pinned',
      '          # resources come later',
      '',
      '      # end of pod spec',
      '  replicas: 2',
      '',
    ].join('\n');
    const after = before.replace(
      '          image: nginx:1.25   # pinned\n',
      '          image: nginx:1.25   # pinned\n      imagePullSecrets:\n        - name: backup-pull\n',
    );
    const result = edit(before);
    assert.equal(result.declared, 1);
    assert.equal(result.text, after);
  });

  it('follows a file whose lists are not indented under their key', () => {
    const before =
      'kind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.25\n      dnsPolicy: ClusterFirst\n';
    assert.equal(edit(before).text, `${before}      imagePullSecrets:\n      - name: backup-pull\n`);
  });

  it('appends to an existing block list at its dash column, and leaves a list that has it alone', () => {
    const before =
      'kind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      imagePullSecrets:\n        - name: other   # theirs\n      containers:\n        - name: web\n          image: nginx:1.25\n';
    assert.equal(edit(before).text, before.replace('        - name: other   # theirs\n', '        - name: other   # theirs\n        - name: backup-pull\n'));
    const already = before.replace('name: other', 'name: backup-pull');
    assert.deepEqual(edit(already).edits, []);
    assert.equal(edit(already).declared, 1);
  });

  it('appends to flow lists and flow pod specs in flow style', () => {
    const flowList =
      'kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      imagePullSecrets: [{name: other}]\n      containers: [{name: web, image: "nginx:1.25"}]\n';
    assert.equal(edit(flowList).text, flowList.replace('[{name: other}]', '[{name: other}, {name: backup-pull}]'));
    const emptyList = flowList.replace('[{name: other}]', '[]');
    assert.equal(edit(emptyList).text, flowList.replace('[{name: other}]', '[{name: backup-pull}]'));
    const flowSpec = 'kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec: {containers: [{name: web, image: "nginx:1.25"}]}\n';
    assert.equal(edit(flowSpec).text, flowSpec.replace('}]}', '}], imagePullSecrets: [{name: backup-pull}]}'));
  });

  it('keeps CRLF line ends, also on a last line without one', () => {
    const before =
      'kind: Deployment\r\nmetadata:\r\n  name: web\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n        - name: web\r\n          image: nginx:1.25';
    assert.equal(edit(before).text, `${before}\r\n      imagePullSecrets:\r\n        - name: backup-pull`);
  });

  it('finds CronJob pod templates, matches namespace only where the document states one, and reports absence', () => {
    const cron =
      'kind: CronJob\nmetadata:\n  name: nightly\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n            - name: job\n              image: busybox:1\n          restartPolicy: OnFailure\n';
    assert.equal(edit(cron, want('CronJob', 'nightly')).text, `${cron}          imagePullSecrets:\n            - name: backup-pull\n`);
    const other =
      'kind: Deployment\nmetadata:\n  name: web\n  namespace: elsewhere\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25\n';
    assert.deepEqual({ ...edit(other), text: undefined }, { edits: [], declared: 0, text: undefined });
    assert.equal(edit(other, want('Deployment', 'web', 'elsewhere')).declared, 1);
  });

  it('refuses a value it cannot extend', () => {
    const odd =
      'kind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      imagePullSecrets: backup-pull\n      containers:\n        - name: web\n          image: nginx:1.25\n';
    assert.equal(edit(odd).error, 'its imagePullSecrets is not a list');
  });
});
