import { ThrottledWarning } from '../reliability/throttled-warning.js';
import { logMessages } from '../wse.messages.js';

/** What a client did wrong below the WSE protocol: the frame layer, or the upgrade request. */
export type ProtocolViolationKind =
  | 'invalid_utf8'
  | 'rsv_bits'
  | 'oversize'
  | 'unmasked'
  | 'bad_opcode'
  | 'bad_control_frame'
  | 'bad_close_code'
  | 'origin_refused'
  | 'other';

export const PROTOCOL_VIOLATION_KINDS: readonly ProtocolViolationKind[] = Object.freeze([
  'invalid_utf8',
  'rsv_bits',
  'oversize',
  'unmasked',
  'bad_opcode',
  'bad_control_frame',
  'bad_close_code',
  'origin_refused',
  'other',
]);

/** ws's error codes (`error.code` of a socket's 'error' event), by kind. */
const KIND_OF_WS_CODE: Readonly<Record<string, ProtocolViolationKind>> = Object.freeze({
  WS_ERR_INVALID_UTF8: 'invalid_utf8',
  WS_ERR_UNEXPECTED_RSV_1: 'rsv_bits',
  WS_ERR_UNEXPECTED_RSV_2_3: 'rsv_bits',
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 'oversize',
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: 'oversize',
  WS_ERR_EXPECTED_MASK: 'unmasked',
  WS_ERR_UNEXPECTED_MASK: 'unmasked',
  WS_ERR_INVALID_OPCODE: 'bad_opcode',
  WS_ERR_EXPECTED_FIN: 'bad_control_frame',
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: 'bad_control_frame',
  WS_ERR_INVALID_CLOSE_CODE: 'bad_close_code',
  WS_ERR_TOO_MANY_BUFFERED_PARTS: 'oversize',
});

/** The kind of a ws socket error. */
export function violationKind(error: unknown): ProtocolViolationKind {
  const code = (error as { code?: unknown } | null)?.code;
  return (typeof code === 'string' && KIND_OF_WS_CODE[code]) || 'other';
}

/**
 * Protocol violations from clients (issue 10): counted by kind for metrics and logged through one
 * ThrottledWarning, at most one line per interval whatever the rate of abuse, never with a stack
 * trace. ws already closed each offending connection with the right code (1002, 1007, 1009);
 * there is nothing else to do, and a hostile client must not be able to fill the log.
 */
export class ProtocolViolations {
  private readonly counts = new Map<ProtocolViolationKind, number>();
  private total = 0;
  private readonly warning: ThrottledWarning;

  constructor(log: (line: string) => void, intervalMs?: number) {
    this.warning = new ThrottledWarning(log, intervalMs);
  }

  /** Every violation since start. */
  get count(): number {
    return this.total;
  }

  /** The count of one kind since start. */
  of(kind: ProtocolViolationKind): number {
    return this.counts.get(kind) ?? 0;
  }

  record(kind: ProtocolViolationKind): void {
    this.total++;
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    this.warning.record((count) => logMessages.protocolViolations(count, kind));
  }
}
