import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { DeliveryProbe, type ProbeDownReason, type ProbeHost } from './delivery-probe.js';

const OPTIONS = { instanceId: 'self', prefix: 'wse:', intervalMs: 1_000, timeoutMs: 1_000 };

/** A controllable publisher: each probe PUBLISH waits until the test answers it. */
class FakeHost implements ProbeHost {
  readonly published: {
    channel: string;
    payload: string;
    answer: (receivers: number) => void;
    fail: (e: Error) => void;
  }[] = [];
  readonly events: string[] = [];
  replaced = 0;
  roundTrips = 0;
  answerAt = 0;
  received = 0;

  lastAnswerAt(): number {
    return this.answerAt;
  }
  receivedCount(): number {
    return this.received;
  }

  publish(channel: string, payload: string): Promise<number> {
    return new Promise((resolve, reject) => this.published.push({ channel, payload, answer: resolve, fail: reject }));
  }
  replaceSubscriber(): void {
    this.replaced++;
  }
  onDelivering(downMs: number | undefined): void {
    this.events.push(downMs === undefined ? 'delivering' : `delivering after ${downMs}`);
  }
  onDown(reason: ProbeDownReason): void {
    this.events.push(`down: ${reason}`);
  }
  onRoundTrip(): void {
    this.roundTrips++;
  }
  get last(): FakeHost['published'][number] {
    return this.published[this.published.length - 1];
  }
}

function replyError(message: string): Error {
  return Object.assign(new Error(message), { name: 'ReplyError' });
}

describe('DeliveryProbe', () => {
  let host: FakeHost;
  let probe: DeliveryProbe;

  beforeEach(() => {
    jest.useFakeTimers({ now: 100_000 });
    host = new FakeHost();
    probe = new DeliveryProbe(OPTIONS, host, () => Date.now());
    probe.start();
  });
  afterEach(() => {
    probe.stop();
    jest.useRealTimers();
  });

  /** Both connections up, the first probe answered and received: delivery proven. */
  async function prove(): Promise<void> {
    probe.publisherReady();
    probe.subscriberConnected();
    probe.subscriberActive();
    await answerAndReceive(1);
  }

  async function answerAndReceive(receivers: number): Promise<void> {
    const sent = host.last;
    sent.answer(receivers);
    await Promise.resolve();
    probe.onMessage(sent.channel, sent.payload);
  }

  function peerProbe(id: string, seq: number, prefix = 'wse:', intervalMs = 1_000): void {
    probe.onMessage(`__wse_probe__:${id}`, `wse1 ${seq} ${intervalMs} ${prefix}`);
  }

  it('publishes on its own channel once both connections are up, and is delivering when it comes back', async () => {
    probe.publisherReady();
    expect(host.published).toHaveLength(0);
    probe.subscriberActive();
    // The first probe after subscribing greets the peers (`h`): they answer at once.
    expect(host.published.map((p) => [p.channel, p.payload])).toEqual([['__wse_probe__:self', 'wse1 h1 1000 wse:']]);
    expect(probe.isDelivering).toBe(false);
    await answerAndReceive(1);
    expect(probe.isDelivering).toBe(true);
    expect(probe.whole).toBe(true);
    expect(host.events).toEqual(['delivering']);
    expect(host.roundTrips).toBe(1);
  });

  it('probes again every interval, one at a time', async () => {
    await prove();
    jest.advanceTimersByTime(1_000);
    expect(host.published).toHaveLength(2);
    jest.advanceTimersByTime(1_000); // the second is still pending: no third
    expect(host.published).toHaveLength(2);
  });

  describe('when Redis stops answering (frozen)', () => {
    it('marks it not answering after the timeout and keeps the subscriber connection', async () => {
      await prove();
      jest.advanceTimersByTime(1_000); // probe 2 sent, never answered
      jest.advanceTimersByTime(999);
      expect(probe.notAnswering).toBe(false);
      jest.advanceTimersByTime(1);
      expect(probe.notAnswering).toBe(true);
      expect(probe.isDelivering).toBe(false);
      expect(host.replaced).toBe(0);
      expect(host.events).toEqual(['delivering', 'down: not_answering']);
      // No further probe piles up while the first is unanswered.
      jest.advanceTimersByTime(10_000);
      expect(host.published).toHaveLength(2);
      expect(host.replaced).toBe(0);
    });

    it('keeps waiting while Redis answers other commands: a deep queue is not a frozen Redis', async () => {
      await prove();
      jest.advanceTimersByTime(1_000); // probe 2 at 101,000
      jest.advanceTimersByTime(800);
      host.answerAt = Date.now(); // Redis answered something at 101,800
      jest.advanceTimersByTime(200); // 102,000: the first timeout, but Redis made progress
      expect(probe.notAnswering).toBe(false);
      jest.advanceTimersByTime(799);
      expect(probe.notAnswering).toBe(false);
      jest.advanceTimersByTime(1); // 102,800: a second without any answer
      expect(probe.notAnswering).toBe(true);
    });

    it('ends the gap when the late answer and the probe arrive, with down_ms from the last delivery before it', async () => {
      await prove(); // delivered at 100,000
      jest.advanceTimersByTime(1_000); // probe 2 at 101,000
      jest.advanceTimersByTime(8_000); // frozen until 109,000
      await answerAndReceive(1);
      expect(probe.notAnswering).toBe(false);
      expect(probe.isDelivering).toBe(true);
      expect(host.events).toEqual(['delivering', 'down: not_answering', 'delivering after 9000']);
    });

    it('gives a late answer the full timeout to arrive, counted from the answer', async () => {
      await prove();
      jest.advanceTimersByTime(1_000);
      jest.advanceTimersByTime(5_000); // not answering
      host.last.answer(1);
      await Promise.resolve();
      expect(probe.notAnswering).toBe(false);
      jest.advanceTimersByTime(999);
      expect(host.replaced).toBe(0);
      jest.advanceTimersByTime(1);
      expect(host.replaced).toBe(1);
    });
  });

  describe('when the subscriber stops receiving (Redis answers, the probe never arrives)', () => {
    it('replaces the subscriber connection after the timeout and probes nothing until it is back', async () => {
      await prove();
      jest.advanceTimersByTime(1_000);
      host.last.answer(1);
      await Promise.resolve();
      jest.advanceTimersByTime(1_000);
      expect(host.replaced).toBe(1);
      expect(host.events).toEqual(['delivering', 'down: not_receiving']);
      expect(probe.notAnswering).toBe(false);
      jest.advanceTimersByTime(5_000);
      expect(host.published).toHaveLength(2);
      probe.subscriberActive();
      expect(host.published).toHaveLength(3);
      await answerAndReceive(1);
      expect(host.events).toEqual(['delivering', 'down: not_receiving', 'delivering after 7000']);
    });

    it('keeps a subscriber that is still receiving other messages: the probe is queued behind them', async () => {
      await prove();
      jest.advanceTimersByTime(1_000);
      host.last.answer(1);
      await Promise.resolve();
      host.received += 500;
      jest.advanceTimersByTime(1_000);
      expect(host.replaced).toBe(0);
      jest.advanceTimersByTime(1_000); // nothing received in this second: dead
      expect(host.replaced).toBe(1);
    });

    it('replaces it at once when Redis says nobody received the probe', async () => {
      await prove();
      jest.advanceTimersByTime(1_000);
      host.last.answer(0);
      await Promise.resolve();
      expect(host.replaced).toBe(1);
      expect(host.events).toEqual(['delivering', 'down: not_receiving']);
    });

    it("waits for the probe instead when a reply counts only its node's subscribers (a cluster's classic bus)", async () => {
      probe.stop();
      probe = new DeliveryProbe({ ...OPTIONS, repliesCountEveryone: false }, host, () => Date.now());
      probe.start();
      await prove();
      jest.advanceTimersByTime(1_000);
      const sent = host.last;
      sent.answer(0); // the PUBLISH ran on a node where this instance's subscriber is not
      await Promise.resolve();
      expect(host.replaced).toBe(0);
      probe.onMessage(sent.channel, sent.payload);
      expect(probe.isDelivering).toBe(true);
      expect(host.events).toEqual(['delivering']);
    });

    it('discards a probe sent before the subscriber (re)subscribed and sends a fresh one', async () => {
      await prove();
      jest.advanceTimersByTime(1_000); // probe 2 pending
      const stale = host.last;
      probe.subscriberActive();
      expect(host.published).toHaveLength(3);
      // Probe 2 is answered but will never arrive: it must not condemn the new connection.
      stale.answer(1);
      await Promise.resolve();
      jest.advanceTimersByTime(500);
      await answerAndReceive(1);
      jest.advanceTimersByTime(600); // past where probe 2's timeout would have fired
      expect(host.replaced).toBe(0);
      expect(host.events).toEqual(['delivering']);
    });
  });

  it('marks delivery down when a connection closes, and on a refused probe', async () => {
    await prove();
    probe.subscriberLost();
    expect(probe.isDelivering).toBe(false);
    probe.subscriberActive();
    await answerAndReceive(1);
    jest.advanceTimersByTime(1_000);
    host.last.fail(replyError("NOPERM this user has no permissions to run the 'publish' command"));
    await Promise.resolve();
    await Promise.resolve();
    expect(host.events).toEqual(['delivering', 'down: connection_lost', 'delivering after 0', 'down: refused']);
  });

  describe('peers', () => {
    it('counts instances with the same prefix, ignores others', async () => {
      await prove();
      peerProbe('b', 1);
      peerProbe('c', 7, 'other:');
      expect(probe.peerCount).toBe(1);
      expect(probe.expectedReceivers).toBe(2);
      expect(probe.whole).toBe(true);
    });

    it('is not whole after this subscriber re-subscribes until every peer has been heard again', async () => {
      await prove();
      peerProbe('b', 1);
      peerProbe('c', 1);
      probe.subscriberLost();
      probe.subscriberConnected();
      probe.subscriberActive();
      await answerAndReceive(2);
      expect(probe.isDelivering).toBe(true);
      expect(probe.whole).toBe(false);
      expect(probe.unconfirmedPeers).toBe(2);
      peerProbe('b', 2);
      expect(probe.whole).toBe(false);
      peerProbe('c', 2);
      expect(probe.whole).toBe(true);
    });

    it("answers a peer's greeting with a probe at once, and only a greeting", async () => {
      await prove();
      peerProbe('b', 5);
      expect(host.published).toHaveLength(1);
      probe.onMessage('__wse_probe__:b', 'wse1 h6 1000 wse:');
      expect(host.published).toHaveLength(2);
      expect(host.last.payload).toBe('wse1 2 1000 wse:');
    });

    it('counts a peer heard on the new connection before its subscriptions were confirmed', async () => {
      await prove();
      peerProbe('b', 1);
      probe.subscriberLost();
      probe.subscriberConnected();
      peerProbe('b', 2); // arrived between the new connection and the PING that confirms it
      probe.subscriberActive();
      await answerAndReceive(2);
      expect(probe.whole).toBe(true);
    });

    it('forgets a peer silent for three of its intervals plus a timeout, while this subscriber receives', async () => {
      await prove();
      peerProbe('b', 1);
      for (let i = 0; i < 3; i++) {
        jest.advanceTimersByTime(1_000);
        await answerAndReceive(2);
      }
      expect(probe.peerCount).toBe(1);
      jest.advanceTimersByTime(1_000);
      await answerAndReceive(2);
      jest.advanceTimersByTime(1_000);
      expect(probe.peerCount).toBe(0);
    });

    it('does not forget peers during an outage: their silence counts from when delivery returned', async () => {
      await prove();
      peerProbe('b', 1);
      probe.subscriberLost();
      jest.advanceTimersByTime(30_000);
      probe.subscriberConnected();
      probe.subscriberActive();
      await answerAndReceive(1);
      expect(probe.peerCount).toBe(1);
      expect(probe.whole).toBe(false);
    });

    it('forgets a peer at once when it says goodbye', async () => {
      await prove();
      peerProbe('b', 1);
      probe.onMessage('__wse_probe__:b', 'wse1 bye 1000 wse:');
      expect(probe.peerCount).toBe(0);
      expect(probe.byePayload()).toBe('wse1 bye 1000 wse:');
    });

    it("measures the gap from the last probe that arrived, a peer's included", async () => {
      await prove(); // 100,000
      jest.advanceTimersByTime(500);
      peerProbe('b', 1); // 100,500: the last delivery seen
      probe.subscriberLost();
      jest.advanceTimersByTime(4_000);
      probe.subscriberActive();
      await answerAndReceive(2);
      expect(host.events[host.events.length - 1]).toBe('delivering after 4000');
    });
  });
});
