// QMP protocol client: the only way vmpm talks to QEMU.
export { QmpClient, type ConnectOptions } from './client';
export type { QmpTransport, TransportCapabilities, TransportHandlers } from './transport';
export { SocketTransport, socketFileIdentity } from './socket-transport';
export { RUN_STATES, eventAction, runStateRule, statePausedBy, statusAfterEvent, pausingEventOf, type RunStateRule, type EventLike as RunStateEventLike } from './run-state';
export { parseEndpoint, formatEndpoint, type Endpoint } from './endpoint';
export { parseJson, stringifyJson, JsonSyntaxError, type JsonValue } from './json';
export { assertCommandAllowed, isAlwaysAllowed, hmpCommandName } from './safety';
export { hmpErrorLine } from './hmp-errors';
export {
  QmpError,
  QmpConnectError,
  QmpGreetingError,
  QmpNegotiationError,
  QmpCommandError,
  QmpHmpError,
  QmpTimeoutError,
  QmpDisconnectedError,
  QmpProtocolError,
  QmpUnsafeCommandError,
} from './errors';
export type { QmpEvent, QmpGreeting, TranscriptEntry } from './types';
