import type { WireFrame } from './outbound-frame.js';

/**
 * What the topic registry needs of a connection. Kept this small so the registry is tested
 * with plain recording objects, no sockets.
 */
export interface TopicSubscriber {
  readonly id: string;
  /** Reverse index: every topic and pattern this subscriber holds, as the client wrote it. */
  readonly topics: Set<string>;
  /** Written by the registry only: the sequence number of the last fan-out delivered here. */
  lastDeliverySeq: number;
  /** Queues a frame; false when it was not accepted (closed or slow). */
  send(frame: WireFrame): boolean;
}
