/**
 * Reads and strictly validates a watch policy file (format: samples/policies/README.md). Every mistake is
 * one line naming the file and the offending key, because a typo in a policy that silently matched
 * nothing would only be discovered on the day a real incident was missed.
 */
import { readFileSync, statSync } from 'node:fs';
import { UsageError, describeError } from '../util/errors';
import { isRecord } from '../util/guards';
import { GRADES, defaultRules } from './policy';
import type { FieldMatcher, Grade, Policy, PolicyRule, Scalar } from './policy';

const MAX_POLICY_BYTES = 1 << 20;
const TOP_KEYS = ['defaults', 'rules', 'comment'];
const RULE_KEYS = ['event', 'match', 'runState', 'grade', 'comment'];
const MATCHER_KEYS = ['equals', 'in', 'not', 'prefix', 'exists'];
const EVENT_NAME = /^(\*|[A-Z][A-Z0-9_]*)$/;

export function loadPolicyFile(path: string): Policy {
  let text: string;
  try {
    const info = statSync(path);
    if (!info.isFile()) throw new Error('not a regular file');
    const size = info.size;
    if (size > MAX_POLICY_BYTES) throw new Error(`${size} bytes, more than the 1 MiB a policy may have`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`policy ${path}: cannot read: ${describeError(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    // V8 quotes the offending text, newlines included: keep the message on one line.
    const why = err instanceof Error ? err.message.replace(/\s+/g, ' ') : describeError(err);
    throw new UsageError(`policy ${path}: not valid JSON: ${why}`);
  }
  return parsePolicy(json, path);
}

/** Validates an already-parsed policy document; `source` names it in errors. */
export function parsePolicy(doc: unknown, source: string): Policy {
  const fail = (where: string, what: string): never => {
    throw new UsageError(`policy ${source}: ${where}${where ? ': ' : ''}${what}`);
  };
  if (!isRecord(doc)) return fail('', 'expected a JSON object with a "rules" array');
  checkKeys(doc, TOP_KEYS, '', fail);
  const useDefaults = doc.defaults ?? true;
  if (typeof useDefaults !== 'boolean') fail('defaults', 'expected true or false');
  if (!Array.isArray(doc.rules)) return fail('rules', 'expected an array of rules');
  const rules = doc.rules.map((r, i) => parseRule(r, `rules[${i}]`, source, fail));
  return {
    rules: useDefaults ? [...rules, ...defaultRules()] : rules,
    source: `${source} (${rules.length} rule${rules.length === 1 ? '' : 's'}${useDefaults ? ', then the defaults' : ', defaults off'})`,
  };
}

type Fail = (where: string, what: string) => never;

function parseRule(raw: unknown, where: string, source: string, fail: Fail): PolicyRule {
  if (!isRecord(raw)) return fail(where, 'expected an object like {"event": "GUEST_PANICKED", "grade": "ignore"}');
  checkKeys(raw, RULE_KEYS, where, fail);
  const events = stringList(raw.event, `${where}.event`, fail, 'an event name or an array of them');
  if (events.length === 0) fail(`${where}.event`, 'must name at least one event');
  for (const e of events) {
    if (!EVENT_NAME.test(e)) fail(`${where}.event`, `${JSON.stringify(e)} is not a QMP event name (upper case, e.g. GUEST_PANICKED) or "*"`);
  }
  if (raw.grade === undefined) fail(where, `missing "grade" (one of ${GRADES.join(', ')})`);
  if (typeof raw.grade !== 'string' || !GRADES.includes(raw.grade as Grade)) {
    fail(`${where}.grade`, `${JSON.stringify(raw.grade)} is not one of ${GRADES.join(', ')}`);
  }
  const rule: PolicyRule = { events, match: {}, grade: raw.grade as Grade, origin: `${source} ${where}` };
  if (raw.match !== undefined) {
    if (!isRecord(raw.match)) fail(`${where}.match`, 'expected an object of "field.path": matcher');
    for (const [path, m] of Object.entries(raw.match as Record<string, unknown>)) {
      if (!/^[^.\s]+(\.[^.\s]+)*$/.test(path)) fail(`${where}.match`, `${JSON.stringify(path)} is not a dotted field path`);
      rule.match[path] = parseMatcher(m, `${where}.match.${path}`, fail);
    }
  }
  if (raw.runState !== undefined) rule.runState = stringList(raw.runState, `${where}.runState`, fail, 'a run status or an array of them');
  if (raw.comment !== undefined) {
    if (typeof raw.comment !== 'string') fail(`${where}.comment`, 'expected a string');
    rule.comment = raw.comment as string;
  }
  return rule;
}

function parseMatcher(raw: unknown, where: string, fail: Fail): FieldMatcher {
  if (isScalar(raw)) return { equals: raw };
  if (!isRecord(raw)) return fail(where, 'expected a value to compare with, or one of {equals|in|not|prefix|exists: ...}');
  const keys = Object.keys(raw);
  checkKeys(raw, MATCHER_KEYS, where, fail);
  if (keys.length !== 1) fail(where, `expected exactly one of ${MATCHER_KEYS.join(', ')}, got ${keys.length}`);
  const v = raw[keys[0]!];
  switch (keys[0]) {
    case 'equals':
    case 'not':
      if (!isScalar(v)) fail(`${where}.${keys[0]}`, 'expected a string, number, boolean or null');
      return keys[0] === 'equals' ? { equals: v as Scalar } : { not: v as Scalar };
    case 'in':
      if (!Array.isArray(v) || !v.every(isScalar)) fail(`${where}.in`, 'expected an array of strings, numbers, booleans or null');
      return { in: v as Scalar[] };
    case 'prefix':
      if (typeof v !== 'string') fail(`${where}.prefix`, 'expected a string');
      return { prefix: v as string };
    default:
      if (typeof v !== 'boolean') fail(`${where}.exists`, 'expected true or false');
      return { exists: v as boolean };
  }
}

function stringList(raw: unknown, where: string, fail: Fail, expected: string): string[] {
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw as string[];
  return fail(where, `expected ${expected}`);
}

function checkKeys(obj: Record<string, unknown>, allowed: string[], where: string, fail: Fail): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      fail(where ? `${where}` : '', `unknown key ${JSON.stringify(key)} (expected one of ${allowed.join(', ')})`);
    }
  }
}


function isScalar(v: unknown): v is Scalar {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}
