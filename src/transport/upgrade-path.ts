/**
 * The path of an upgrade request, as `new URL(url, 'ws://' + host + '/').pathname` gives it,
 * which is how @nestjs/platform-ws's WsAdapter picks the gateway of an upgrade. That parse is
 * most of what Nest's own upgrade listener costs per handshake, and for the requests clients
 * send (`/wse?token=...`, the usual Host) its answer is just the text before the query: so for
 * those this reads it off directly, and for anything else (`undefined`) the caller parses as
 * Nest does, throwing where Nest's parse throws.
 *
 * Read off only when nothing in the path could make the parse change it: a path starting with
 * one `/`, made of letters, digits and the characters URL parsing leaves as they are (no `.`
 * segments to resolve, no `%`, `\`, spaces or other characters it would encode or rewrite), and
 * a Host the parse accepts (checked by parsing it once, then remembered while it stays the same).
 */
export class UpgradePaths {
  /** The last Host header the URL parse accepted. */
  private acceptedHost: string | undefined;

  pathname(url: string | undefined, host: string | undefined): string | undefined {
    if (url === undefined || host === undefined || !hasPlainPath(url)) return undefined;
    if (host !== this.acceptedHost) {
      if (!URL.canParse(`ws://${host}/`)) return undefined;
      this.acceptedHost = host;
    }
    const end = pathEnd(url);
    return end === url.length ? url : url.slice(0, end);
  }
}

/** Characters of a path URL parsing keeps as they are, by code: letters, digits, `-_~!$&'()*+,;=:@/`. */
const PLAIN = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~!$&'()*+,;=:@/") {
  PLAIN[c.charCodeAt(0)] = 1;
}
const SLASH = 0x2f;
const QUESTION = 0x3f;
const HASH = 0x23;

function hasPlainPath(url: string): boolean {
  // `//x` would be a host, not a path.
  if (url.charCodeAt(0) !== SLASH || url.charCodeAt(1) === SLASH) return false;
  for (let i = 1; i < url.length; i++) {
    const code = url.charCodeAt(i);
    if (code === QUESTION || code === HASH) return true;
    if (code >= 128 || PLAIN[code] === 0) return false;
  }
  return true;
}

function pathEnd(url: string): number {
  for (let i = 1; i < url.length; i++) {
    const code = url.charCodeAt(i);
    if (code === QUESTION || code === HASH) return i;
  }
  return url.length;
}
