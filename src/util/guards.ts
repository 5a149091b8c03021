/** A JSON object (not null, not an array): what QMP event data, policy files and replies are checked with. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
