/** The format of a HelmRelease's values (src/rewriter/edit/formats/release-values.ts): its golden cases, test/fixtures/formats/release-values/. */
import { describe } from 'node:test';
import { goldenCases } from '../../support/golden.ts';

describe('release-values', () => goldenCases('formats/release-values'));
