// Publishes with @fanoutio/grip's Publisher, as a GRIP backend would to Pushpin or Fanout.
//
//   node publish.mjs '<config JSON>' '<publishes JSON>'
//
// config is the Publisher's: {"control_uri": ..., "key"?: ..., "control_iss"?: ...}; publishes is a
// list of {"channel", "content"?, "close"?, "id"?, "prevId"?}. Each is one Publisher call, in order.
// Prints {"ok": true} or {"ok": false, "status": N, "body": "..."} for the first that fails.
import { Publisher, HttpStreamFormat } from '@fanoutio/grip';

const [config, publishes] = process.argv.slice(2).map((a) => JSON.parse(a));
const publisher = new Publisher(config);
try {
  for (const p of publishes) {
    const format = p.close ? new HttpStreamFormat(null, true) : new HttpStreamFormat(p.content);
    if (p.id !== undefined || p.prevId !== undefined) {
      await publisher.publishFormats(p.channel, format, p.id, p.prevId);
    } else {
      await publisher.publishFormats(p.channel, format);
    }
  }
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, status: err.context?.statusCode ?? null, body: err.context?.httpBody ?? String(err) }));
}
