import { describe, expect, it } from '@jest/globals';
import { urlTopics } from './url-topics.js';

describe('urlTopics', () => {
  it.each([
    [
      'the v1.4 and v2 SDKs (URLSearchParams)',
      '/wse?topics=chat%3Alobby%2Cuser%3A1%3Aevents&client_version=2.4.1',
      ['chat:lobby', 'user:1:events'],
    ],
    [
      'the Python client (each topic quoted, joined by a literal comma)',
      '/wse?client_version=1.3.5&topics=chat%3Alobby,user%3A1%3Aevents',
      ['chat:lobby', 'user:1:events'],
    ],
    ['plain commas', '/wse?topics=a,b,c', ['a', 'b', 'c']],
    ['spaces around names', '/wse?topics=%20a%20,%20b', ['a', 'b']],
    ['empty names and repeats', '/wse?topics=a,,b,a,', ['a', 'b']],
    ['several topics parameters', '/wse?topics=a&topics=b,c', ['a', 'b', 'c']],
    ['globs', '/wse?topics=user%3A*%3Aevents', ['user:*:events']],
  ])('reads what %s send', (_label, url, topics) => {
    expect(urlTopics(url)).toEqual(topics);
  });

  it.each([
    ['no query', '/wse'],
    ['no topics parameter', '/wse?token=abc'],
    ['an empty topics parameter', '/wse?topics='],
    ['only commas', '/wse?topics=,,'],
    ['no URL', undefined],
  ])('finds nothing with %s', (_label, url) => {
    expect(urlTopics(url)).toEqual([]);
  });

  it('does not read a parameter that only ends in "topics"', () => {
    expect(urlTopics('/wse?mytopics=a')).toEqual([]);
  });
});
