/**
 * Custom resources whose operators document an image field, and the container of the workload the
 * operator makes from it: a StatefulSet the Prometheus operator creates runs `spec.image` of its
 * Prometheus as container `prometheus`, and reverts any patch of the StatefulSet at once. Such a
 * workload is moved by editing that field in Git, like a workload's image, never by patching what
 * the operator owns. The one table of them: the copier maps a controlled workload's containers to
 * its resource's fields with it, the planner edits the fields, the render proof compares them.
 */
export interface OperatorImageField {
  /** The container the operator runs the field's image in. */
  readonly container: string;
  readonly path: readonly string[];
}

export interface OperatorResource {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly fields: readonly OperatorImageField[];
}

/** By kind. Fields from the prometheus-operator API reference (monitoring.coreos.com/v1). */
export const OPERATOR_RESOURCES: Readonly<Record<string, OperatorResource>> = {
  Prometheus: {
    group: 'monitoring.coreos.com',
    version: 'v1',
    plural: 'prometheuses',
    fields: [
      { container: 'prometheus', path: ['spec', 'image'] },
      { container: 'thanos-sidecar', path: ['spec', 'thanos', 'image'] },
    ],
  },
  Alertmanager: { group: 'monitoring.coreos.com', version: 'v1', plural: 'alertmanagers', fields: [{ container: 'alertmanager', path: ['spec', 'image'] }] },
  ThanosRuler: { group: 'monitoring.coreos.com', version: 'v1', plural: 'thanosrulers', fields: [{ container: 'thanos-ruler', path: ['spec', 'image'] }] },
};

/** The resource of an object with this apiVersion and kind, if it is one of the table's. */
export function operatorResource(apiVersion: string | undefined, kind: string | undefined): OperatorResource | undefined {
  const resource = kind === undefined ? undefined : OPERATOR_RESOURCES[kind];
  return resource && apiVersion?.split('/')[0] === resource.group ? resource : undefined;
}
