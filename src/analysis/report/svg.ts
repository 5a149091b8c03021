import type { SpacePicture, SpaceSegment } from './space';
import { escapeHtml as esc, humanBytes } from './format';

/** Fill for a bin: data pages dark teal, zero pages pale, uncaptured hatched grey. */
function binFill(dataPages: number, zeroPages: number, pages: number): string {
  if (pages === 0 || dataPages + zeroPages === 0) return 'url(#uncaptured)';
  const dataShare = dataPages / (dataPages + zeroPages);
  if (dataShare === 0) return '#cfe8e4';
  // Any data at all is clearly visible; more data, darker.
  const l = Math.round(58 - 30 * dataShare);
  return `hsl(172, 62%, ${l}%)`;
}

function heatFill(changed: number, pages: number): string {
  if (changed === 0) return '#eef1f4';
  const share = Math.min(1, changed / Math.max(1, pages));
  const l = Math.round(62 - 30 * Math.sqrt(share));
  return `hsl(8, 85%, ${l}%)`;
}

function title(seg: SpaceSegment): string {
  return `${seg.name} (${seg.regionKind}) ${seg.start}-${seg.end} ${humanBytes(BigInt(seg.end) - BigInt(seg.start))}`;
}

const DEFS = `<defs><pattern id="uncaptured" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#e4e6ea"/><line x1="0" y1="0" x2="0" y2="6" stroke="#b8bdc6" stroke-width="2"/></pattern><pattern id="gap" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#fff"/><circle cx="2" cy="2" r="0.8" fill="#9aa1ab"/></pattern></defs>`;

/**
 * The address space drawn to a segmented scale (see space.ts): one rectangle per region split into
 * bins, a labelled axis of region names and start addresses, and (heat = true) a strip of changed
 * pages under it. Pure SVG, no script, no external references.
 */
export function renderSpaceSvg(p: SpacePicture, options: { heat?: boolean } = {}): string {
  const W = p.width;
  const top = 8;
  const barH = 46;
  const heatH = options.heat ? 22 : 0;
  const labelY = top + barH + (heatH ? heatH + 8 : 0) + 16;
  const H = labelY + LABEL_ROWS * LABEL_ROW_H - 6;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="space" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="guest-physical address space, segmented scale">`,
    DEFS,
  ];
  for (const seg of p.segments) {
    if (seg.kind === 'gap') {
      out.push(`<g class="gap"><title>unmapped ${esc(seg.start)}-${esc(seg.end)}</title><rect x="${seg.x.toFixed(2)}" y="${top}" width="${seg.width.toFixed(2)}" height="${barH + heatH + (heatH ? 8 : 0)}" fill="url(#gap)"/></g>`);
      continue;
    }
    out.push(`<g class="region" data-name="${esc(seg.name)}" data-kind="${esc(seg.regionKind)}" data-start="${esc(seg.start)}" data-end="${esc(seg.end)}"><title>${esc(title(seg))}</title>`);
    const total = seg.bins.length || 1;
    seg.bins.forEach((b, i) => {
      const bx = seg.x + (seg.width * i) / total;
      const bw = seg.width / total + 0.02;
      const io = seg.regionKind !== 'ram' && seg.regionKind !== 'rom' && seg.regionKind !== 'romd' && seg.regionKind !== 'ram-device';
      const fill = io && b.dataPages + b.zeroPages === 0 ? '#c9ced6' : binFill(b.dataPages, b.zeroPages, b.pages);
      out.push(`<rect class="bin" shape-rendering="crispEdges" x="${bx.toFixed(2)}" y="${top}" width="${bw.toFixed(2)}" height="${barH}" fill="${fill}" data-data="${b.dataPages}" data-zero="${b.zeroPages}"/>`);
      if (options.heat) out.push(`<rect class="heat" shape-rendering="crispEdges" x="${bx.toFixed(2)}" y="${top + barH + 8}" width="${bw.toFixed(2)}" height="${heatH}" fill="${heatFill(b.changedPages, b.pages)}" data-changed="${b.changedPages}"/>`);
    });
    out.push(`<rect x="${seg.x.toFixed(2)}" y="${top}" width="${seg.width.toFixed(2)}" height="${barH}" fill="none" stroke="#2b3440" stroke-width="1"/>`);
    if (options.heat) out.push(`<rect x="${seg.x.toFixed(2)}" y="${top + barH + 8}" width="${seg.width.toFixed(2)}" height="${heatH}" fill="none" stroke="#8a93a0" stroke-width="0.6"/>`);
    out.push('</g>');
  }
  out.push(...labels(p, top + barH + heatH + (heatH ? 8 : 0), labelY));
  out.push('</svg>');
  return out.join('');
}

const LABEL_ROWS = 3;
const LABEL_ROW_H = 44;

/**
 * Region labels (name, start, size) in up to three staggered rows. Larger regions are placed first so
 * they always get a label; a small region whose label would overlap in every row keeps only its tooltip.
 * Ticks are drawn before text, and text has a white halo, so lines never run through words.
 */
function labels(p: SpacePicture, barBottom: number, labelY: number): string[] {
  const W = p.width;
  const placed: Array<Array<[number, number]>> = Array.from({ length: LABEL_ROWS }, () => []);
  const ticks: string[] = [];
  const texts: string[] = [];
  const regions = p.segments.filter((s) => s.kind === 'region').sort((a, b) => b.width - a.width);
  for (const seg of regions) {
    const name = seg.name.length > 22 ? `${seg.name.slice(0, 21)}…` : seg.name;
    const size = humanBytes(BigInt(seg.end) - BigInt(seg.start));
    const textWidth = Math.max(name.length * 6.4, seg.start.length * 6.1, size.length * 6.1) + 8;
    // Near the right edge, hang the label to the left of the segment's end instead.
    const anchorEnd = seg.x + textWidth > W;
    const lx = anchorEnd ? seg.x + seg.width - 2 : seg.x + 3;
    const left = anchorEnd ? lx - textWidth : seg.x;
    const right = left + textWidth;
    const row = placed.findIndex((boxes) => boxes.every(([l, r]) => right <= l || left >= r));
    if (row === -1) continue;
    placed[row]!.push([left, right]);
    const y = labelY + row * LABEL_ROW_H;
    const tick = anchorEnd ? seg.x + seg.width : seg.x;
    const anchor = anchorEnd ? ' text-anchor="end"' : '';
    ticks.push(`<line x1="${tick.toFixed(2)}" y1="${barBottom}" x2="${tick.toFixed(2)}" y2="${y + 30}" stroke="#8a93a0" stroke-width="0.8"/>`);
    texts.push(`<g class="label" data-for="${esc(seg.name)}"><text x="${lx.toFixed(2)}" y="${y}" class="lbl"${anchor}>${esc(name)}</text><text x="${lx.toFixed(2)}" y="${y + 13}" class="addr"${anchor}>${esc(seg.start)}</text><text x="${lx.toFixed(2)}" y="${y + 26}" class="addr"${anchor}>${esc(size)}</text></g>`);
  }
  return [...ticks, ...texts];
}

export function legendHtml(heat: boolean): string {
  const item = (cls: string, text: string): string => `<span class="key"><span class="sw ${cls}"></span>${esc(text)}</span>`;
  return `<div class="legend">${item('sw-data', 'data pages')}${item('sw-zero', 'zero pages')}${item('sw-unc', 'not captured')}${item('sw-io', 'I/O / device')}${item('sw-gap', 'unmapped gap (collapsed)')}${heat ? item('sw-heat', 'changed pages (darker = more)') : ''}</div>`;
}
