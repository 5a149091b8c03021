// Watch mode: quiesce and capture on serious events, and the failover-safe check behind `vmpm state`.
export { Watch, type WatchOptions } from './supervisor';
export { VmWatcher, type VmWatcherOptions } from './vm-watcher';
export { defaultPolicy, defaultRules, evaluate, describeRule, type Policy, type PolicyRule, type Grade, type FieldMatcher } from './policy';
export { loadPolicyFile, parsePolicy } from './policy-file';
export { RollingJournal, qemuTime, type JournalLimits } from './journal';
export { Backoff, sleep } from './backoff';
export { runHook, hookEnvironment, notificationLine, signaturePathOf, type IncidentNotification, type SignatureNotification, type HookResult } from './notify';
export { qemuPausedOnEvent, destructiveEffect, evidenceLost } from './event-effects';
export { queryState, checkFailoverState, normaliseRegisters, STATE_EXIT, type FailoverState, type StateVerdict } from './state';
export { stderrLogger, type WatchLogger } from './log';
export { applyRetention, watchBundles, type RetentionLimits, type RetentionOutcome } from './retention';
