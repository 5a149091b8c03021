/** Small text helpers shared by the report renderers and the CLI tables. */

// One formatter for sizes and one for counts everywhere (util/); re-exported for the report modules.
export { humanBytes } from '../../util/bytes';
export { plural } from '../../util/text';

/** Text safe inside HTML and SVG, in element content and in quoted attributes. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
