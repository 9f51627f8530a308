/**
 * The topics a WSE client names on the handshake URL, `/wse?topics=a,b` (WSE's SDKs pass their
 * initial, and on a reconnect their current, topics this way). Every `topics` parameter counts;
 * each is split on commas and trimmed, and empty names and repeats are dropped, keeping the
 * order. A topic with a comma in its name cannot be named here (WSE's server splits the same
 * way); it can still be subscribed with a `subscription` frame.
 */
export function urlTopics(url: string | undefined): string[] {
  if (url === undefined || !url.includes('topics=')) return [];
  let params: URLSearchParams;
  try {
    params = new URL(url, 'http://localhost').searchParams;
  } catch {
    return [];
  }
  const topics = new Set<string>();
  for (const value of params.getAll('topics')) {
    for (const part of value.split(',')) {
      const topic = part.trim();
      if (topic !== '') topics.add(topic);
    }
  }
  return [...topics];
}
