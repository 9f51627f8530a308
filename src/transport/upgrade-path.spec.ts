import { describe, expect, it } from '@jest/globals';
import { UpgradePaths } from './upgrade-path.js';

/** What Nest's upgrade listener computes: the pathname, or the parse's throw. */
function nests(url: string, host: string): string | 'throws' {
  try {
    return new URL(url, `ws://${host}/`).pathname;
  } catch {
    return 'throws';
  }
}

describe('UpgradePaths', () => {
  it.each([
    ['/wse', '/wse'],
    ['/wse?token=a.b.c&topics=x,y', '/wse'],
    ['/wse#frag?x', '/wse'],
    ['/', '/'],
    ['/a/b//c', '/a/b//c'],
    ["/a-b_c~!$&'()*+,;=:@", "/a-b_c~!$&'()*+,;=:@"],
    ['/wse?', '/wse'],
  ])('reads %s off as %s, which is what the URL parse gives', (url, expected) => {
    expect(new UpgradePaths().pathname(url, '127.0.0.1:3000')).toBe(expected);
    expect(nests(url, '127.0.0.1:3000')).toBe(expected);
  });

  it.each([
    '/./wse',
    '/a/../wse',
    '/%77se',
    '/w%2e',
    '/w\\se',
    '/w se',
    '/wé',
    '//evil/wse',
    'wse',
    '*',
    'http://host/wse',
    '',
  ])('leaves %j to the URL parse (it could rewrite the path)', (url) => {
    expect(new UpgradePaths().pathname(url, 'localhost')).toBeUndefined();
  });

  it('agrees with the URL parse for every printable ASCII character, in the path and after it', () => {
    const paths = new UpgradePaths();
    let readOff = 0;
    for (let code = 0; code < 128; code++) {
      const c = String.fromCharCode(code);
      for (const url of [`/a${c}b`, `/${c}`, `/a${c}`, `/wse?${c}x`, `/a${c}${c}/b?q`]) {
        const ours = paths.pathname(url, 'example.com:8080');
        if (ours === undefined) continue;
        readOff++;
        expect([url, ours]).toEqual([url, nests(url, 'example.com:8080')]);
      }
    }
    expect(readOff).toBeGreaterThan(300);
  });

  it("leaves a request whose Host the parse refuses to it, so it fails as Nest's does", () => {
    const paths = new UpgradePaths();
    for (const host of ['exa mple.com', 'host:99999', '[::1', 'a:b:c', '999.1.1.1']) {
      expect(nests('/wse', host)).toBe('throws');
      expect(paths.pathname('/wse', host)).toBeUndefined();
    }
  });

  it('checks a new Host, and remembers only the last one accepted', () => {
    const paths = new UpgradePaths();
    expect(paths.pathname('/wse', 'a.example:1')).toBe('/wse');
    expect(paths.pathname('/wse', 'bad host')).toBeUndefined();
    expect(paths.pathname('/wse', 'a.example:1')).toBe('/wse');
    expect(paths.pathname('/wse', '[::1]:3000')).toBe('/wse');
    expect(paths.pathname('/wse', undefined)).toBeUndefined();
    expect(paths.pathname(undefined, 'a.example:1')).toBeUndefined();
  });
});
