// Validation of JSON sections on read: shapes, per-section schemas and the parse limits.
export { ShapeError, type Shape } from '../../util/shape';
export { SECTION_SHAPES } from './sections';
export { jsonLimitProblem, MAX_JSON_DEPTH, MAX_JSON_SECTION_BYTES, MAX_JSON_VALUES } from './limits';
export { readJsonSection, type JsonSectionSource, type SectionTypes } from './read';
