/** The format of literal images in chart templates (src/rewriter/edit/formats/template-literals.ts): its golden cases, test/fixtures/formats/template-literals/. */
import { describe } from 'node:test';
import { goldenCases } from '../../support/golden.ts';

describe('template-literals', () => goldenCases('formats/template-literals'));
