/**
 * A tiny document model both report formats render from, so the Markdown and HTML reports always
 * carry the same content. Inline text is plain; `code` and `strong` spans are the only markup.
 */
export type Inline = string | { code: string } | { strong: string };

export type Block =
  | { type: 'heading'; level: 1 | 2 | 3; text: string; id?: string }
  | { type: 'para'; parts: Inline[] }
  | { type: 'table'; head: string[]; rows: Inline[][]; align?: Array<'left' | 'right'>; className?: string }
  | { type: 'list'; items: Inline[][] }
  | { type: 'code'; text: string; summary?: string }
  /** A picture: only the HTML report draws it; Markdown shows `alt`. */
  | { type: 'figure'; figure: 'address-space' | 'heat-strip'; alt: string };

export interface ReportDoc {
  title: string;
  blocks: Block[];
}

export const code = (text: string): Inline => ({ code: text });
export const strong = (text: string): Inline => ({ strong: text });
