/** The format of manifest images, as kustomize builds them (src/rewriter/edit/formats/manifest-images.ts): its golden cases, test/fixtures/formats/manifest-images/. */
import { describe } from 'node:test';
import { goldenCases } from '../../support/golden.ts';

describe('manifest-images', () => goldenCases('formats/manifest-images'));
