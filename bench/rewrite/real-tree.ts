/**
 * A repository shaped like the public GitOps repositories the rewriter was run on (the shapes of
 * #23, written here, none copied): 100 apps each with a base and two overlays (an image set by the
 * base's own `images:` entry and overridden by an overlay's, JSON 6902 patches, a name prefix),
 * two components that add sidecars, a 5 MB file of generated monitoring manifests, and charts in
 * the repository whose templates hold `{{ }}` and a literal hook image.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const APPS = 100;
export const appImage = (a: number) => `registry.example.com/apps/app-${a}:1.${a % 10}.0`;
export const SIDECAR = 'docker.io/istio/proxyv2:1.22.0';
export const EXPORTER = 'quay.io/prometheus/node-exporter:v1.8.0';
export const INIT = 'busybox:1.36';
export const generatedImage = (i: number) => `quay.io/example/monitor-${i % 50}:v1.${i % 7}.0`;
export const chartImage = (c: number) => `ghcr.io/example/chart-${c}:2.${c}.0`;

function put(root: string, path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

const deployment = (name: string, image: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  labels:
    app.kubernetes.io/name: ${name}
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: ${name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: ${name}
    spec:
      initContainers:
        - name: wait
          image: ${INIT}
          command: [sh, -c, "until nslookup db; do sleep 1; done"]
      containers:
        - name: app
          image: ${image} # pinned by release tooling
          ports:
            - containerPort: 8080
          resources:
            requests: {cpu: 100m, memory: 128Mi}
`;

/** Writes the tree under `root`; returns the size in bytes of the generated manifests file. */
export function writeRealTree(root: string): number {
  for (let a = 0; a < APPS; a++) {
    const app = `app-${a}`;
    const name = appImage(a).split(':')[0]!;
    // Every fifth base sets its image through its own images: entry, as some install manifests do.
    const ownEntry = a % 5 === 0 ? `images:\n  - name: ${name}\n    newName: ${name}\n    newTag: 1.${a % 10}.0\n` : '';
    put(root, `apps/${app}/base/kustomization.yaml`, `resources:\n  - deployment.yaml\n  - service.yaml\n  - config.yaml\n${ownEntry}`);
    put(root, `apps/${app}/base/deployment.yaml`, deployment(app, a % 5 === 0 ? `${name}:latest` : appImage(a)));
    put(
      root,
      `apps/${app}/base/service.yaml`,
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${app}\nspec:\n  ports:\n    - port: 80\n      targetPort: 8080\n`,
    );
    put(root, `apps/${app}/base/config.yaml`, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${app}\ndata:\n  LOG_LEVEL: info\n`);
    const components = [a % 2 === 0 ? '../../../../components/istio-sidecar' : '', a % 3 === 0 ? '../../../../components/monitoring' : ''].filter(Boolean);
    put(
      root,
      `apps/${app}/overlays/prod/kustomization.yaml`,
      `namePrefix: prod-\nresources:\n  - ../../base\n${components.length ? `components:\n${components.map((c) => `  - ${c}`).join('\n')}\n` : ''}patches:\n  - target:\n      kind: Deployment\n      name: ${app}\n    patch: |-\n      - op: replace\n        path: /spec/replicas\n        value: 4\n`,
    );
    // Every third dev overlay pins its own build of the image, over the base's.
    const devEntry = a % 3 === 0 ? `images:\n  - name: ${name}\n    newName: registry.example.com/dev/app-${a}\n    newTag: dev-${a}\n` : '';
    put(root, `apps/${app}/overlays/dev/kustomization.yaml`, `namePrefix: dev-\nresources:\n  - ../../base\n${devEntry}`);
  }
  put(
    root,
    'components/istio-sidecar/kustomization.yaml',
    'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n  - path: sidecar.yaml\n    target:\n      kind: Deployment\n',
  );
  put(
    root,
    'components/istio-sidecar/sidecar.yaml',
    `- op: add\n  path: /spec/template/spec/containers/-\n  value:\n    name: istio-proxy\n    image: ${SIDECAR}\n`,
  );
  put(
    root,
    'components/monitoring/kustomization.yaml',
    `apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n  - target:\n      kind: Deployment\n    patch: |-\n      - op: add\n        path: /spec/template/spec/containers/-\n        value:\n          name: exporter\n          image: ${EXPORTER}\n`,
  );
  for (let c = 0; c < 5; c++) {
    const [repository, tag] = chartImage(c).split(/:(?=[^:]+$)/);
    put(root, `charts/chart-${c}/Chart.yaml`, `apiVersion: v2\nname: chart-${c}\nversion: 0.${c}.0\nappVersion: 2.${c}.0\n`);
    put(root, `charts/chart-${c}/values.yaml`, `replicaCount: 1\nimage:\n  repository: ${repository}\n  tag: ${tag}\n  pullPolicy: IfNotPresent\n`);
    put(
      root,
      `charts/chart-${c}/templates/deployment.yaml`,
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ include "chart.fullname" . }}\nspec:\n  template:\n    spec:\n      containers:\n        - name: {{ .Chart.Name }}\n          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"\n`,
    );
    put(
      root,
      `charts/chart-${c}/templates/tests/test-connection.yaml`,
      `{{- if .Values.tests.enabled }}\napiVersion: v1\nkind: Pod\nmetadata:\n  name: "{{ .Release.Name }}-test"\n  annotations:\n    "helm.sh/hook": test\nspec:\n  containers:\n    - name: wget\n      image: ${INIT}\n      command: ['wget', '{{ .Release.Name }}:80']\n{{- end }}\n`,
    );
  }
  return writeGenerated(root, 'generated/monitoring/manifests.yaml', 5 * 1000 * 1000);
}

/** One multi-document file of about `bytes`: Deployments, ConfigMaps, Services, ClusterRoles, as a monitoring stack generates. */
function writeGenerated(root: string, path: string, bytes: number): number {
  const docs: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    let doc: string;
    if (i % 5 === 0) doc = deployment(`monitor-${i}`, generatedImage(i));
    else if (i % 5 === 1)
      doc = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: monitor-${i}\ndata:\n  config.yaml: |\n${Array.from({ length: 30 }, (_, j) => `    key${j}: value-${j}-${'x'.repeat(40)}\n`).join('')}`;
    else if (i % 5 === 2)
      doc = `apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: monitor-${i}\nrules:\n${'  - apiGroups: [""]\n    resources: [pods, services, endpoints]\n    verbs: [get, list, watch]\n'.repeat(10)}`;
    else doc = `apiVersion: v1\nkind: Service\nmetadata:\n  name: monitor-${i}\n  namespace: monitoring\nspec:\n  ports:\n    - port: 9090\n`;
    docs.push(doc);
    size += doc.length + 4;
  }
  put(root, path, docs.join('---\n'));
  return size;
}
