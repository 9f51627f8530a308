import { WseClient, type WseMessage } from 'nestjs-wse/client';

// `node --experimental-websocket dist/client-check.js <app url> <topic>`: the package's second
// entry point in a Node ES module app, on the platform's own WebSocket (as in a browser).
// Subscribes, has the app publish through its own route, prints the payload it received.
const [appUrl, topic] = process.argv.slice(2);
setTimeout(() => {
  console.error('no message within 10 s');
  process.exit(2);
}, 10_000).unref();

const client = new WseClient({ url: `${appUrl.replace(/^http/, 'ws')}/wse` });
const received = new Promise<WseMessage>((resolve) => client.on('message', resolve));
await client.subscribe([topic]);
const published = await fetch(`${appUrl}/notify`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ topic, data: { from: 'nestjs-wse/client' } }),
});
if (published.status !== 200) throw new Error(`POST /notify answered ${published.status}`);
console.log(JSON.stringify((await received).data));
client.close();
