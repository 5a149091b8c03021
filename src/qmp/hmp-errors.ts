/**
 * HMP reports most failures as *successful* `human-monitor-command` replies whose text is an error
 * message. These patterns are the ones QEMU 7.2 prints (see shared/reference transcripts 03, 13, 15,
 * 19 and monitor/hmp.c); they are matched against the first non-empty line only, because normal
 * output (e.g. `info mtree`) can contain words like "invalid" further down.
 */
const HMP_ERROR_PATTERNS: RegExp[] = [
  /^unknown command: /, //                               unknown command: 'info nosuchthing'
  /^Error: /, //                                         hmp_handle_error() for QMP-backed HMP commands
  /^Invalid parameter/, //                               Invalid parameter 'x'
  /^invalid /i, //                                       invalid char in expression, invalid CPU index ...
  /^Parameter '[^']*' expects /, //                      Parameter 'cpu-index' expects a CPU number
  /^Invalid MCE bank number/, //                         mce with a bad bank
  /^\S+: (unsupported option|missing |invalid |unexpected |extraneous |integer expected|too many |unknown )/, // argument parser
  /^Try "help /, //                                      follows parser errors
  /^[0-9a-f]+: Cannot access memory$/, //                x/xp on unmapped memory
  /^Could not /, //                                      Could not open '...'
  /^No (CPU|such) /, //                                  No CPU / No such device
];

/** The error line if `text` (an HMP reply) is an HMP error message, undefined for normal output. */
export function hmpErrorLine(text: string): string | undefined {
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '')?.trim();
  if (first === undefined) return undefined;
  return HMP_ERROR_PATTERNS.some((re) => re.test(first)) ? first : undefined;
}
