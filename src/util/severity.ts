/** How bad an error record is. Shared by the run-state table (qmp) and the bundle's error records. */
export type Severity = 'critical' | 'error' | 'warning' | 'info';
