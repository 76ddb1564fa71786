/** The format of Helm values files, layered as helm -f merges them (src/rewriter/edit/formats/values-files.ts): its golden cases, test/fixtures/formats/values-files/. */
import { describe } from 'node:test';
import { goldenCases } from '../../support/golden.ts';

describe('values-files', () => goldenCases('formats/values-files'));
