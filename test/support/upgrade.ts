import WebSocket from 'ws';

/** The HTTP status of an upgrade: 101 when it opened (then closed at once), else the refusal. */
export function upgradeStatus(url: string, origin?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, origin === undefined ? {} : { origin });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`no answer to the upgrade within 5 s (origin ${origin})`));
    }, 5_000);
    socket.once('open', () => {
      clearTimeout(timer);
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => {
      clearTimeout(timer);
      response.resume();
      socket.terminate();
      resolve(response.statusCode ?? 0);
    });
    socket.on('error', () => undefined);
  });
}
