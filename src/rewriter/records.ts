/**
 * What a handoff record asks of the rewriter, in the shapes its parts take: the replacements the
 * planners make, the containers the render proofs check, the unit an edit session keeps or refuses.
 * One place, so the edit, the proof and the pull request never read a record differently.
 */
import { pinnedBackup, type HandoffRecord } from '../handoff/schema.ts';
import { parseReference } from '../image/reference.ts';
import type { Replacement } from './edit/planned-edits.ts';
import type { ExpectedImage } from './proof/compare.ts';
import type { EditUnit } from './session.ts';

/** Each image's replacement: its source (as the workload names it) by its pinned backup. */
export function recordReplacements(record: HandoffRecord): Array<Replacement & { readonly asWritten: string }> {
  return record.images.map((image) => ({ from: parseReference(image.source), to: pinnedBackup(image), asWritten: image.source }));
}

/** Each container of the record's workload, expected to run its source before the change and its backup after. */
export function expectedImages(record: HandoffRecord): ExpectedImage[] {
  return record.images.map((i) => ({
    kind: record.workload.kind,
    name: record.workload.name,
    container: i.container,
    init: i.init,
    source: i.source,
    backup: i.backup,
    digest: i.digest,
  }));
}

/** The record as one unit of an edit session of manifests (./session.ts). */
export function editUnit(record: HandoffRecord): EditUnit {
  return {
    id: record.id,
    replacements: recordReplacements(record),
    // --backup-pull secret:NAME where nothing lists the Secret: the pod template gets it in the same change.
    ...(record.pull?.via === 'secret' && record.pull.listedBy === 'none' ? { pullSecret: { workload: record.workload, secret: record.pull.secret } } : {}),
    // A workload whose chart is in Git renders through Helm, not kustomize: its edit is checked as a whole only.
    ...(record.owner?.kind === 'HelmRelease' ? {} : { expected: expectedImages(record).map((e) => ({ ...e, id: record.id })) }),
  };
}
