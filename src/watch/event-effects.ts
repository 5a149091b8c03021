/**
 * What QEMU itself does after an event, read from the event's `action` (facts measured in
 * shared/reference/qemu-qmp): whether it has already paused the VM (so the watcher must not waste
 * time on `stop`), and whether it resets the guest or exits, destroying evidence no capture can get back.
 */
import { eventAction as action, statePausedBy, type RunStateEventLike as EventLike } from '../qmp';

export type { EventLike };

/**
 * True when QEMU paused the VM itself on this event (GUEST_PANICKED action "pause", BLOCK_IO_ERROR
 * action "stop", WATCHDOG action "pause": the run-state table's `pausedBy` rules).
 */
export function qemuPausedOnEvent(e: EventLike): boolean {
  return statePausedBy(e) !== undefined;
}

export type DestructiveEffect = 'reset' | 'exit' | 'shutdown';

/**
 * What QEMU does by itself after the event that destroys the evidence, if anything:
 * - reset: MEMORY_FAILURE action "reset" (triple fault), WATCHDOG action "reset": registers and device
 *   state are reset (RAM survives, but firmware starts overwriting it as soon as the VM runs).
 * - exit: GUEST_PANICKED action "poweroff" (no -no-shutdown), MEMORY_FAILURE action "fatal": QEMU exits.
 * - shutdown: WATCHDOG action "poweroff"/"shutdown": QEMU exits, or pauses in "shutdown" with -no-shutdown.
 */
export function destructiveEffect(e: EventLike): DestructiveEffect | undefined {
  const a = action(e);
  switch (e.event) {
    case 'GUEST_PANICKED':
      return a === 'poweroff' ? 'exit' : undefined;
    case 'MEMORY_FAILURE':
      return a === 'reset' ? 'reset' : a === 'fatal' ? 'exit' : undefined;
    case 'WATCHDOG':
      return a === 'reset' ? 'reset' : a === 'poweroff' || a === 'shutdown' ? 'shutdown' : undefined;
    default:
      return undefined;
  }
}

/** What could not be captured because of the effect, for the notification's `lost` field. */
export function evidenceLost(effect: DestructiveEffect): string[] {
  switch (effect) {
    case 'reset':
      return ['vCPU registers at the failure (QEMU reset the guest)', 'device state at the failure'];
    case 'exit':
      return ['everything: QEMU exits on this event (registers, memory, devices)'];
    case 'shutdown':
      return ['vCPU registers and devices at the failure (QEMU shuts the guest down; it exits unless -no-shutdown)'];
  }
}
