import type { WseConnection } from './wse-connection.js';
import { WS_OPEN } from './wse-connection.js';

/** Control frames one connection may have waiting behind an unanswered one. */
export const MAX_PENDING_CONTROL_FRAMES = 64;

/** Answers one control frame; a promise while its answer waits (an authorizer running). */
export type ControlTask = () => Promise<void> | undefined;

/** Told when a queued control frame threw while being answered. */
export type ControlFailure = (connection: WseConnection, error: unknown) => void;

/**
 * Control frames of one connection are answered in the order they arrived (issue 10: a subscribe
 * waiting for the authorizer was overtaken by the unsubscribe after it, which could end
 * subscribed, with the answers out of order). While one is being worked out, the next ones wait
 * in a per-connection queue of at most MAX_PENDING_CONTROL_FRAMES; past that `overflow` answers
 * the frame and it is dropped. Nothing is allocated while nothing is pending.
 *
 * `fail` hears a task that threw (it never reaches ws's listener, as in the gateway's guard).
 */
export function runInOrder(
  connection: WseConnection,
  task: ControlTask,
  overflow: () => void,
  fail: ControlFailure,
): void {
  if (!connection.controlBusy) {
    afterAnswer(connection, task(), fail);
    return;
  }
  const queue = (connection.controlQueue ??= []);
  if (queue.length >= MAX_PENDING_CONTROL_FRAMES) {
    overflow();
    return;
  }
  queue.push(task);
}

/**
 * Called with what answering a control frame returned: a pending answer holds the connection's
 * next control frames until it settles. (For a frame answered while nothing was pending, without
 * allocating a task for it.)
 */
export function afterAnswer(connection: WseConnection, pending: Promise<void> | undefined, fail: ControlFailure): void {
  if (pending === undefined) return;
  connection.controlBusy = true;
  void pending.finally(() => {
    connection.controlBusy = false;
    drain(connection, fail);
  });
}

/** Answers the waiting control frames in order, until one is pending again. */
function drain(connection: WseConnection, fail: ControlFailure): void {
  const queue = connection.controlQueue;
  while (queue !== undefined && queue.length > 0 && !connection.controlBusy) {
    if (connection.socket.readyState !== WS_OPEN) {
      queue.length = 0;
      return;
    }
    const task = queue.shift()!;
    try {
      afterAnswer(connection, task(), fail);
    } catch (error) {
      fail(connection, error);
    }
  }
}
