/**
 * Helm chart templates: Go templates that produce YAML, never YAML themselves. A template such as
 * `{{- if .Values.job.enabled }}` does not parse, so it is never given to the YAML parser (which
 * would call it broken); its literal images, the lines that say `image: busybox:1.36` with no
 * template action, are found by their text and edited in place like any other literal. An image
 * the template composes from values is the values' business (./helm-values.ts).
 */
import { dirname, join, sep } from 'node:path';
import { existsSync } from 'node:fs';
import { Scalar } from 'yaml';
import { lineOf, type ScalarSite } from './yaml-scalars.ts';

/** A file under a chart's `templates/` (a directory beside a `Chart.yaml`) that holds template actions. */
export function isChartTemplate(file: string, text: string, root: string): boolean {
  const chart = text.includes('{{') ? chartDirOf(file, root) : undefined;
  return chart !== undefined && file.startsWith(join(chart, 'templates') + sep);
}

/** The chart a file belongs to: the nearest directory above it, up to `root`, that holds a `Chart.yaml`. */
export function chartDirOf(file: string, root: string): string | undefined {
  for (let dir = dirname(file); dir.startsWith(root) && dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'Chart.yaml'))) return dir;
    if (dir === root) break;
  }
  return undefined;
}

/**
 * `image:` keys whose whole value is a literal (plain, or in single or double quotes), with no
 * template action on the line: `image: busybox:1.36`, `- image: "nginx:1.25" # pinned`. Lines are
 * YAML's (\n or \r, never U+2028), and a comment starts only after a space: `app:1#x` is one value.
 */
const LITERAL_IMAGE =
  /(?<![^\n\r])([ \t]*(?:-[ \t]+)?image:[ \t]+)(?:"([^"\\{}\s]+)"|'([^'{}\s]+)'|([^\s"'{}#&*!|>%@`][^\s{}#]*))(?:[ \t]+#[^\n\r]*)?[ \t]*(?=[\r\n]|$)/g;

/** The literal images of a template, as sites the planner edits like a parsed literal's. */
export function templateImageLiterals(text: string): ScalarSite[] {
  const out: ScalarSite[] = [];
  // What a template action spans (a `{{/* comment */}}` over several lines, say) is never a literal.
  const actions = [...text.matchAll(/\{\{[\s\S]*?\}\}/g)].map((m) => [m.index, m.index + m[0].length] as const);
  const inAction = (offset: number) => actions.some(([start, end]) => offset > start && offset < end);
  for (const match of text.matchAll(LITERAL_IMAGE)) {
    if (inAction(match.index)) continue;
    const value = match[2] ?? match[3] ?? match[4]!;
    const start = match.index + match[1]!.length;
    const raw = match[2] !== undefined ? `"${value}"` : match[3] !== undefined ? `'${value}'` : value;
    const node = new Scalar(value);
    node.type = match[2] !== undefined ? Scalar.QUOTE_DOUBLE : match[3] !== undefined ? Scalar.QUOTE_SINGLE : Scalar.PLAIN;
    out.push({ node, value, start, end: start + raw.length, line: lineOf(text, start), raw });
  }
  return out;
}
