/**
 * The failure path of a capture: migration settings put back, the run state restored (the same
 * restore the success path uses), then either a sealed `.partial.vmpm` (keepPartial) or nothing, and
 * one typed CaptureError naming the phase.
 */
import { describeError } from '../util/errors';
import { CaptureError, classifyCaptureFailure } from './capture-error';
import { partialManifest } from './manifest';
import { sealPartial, type OpenedOutput } from './output';
import { restoreAfterFailure } from './quiesce';
import type { CaptureRun } from './run';
import type { Survey } from './survey';

export async function failCapture(run: CaptureRun, out: OpenedOutput, found: Survey | undefined, err: unknown): Promise<CaptureError> {
  const { client, options, warnings } = run;
  await found?.snapshot?.release(warnings);
  const failure = new CaptureError({
    phase: run.currentPhase,
    kind: classifyCaptureFailure(err, client.closed, options.signal?.aborted === true),
    detail: describeError(err),
    leftStopped: await restoreAfterFailure(run),
    cause: err,
  });
  if (options.keepPartial) {
    const partial: Parameters<typeof partialManifest>[0] = {
      createdAt: run.createdAt,
      origin: options.origin ?? 'capture',
      reason: failure.message,
      before: run.before,
      policy: run.policy,
      memory: run.method,
      actions: run.actions.actions,
      warnings,
    };
    if (options.label !== undefined) partial.label = options.label;
    await sealPartial(out, partialManifest(partial));
  } else {
    await out.writer.abort();
  }
  return failure;
}
