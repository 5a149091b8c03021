import { bundleDoc, diffDoc } from './content';
import { renderHtml } from './html';
import { renderMarkdown } from './markdown';
import type { BundleReport, DiffReport } from './model';

export { buildBundleReport, buildDiffReport, type BundleReport, type DiffReport } from './model';
export { buildSpacePicture, type SpacePicture } from './space';

export type ReportFormat = 'md' | 'html' | 'json';

/** Renders a report model in one of the three formats (json: 2-space indented, hex strings kept). */
export function renderReport(report: BundleReport | DiffReport, format: ReportFormat): string {
  if (format === 'json') return `${JSON.stringify(report, null, 2)}\n`;
  const doc = report.kind === 'bundle' ? bundleDoc(report) : diffDoc(report);
  return format === 'md' ? renderMarkdown(doc) : renderHtml(doc, report.addressSpace);
}
