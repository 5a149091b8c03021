import type { Block, Inline, ReportDoc } from './doc';
import type { SpacePicture } from './space';
import { escapeHtml as esc } from './format';
import { legendHtml, renderSpaceSvg } from './svg';

const CSS = `
:root{--fg:#1d2530;--muted:#5b6573;--line:#d9dee5;--bg:#fff;--accent:#0f766e;--bad:#b42318}
*{box-sizing:border-box}
body{margin:0;background:#f5f7fa;color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1100px;margin:24px auto;padding:8px 32px 32px;background:var(--bg);border:1px solid var(--line);border-radius:8px}
h1{font-size:22px;margin:16px 0 8px;padding-bottom:8px;border-bottom:3px solid var(--accent)}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:14px;margin:18px 0 6px;color:var(--muted)}
code,pre{font:12.5px/1.45 ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace}
code{background:#f0f3f6;padding:1px 4px;border-radius:4px}
pre{background:#0f1720;color:#d7e0ea;padding:12px;border-radius:6px;overflow:auto}
table{border-collapse:collapse;margin:8px 0 12px;min-width:40%}
th,td{border:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f3f6;font-weight:600}
td.r{text-align:right}
table.regs td:nth-child(odd){font-family:ui-monospace,Menlo,monospace;font-weight:600;background:#fafbfc}
table.regs th:nth-child(odd){width:1%}
table.regdiff td:first-child{font-family:ui-monospace,Menlo,monospace;font-weight:600}
table.regdiff td{min-width:12em}
table.errors strong{color:var(--bad)}
strong{color:inherit}
details{margin:8px 0}summary{cursor:pointer;color:var(--muted)}
figure{margin:12px 0 16px}figcaption{color:var(--muted);font-size:12px;margin-top:4px}
svg.space text{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg.space text.lbl{font:600 11px system-ui,sans-serif;fill:#1d2530}
svg.space text.addr{font:10px ui-monospace,Menlo,monospace;fill:#5b6573}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:var(--muted);margin-top:4px}
.key{display:inline-flex;align-items:center;gap:5px}
.sw{display:inline-block;width:14px;height:12px;border:1px solid #2b3440}
.sw-data{background:hsl(172,62%,28%)}.sw-zero{background:#cfe8e4}.sw-io{background:#c9ced6}
.sw-unc{background:repeating-linear-gradient(45deg,#e4e6ea 0 3px,#b8bdc6 3px 5px)}
.sw-gap{background:radial-gradient(#9aa1ab 1px,#fff 1.5px) 0 0/4px 4px}
.sw-heat{background:linear-gradient(90deg,hsl(8,85%,60%),hsl(8,85%,32%))}
footer{color:var(--muted);font-size:12px;margin-top:24px}
`;

function inline(parts: Inline[]): string {
  return parts
    .map((p) => (typeof p === 'string' ? esc(p) : 'code' in p ? `<code>${esc(p.code)}</code>` : `<strong>${esc(p.strong)}</strong>`))
    .join('');
}

function block(b: Block, picture: SpacePicture | undefined): string {
  switch (b.type) {
    case 'heading':
      return `<h${b.level}${b.id ? ` id="${esc(b.id)}"` : ''}>${esc(b.text)}</h${b.level}>`;
    case 'para':
      return `<p>${inline(b.parts)}</p>`;
    case 'list':
      return `<ul>${b.items.map((i) => `<li>${inline(i)}</li>`).join('')}</ul>`;
    case 'code':
      return b.summary ? `<details><summary>${esc(b.summary)}</summary><pre>${esc(b.text)}</pre></details>` : `<pre>${esc(b.text)}</pre>`;
    case 'figure': {
      if (!picture || picture.segments.length === 0) return `<p><em>${esc('No memory map or captured memory to draw.')}</em></p>`;
      const heat = b.figure === 'heat-strip';
      const caption = heat
        ? 'Guest-physical address space of B (top) and pages that differ from A (bottom strip). Segmented scale: every region gets at least 2% of the width, the rest is shared in proportion to size; unmapped gaps are collapsed.'
        : 'Guest-physical address space. Segmented scale: every region gets at least 2% of the width, the rest is shared in proportion to size; unmapped gaps are collapsed. Hover a region for its exact range.';
      return `<figure id="${heat ? 'heat-strip' : 'address-space'}">${renderSpaceSvg(picture, { heat })}${legendHtml(heat)}<figcaption>${esc(caption)}</figcaption></figure>`;
    }
    case 'table': {
      const showHead = !b.head.every((h) => h === '');
      const head = showHead ? `<thead><tr>${b.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>` : '';
      const rows = b.rows.map((r) => `<tr>${r.map((c, i) => `<td${b.align?.[i] === 'right' ? ' class="r"' : ''}>${inline([c])}</td>`).join('')}</tr>`).join('');
      return `<table${b.className ? ` class="${esc(b.className)}"` : ''}>${head}<tbody>${rows}</tbody></table>`;
    }
  }
}

/**
 * One self-contained HTML file: inline CSS and SVG, no scripts and no external references, so it can be
 * attached to a ticket and opened offline. The CSP meta tag makes the browser enforce that.
 */
export function renderHtml(doc: ReportDoc, picture?: SpacePicture): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="vmpm">
<title>${esc(doc.title)}</title>
<style>${CSS}</style></head>
<body><main>
${doc.blocks.map((b) => block(b, picture)).join('\n')}
<footer>Self-contained report: no scripts, no external resources.</footer>
</main></body></html>
`;
}
