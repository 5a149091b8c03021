import type { Block, Inline, ReportDoc } from './doc';

/** Backtick fence long enough for any run of backticks inside the code text. */
function codeSpan(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(longest + 1);
  return longest > 0 ? `${fence} ${text} ${fence}` : `${fence}${text}${fence}`;
}

/**
 * Escapes what GitHub/GitLab Markdown would otherwise interpret. Underscores only at word edges:
 * intraword ones (GUEST_PANICKED, pc_ram) are literal in GFM and stay readable when pasted raw.
 */
function escapeText(text: string): string {
  return text
    .replace(/([\\`*[\]<|])/g, '\\$1')
    .replace(/(^|\W)_|_(?=\W|$)/g, (m) => m.replace('_', '\\_'))
    .replace(/\n/g, ' ');
}

function inline(parts: Inline[], inTable = false): string {
  return parts
    .map((p) => {
      if (typeof p === 'string') return escapeText(p);
      if ('code' in p) return inTable ? codeSpan(p.code).replace(/\|/g, '\\|') : codeSpan(p.code);
      return `**${escapeText(p.strong)}**`;
    })
    .join('');
}

function block(b: Block): string {
  switch (b.type) {
    case 'heading':
      return `${'#'.repeat(b.level)} ${escapeText(b.text)}`;
    case 'para':
      return inline(b.parts);
    case 'list':
      return b.items.map((i) => `- ${inline(i)}`).join('\n');
    case 'code': {
      const fence = b.text.includes('```') ? '~~~~' : '```';
      const body = `${fence}\n${b.text.trimEnd()}\n${fence}`;
      // <details> renders as a collapsible section on GitHub and GitLab.
      return b.summary ? `<details><summary>${escapeText(b.summary)}</summary>\n\n${body}\n\n</details>` : body;
    }
    case 'figure':
      return `_${escapeText(b.alt)}_`;
    case 'table': {
      const head = b.head.every((h) => h === '') ? b.head.map(() => ' ') : b.head.map((h) => escapeText(h));
      const sep = b.head.map((_, i) => (b.align?.[i] === 'right' ? '---:' : '---'));
      const rows = b.rows.map((r) => `| ${r.map((c) => inline([c], true)).join(' | ')} |`);
      return [`| ${head.join(' | ')} |`, `| ${sep.join(' | ')} |`, ...rows].join('\n');
    }
  }
}

/** Markdown that reads well pasted into a GitHub or GitLab issue. */
export function renderMarkdown(doc: ReportDoc): string {
  return `${doc.blocks.map(block).join('\n\n')}\n`;
}
