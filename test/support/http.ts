export interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** One HTTP call with a 5 s timeout, answering status and JSON body. */
export async function httpCall(
  url: string,
  method: 'GET' | 'POST',
  body?: unknown,
  apiKey?: string,
): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
