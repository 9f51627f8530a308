import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type {
  GlobAnnouncementHandler,
  GlobFollowed,
  RedisPubSubService,
} from '../broker/redis/redis-pubsub.service.js';
import { TopicRegistryService } from '../hub/topic-registry.service.js';
import type { TopicSubscriber } from '../protocol/topic-subscriber.js';
import { GlobDirectory } from './glob-directory.js';

/** The broker's side of the directory, recorded. */
class FakeBroker {
  announced: (readonly string[])[] = [];
  onGlobs: GlobAnnouncementHandler = () => undefined;
  followed: GlobFollowed = () => false;
  setGlobAnnouncementHandler(handler: GlobAnnouncementHandler): void {
    this.onGlobs = handler;
  }
  setGlobFollowed(followed: GlobFollowed): void {
    this.followed = followed;
  }
  announceGlobs(globs: readonly string[]): Promise<void> {
    this.announced.push([...globs].sort());
    return Promise.resolve();
  }
}

function subscriber(id: string): TopicSubscriber {
  return { id, topics: new Set<string>(), lastDeliverySeq: 0, send: () => true } as unknown as TopicSubscriber;
}

describe('GlobDirectory (cluster globs)', () => {
  const REFRESH_MS = 1000;
  let registry: TopicRegistryService<TopicSubscriber>;
  let broker: FakeBroker;
  let directory: GlobDirectory;

  beforeEach(() => {
    jest.useFakeTimers();
    registry = new TopicRegistryService<TopicSubscriber>();
    broker = new FakeBroker();
    directory = new GlobDirectory(
      registry as unknown as TopicRegistryService,
      broker as unknown as RedisPubSubService,
      REFRESH_MS,
    );
    directory.start();
  });
  afterEach(() => {
    directory.stop();
    jest.useRealTimers();
  });

  it('says a topic is followed when a local glob or another instance’s glob matches it, and only then', () => {
    expect(broker.followed('room:1')).toBe(false);
    registry.register(subscriber('c1'));
    registry.subscribeConnection('c1', ['room:*']);
    expect(broker.followed('room:1')).toBe(true);
    expect(broker.followed('user:1')).toBe(false);
    broker.onGlobs('peer-a', ['user:?']);
    expect(broker.followed('user:1')).toBe(true);
    expect(broker.followed('user:12')).toBe(false);
  });

  it('replaces a peer’s globs with each announcement and drops them when it says goodbye (an empty list)', () => {
    broker.onGlobs('peer-a', ['a:*', 'b:*']);
    broker.onGlobs('peer-b', ['b:*']);
    broker.onGlobs('peer-a', ['a:*']);
    expect(broker.followed('b:1')).toBe(true); // still peer-b's
    broker.onGlobs('peer-b', []);
    expect(broker.followed('b:1')).toBe(false);
    expect(broker.followed('a:1')).toBe(true);
  });

  it('forgets a peer not heard from for three refresh periods', () => {
    broker.onGlobs('peer-a', ['a:*']);
    jest.advanceTimersByTime(3 * REFRESH_MS);
    expect(broker.followed('a:1')).toBe(true);
    jest.advanceTimersByTime(REFRESH_MS);
    expect(broker.followed('a:1')).toBe(false);
  });

  it('announces the local globs once per tick when they change, and every refresh period', async () => {
    registry.register(subscriber('c1'));
    registry.register(subscriber('c2'));
    registry.subscribeConnection('c1', ['room:*']);
    directory.changed();
    registry.subscribeConnection('c2', ['user:*', 'room:*']);
    directory.changed();
    await jest.advanceTimersByTimeAsync(1);
    expect(broker.announced).toEqual([['room:*', 'user:*']]);
    await jest.advanceTimersByTimeAsync(REFRESH_MS);
    expect(broker.announced).toEqual([
      ['room:*', 'user:*'],
      ['room:*', 'user:*'],
    ]);
  });
});
