import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * Size limits of the house rules (README "Files small with one job"): a source file over 500 lines or a
 * function over 80 lines is doing more than one job. This reads src/ with the TypeScript compiler's
 * parser (not regexes) so that arrow functions, methods, accessors and class constructors all count, and
 * a function's length is the span of its code from its first token to its closing brace (leading
 * comments and JSDoc excluded; blank lines and comments inside included, as eslint's max-lines-per-function
 * does by default). A nested function is measured on its own and also counts inside its parent.
 *
 * Run it directly for a list: `node dist/test/architecture/code-size.js [--max-function N] [--max-file N]`.
 */

export const MAX_FILE_LINES = 500;
export const MAX_FUNCTION_LINES = 80;

export interface LongFile {
  file: string;
  lines: number;
}

export interface LongFunction {
  file: string;
  name: string;
  line: number;
  lines: number;
}

export const SRC = resolve(__dirname, '..', '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Lines in a file as `wc -l` counts them (a final line without a newline still counts). */
function lineCount(text: string): number {
  if (text === '') return 0;
  const newlines = text.split('\n').length - 1;
  return text.endsWith('\n') ? newlines : newlines + 1;
}

type FunctionNode =
  | ts.FunctionDeclaration
  | ts.MethodDeclaration
  | ts.ConstructorDeclaration
  | ts.GetAccessorDeclaration
  | ts.SetAccessorDeclaration
  | ts.ArrowFunction
  | ts.FunctionExpression;

function isFunctionNode(node: ts.Node): node is FunctionNode {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node) ||
    ts.isArrowFunction(node) ||
    ts.isFunctionExpression(node)
  );
}

/** A readable name: the declared one, the class member's (Class.method), or what an anonymous function is assigned to. */
function functionName(node: FunctionNode, sf: ts.SourceFile): string {
  const own = (n: ts.Node): string | undefined => {
    const named = n as { name?: ts.Node };
    return named.name !== undefined ? named.name.getText(sf) : undefined;
  };
  let name = ts.isConstructorDeclaration(node) ? 'constructor' : own(node);
  if (name === undefined) {
    const parent = node.parent;
    if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) name = own(parent);
    else if (ts.isCallExpression(parent)) name = `(callback of ${parent.expression.getText(sf).slice(0, 40)})`;
  }
  name ??= '(anonymous)';
  const cls = node.parent;
  if ((ts.isClassDeclaration(cls) || ts.isClassExpression(cls)) && cls.name !== undefined) return `${cls.name.text}.${name}`;
  return name;
}

export interface SizeReport {
  files: LongFile[];
  functions: LongFunction[];
}

/** Every file over `maxFile` lines and every function over `maxFunction` lines under `root`. */
export function measure(root = SRC, maxFile = MAX_FILE_LINES, maxFunction = MAX_FUNCTION_LINES): SizeReport {
  const files: LongFile[] = [];
  const functions: LongFunction[] = [];
  for (const path of sourceFiles(root)) {
    const text = readFileSync(path, 'utf8');
    const file = relative(root, path).split(sep).join('/');
    const lines = lineCount(text);
    if (lines > maxFile) files.push({ file, lines });
    const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    const visit = (node: ts.Node): void => {
      if (isFunctionNode(node) && node.body !== undefined) {
        const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
        const span = last - first + 1;
        if (span > maxFunction) functions.push({ file, name: functionName(node, sf), line: first + 1, lines: span });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return { files, functions };
}

function main(argv: string[]): void {
  const opt = (flag: string, fallback: number): number => {
    const i = argv.indexOf(flag);
    const n = i >= 0 ? Number(argv[i + 1]) : fallback;
    if (!Number.isInteger(n) || n < 1) {
      process.stderr.write(`code-size: ${flag} takes a whole number of lines\n`);
      process.exit(2);
    }
    return n;
  };
  const { files, functions } = measure(SRC, opt('--max-file', MAX_FILE_LINES), opt('--max-function', MAX_FUNCTION_LINES));
  for (const f of files.sort((a, b) => b.lines - a.lines)) process.stdout.write(`file     ${String(f.lines).padStart(5)}  src/${f.file}\n`);
  for (const f of functions.sort((a, b) => b.lines - a.lines)) {
    process.stdout.write(`function ${String(f.lines).padStart(5)}  src/${f.file}:${f.line} ${f.name}\n`);
  }
  process.stdout.write(`${files.length} file(s), ${functions.length} function(s) over the limits\n`);
}

if (require.main === module) main(process.argv.slice(2));
