/**
 * Images of the manifests as kustomize builds them (a plain file is a build of its own): for every
 * build that runs a requested image, the text that decides it is edited: the literal, the patch that
 * replaced it, or the last `images:` entry that changed it. A build that shares that text but runs
 * another image keeps it: an entry that matched a moved literal is made to match the new one and to
 * give what it gave before. An entry that no build applies is left alone, unless its kustomization
 * builds on what the tree does not show (a remote base, a base outside the path), where its pinned
 * output is all there is to go by.
 */
import { relative } from 'node:path';
import { parseReference } from '../../../image/reference.ts';
import type { YAMLMap } from 'yaml';
import type { WholeSite } from '../kustomize-build.ts';
import { entryOutput, nameOf, splitImage, type KustomizeEntry } from '../kustomize.ts';
import { PlannedEdits, type Replacement } from '../planned-edits.ts';
import { setInMap } from '../yaml-insert.ts';
import { formatScalar } from '../yaml-scalars.ts';
import type { Format, PlanContext } from './format.ts';

export const manifestImages: Format = {
  name: 'manifest images, as kustomize builds them',
  plan({ rootReal, parsed, kustomizations, build: model, matches }: PlanContext): PlannedEdits {
    const planned = new PlannedEdits();
    const rel = (file: string) => relative(rootReal, file);
    // What each build must run: the text that decides a requested image is given the new one.
    const wholeTo = new Map<WholeSite, string>();
    const entryFields = new Map<KustomizeEntry, Map<string, string>>();
    const deciders = new Set<KustomizeEntry>();
    /** The image a moved entry now gives. */
    const entryTo = new Map<KustomizeEntry, string>();
    const setFields = (entry: KustomizeEntry, fields: Record<string, string | undefined>) => {
      const set = entryFields.get(entry) ?? new Map<string, string>();
      for (const [key, value] of Object.entries(fields)) if (value !== undefined && !set.has(key)) set.set(key, value);
      entryFields.set(entry, set);
    };
    const moveEntry = (entry: KustomizeEntry, before: string, replacement: Replacement, what = `kustomize images entry "${entry.name}"`) => {
      planned.report(entry, { file: rel(entry.file), line: entry.line, what, before, after: replacement.to });
      if (replacement.detectOnly) return;
      deciders.add(entry);
      entryTo.set(entry, replacement.to);
      const to = parseReference(replacement.to);
      setFields(entry, { newName: nameOf(replacement.to), ...(to.digest !== undefined ? { digest: to.digest } : { newTag: to.tag }) });
    };
    for (const render of model.containers) {
      const replacement = matches(render.value);
      if (!replacement) continue;
      const entry = render.entries.at(-1);
      if (entry) {
        moveEntry(entry, render.value, replacement);
      } else {
        const { whole } = render;
        planned.report(whole, {
          file: rel(whole.source.file),
          line: whole.source.line(whole.site.start),
          what: whole.where,
          before: render.value,
          after: replacement.to,
        });
        if (!replacement.detectOnly) wholeTo.set(whole, replacement.to);
      }
    }
    // An entry whose kustomization builds on what the tree does not show: its pinned output is all there is.
    for (const k of kustomizations) {
      if (!model.opaque.has(k)) continue;
      for (const entry of k.images) {
        const output = model.reached.has(entry) || entryFields.has(entry) ? undefined : entryOutput(entry, undefined);
        const replacement = matches(output);
        if (replacement) moveEntry(entry, output!, replacement);
      }
    }

    // What the other builds keep. The entry that follows a moved text in a build (a literal, or a base's
    // entry moved for the builds it decides) matched the old image and must match the new one; where it
    // does not decide a moved image itself, it is made to give what it gave before.
    for (const render of model.containers) {
      let input = render.whole.site.value;
      let to = wholeTo.get(render.whole);
      let next = 0;
      while (to === undefined && next < render.entries.length - 1) {
        input = entryOutput(render.entries[next]!, input)!;
        to = entryTo.get(render.entries[next]!);
        next++;
      }
      const follower = render.entries[next];
      if (to === undefined || !follower) continue;
      setFields(follower, { name: nameOf(to) });
      if (deciders.has(follower)) continue;
      const kept = entryOutput(follower, input)!;
      const { name, tag, digest } = splitImage(kept);
      setFields(follower, { newName: name, newTag: tag, digest });
      planned.report(follower, {
        file: rel(follower.file),
        line: follower.line,
        what: `kustomize images entry "${follower.name}" names the moved image, so ${rel(render.root) || '.'} still runs ${kept}`,
        before: follower.name,
        after: nameOf(to),
      });
    }
    for (const [whole, to] of wholeTo)
      planned.editSource(rootReal, whole.source, whole.source.line(whole.site.start), whole.where, [
        { start: whole.site.start, end: whole.site.end, text: formatScalar(to, whole.site) },
      ]);
    for (const [entry, fields] of entryFields) {
      const text = parsed.get(entry.file)!.text;
      planned.edit(
        entry.file,
        ['name', 'newName', 'newTag', 'digest'].flatMap((key) => (fields.has(key) ? setInMap(text, entry.node as YAMLMap, key, fields.get(key)!) : [])),
      );
    }
    return planned;
  },
};
