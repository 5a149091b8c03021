/**
 * The watch policy: which QMP events are serious enough to stop the guest and capture it.
 *
 * A policy is an ordered list of rules; the FIRST rule that matches an event decides its grade.
 * User rules (from a policy file) come before the built-in default rules, so a file can add events,
 * drop them (grade "ignore") or re-grade them, and match on the event's data. The file format is
 * documented in samples/policies/README.md and parsed by policy-file.ts.
 */

/**
 * serious: stop the guest at once and capture it. notable: logged on stderr and journaled.
 * ignore: journaled only (every event is journaled whatever its grade).
 */
export type Grade = 'serious' | 'notable' | 'ignore';
export const GRADES: readonly Grade[] = ['serious', 'notable', 'ignore'];

/** A JSON scalar an event field is compared with. */
export type Scalar = string | number | boolean | null;

/** How one field of the event's data is tested. A bare scalar means `{ "equals": scalar }`. */
export type FieldMatcher =
  | { equals: Scalar }
  | { in: Scalar[] }
  | { not: Scalar }
  | { prefix: string }
  | { exists: boolean };

export interface PolicyRule {
  /** Event names this rule applies to; "*" matches every event. */
  events: string[];
  /** Dotted paths into the event's `data` ("flags.action-required") and how each must match; all must. */
  match: Record<string, FieldMatcher>;
  /** Only when the VM's run status (as the watcher last knew it) is one of these. */
  runState?: string[];
  grade: Grade;
  /** Where the rule came from, for logs: "default #3" or "policy.json rules[0]". */
  origin: string;
  comment?: string;
}

export interface Policy {
  rules: PolicyRule[];
  /** Where the policy came from, for the start-up log line. */
  source: string;
}

/** Default rules, in the order the issue lists them. */
const DEFAULT_RULES: Array<Omit<PolicyRule, 'origin'>> = [
  { events: ['GUEST_PANICKED'], match: {}, grade: 'serious', comment: 'guest kernel panic (pvpanic, hyper-v, s390)' },
  { events: ['GUEST_CRASHLOADED'], match: {}, grade: 'serious', comment: 'guest loaded a crash kernel' },
  { events: ['BLOCK_IO_ERROR'], match: { action: { equals: 'stop' } }, grade: 'serious', comment: 'I/O error that stopped the VM' },
  { events: ['BLOCK_IO_ERROR'], match: {}, runState: ['io-error'], grade: 'serious', comment: 'any I/O error while the VM is in io-error' },
  { events: ['BLOCK_IO_ERROR'], match: {}, grade: 'notable', comment: 'reported or ignored I/O error' },
  { events: ['MEMORY_FAILURE'], match: { 'flags.action-required': { equals: true } }, grade: 'serious', comment: 'action-required memory failure' },
  { events: ['MEMORY_FAILURE'], match: { action: { in: ['reset', 'fatal'] } }, grade: 'serious', comment: 'memory failure QEMU resets or exits for' },
  { events: ['MEMORY_FAILURE'], match: {}, grade: 'notable', comment: 'corrected or ignored memory failure' },
  { events: ['WATCHDOG'], match: {}, grade: 'serious', comment: 'guest watchdog expired' },
  { events: ['RESET', 'SHUTDOWN', 'POWERDOWN', 'SUSPEND', 'DEVICE_DELETED'], match: {}, grade: 'notable' },
];

export function defaultRules(): PolicyRule[] {
  return DEFAULT_RULES.map((r, i) => ({ ...r, origin: `default #${i + 1}` }));
}

export function defaultPolicy(): Policy {
  return { rules: defaultRules(), source: 'built-in default' };
}

export interface Verdict {
  grade: Grade;
  /** The rule that decided, or undefined when no rule matched (grade "ignore"). */
  rule?: PolicyRule;
}

/** Grades one event. `runStatus` is the VM's run status as the watcher last knew it. */
export function evaluate(policy: Policy, event: { event: string; data?: unknown }, runStatus?: string): Verdict {
  for (const rule of policy.rules) {
    if (!rule.events.includes('*') && !rule.events.includes(event.event)) continue;
    if (rule.runState && (runStatus === undefined || !rule.runState.includes(runStatus))) continue;
    if (!Object.entries(rule.match).every(([path, m]) => fieldMatches(lookup(event.data, path), m))) continue;
    return { grade: rule.grade, rule };
  }
  return { grade: 'ignore' };
}

/** Follows a dotted path into nested objects; undefined when any step is missing. */
export function lookup(data: unknown, path: string): unknown {
  let cur: unknown = data;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function fieldMatches(value: unknown, m: FieldMatcher): boolean {
  if ('equals' in m) return value === m.equals;
  if ('in' in m) return m.in.some((s) => s === value);
  if ('not' in m) return value !== m.not;
  if ('prefix' in m) return typeof value === 'string' && value.startsWith(m.prefix);
  return (value !== undefined) === m.exists;
}

/** One line per rule, for `vmpm watch --print-policy` and the start-up log. */
export function describeRule(rule: PolicyRule): string {
  const conds = Object.entries(rule.match).map(([path, m]) => `${path} ${describeMatcher(m)}`);
  if (rule.runState) conds.push(`run state in [${rule.runState.join(', ')}]`);
  return `${rule.events.join('|')}${conds.length ? ` where ${conds.join(' and ')}` : ''} -> ${rule.grade} (${rule.origin})`;
}

function describeMatcher(m: FieldMatcher): string {
  if ('equals' in m) return `= ${JSON.stringify(m.equals)}`;
  if ('in' in m) return `in ${JSON.stringify(m.in)}`;
  if ('not' in m) return `!= ${JSON.stringify(m.not)}`;
  if ('prefix' in m) return `starts with ${JSON.stringify(m.prefix)}`;
  return m.exists ? 'exists' : 'is absent';
}
