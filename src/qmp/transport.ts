/**
 * What the QMP session (QmpClient) needs from whatever carries its messages: a way to send one QMP
 * JSON text and to be told of each one received, and a close. Everything QMP-level sits above this
 * interface and works the same over every transport: the safety allow-list (checked before `send`),
 * id matching, event buffering, the transcript, exact-integer JSON and the typed errors.
 *
 * Implementations:
 *   - SocketTransport (socket-transport.ts): QEMU's own monitor socket, unix or TCP; the first one.
 *   - a libvirt transport (src/libvirt) where libvirtd owns the monitor: it has already read the
 *     greeting and negotiated capabilities, so it sets `greeting: false`.
 *
 * Contract:
 *   - `connect(handlers)` is called once. It resolves when messages can be sent, or rejects with a
 *     QmpConnectError saying why (no socket, refused, permission, virsh missing...). After it
 *     resolves, received messages arrive via `handlers.onMessage`, in order, one complete JSON text
 *     each (the transport does the framing and bounds a message's size).
 *   - `handlers.onClose(reason)` is called exactly once when the transport ends for any reason other
 *     than `close()`/`destroy()` by the session: `reason` is undefined for an orderly end by the peer,
 *     else the error (a QmpProtocolError for a framing violation such as an over-long line). It is
 *     also called (with undefined) after the session's own close()/destroy().
 *   - `send(text)` writes one message (without a trailing newline: the transport frames it). With
 *     `fds`, the file descriptors travel with the message (SCM_RIGHTS on a unix socket, --pass-fds
 *     for virsh); the session refuses `fds` unless `capabilities.fdPassing` is true.
 *   - A transport may rewrite ids underneath (libvirt adds its own), but the messages it hands up
 *     must carry the `id` the session sent, so replies match their calls.
 */
export interface QmpTransport {
  /** The far end as users name it, used in every message ("unix:/run/vm.qmp", "libvirt:web1"). */
  readonly endpoint: string;
  readonly capabilities: TransportCapabilities;
  /**
   * Which QEMU process the far end is, as far as this transport can tell cheaply: a string that is the
   * same for as long as that QEMU runs and differs for a QEMU started later at the same endpoint
   * (`unix-socket:DEV:INO:MTIME_NS` for a unix socket, `libvirt-domain-id:N` for a libvirt domain);
   * null or absent when the transport cannot tell (TCP). Read after connect() resolved.
   */
  readonly instance?: string | null;
  connect(handlers: TransportHandlers): Promise<void>;
  send(text: string, fds?: readonly number[]): void;
  /** Orderly close: let queued writes go out, then end; resolves when the transport is gone. */
  close(): Promise<void>;
  /** Immediate close (after a fatal protocol error or a failed open); nothing more is sent or received. */
  destroy(): void;
}

export interface TransportCapabilities {
  /**
   * True when the peer greets ({"QMP": ...}) and expects `qmp_capabilities` before commands, as a
   * QEMU monitor socket does. False when something else (libvirtd) already did both: the session
   * then learns the version with `query-version` and the greeting's capabilities are unknown.
   */
  greeting: boolean;
  /** True when `send` can pass file descriptors with a message (getfd, add-fd). */
  fdPassing: boolean;
}

export interface TransportHandlers {
  onMessage(text: string): void;
  onClose(reason: Error | undefined): void;
}
