// A GRIP function on @fanoutio/serve-grip, as one would write it for Pushpin or Fastly Fanout.
//
//   GRIP_KEY=secret node function.mjs        prints {"port": N} once it listens on 127.0.0.1:N
//
//   /stream     Grip-Sig checked; Grip-Hold: stream on channels "news" and "pets/dogs" (prev-id 41),
//               a keep-alive comment every 20 s, and a first event "welcome"
//   /keepalive  Grip-Sig checked; Grip-Hold: stream on channel "ka" with serve-grip's usual keep-alive
//               event (event: keep-alive, empty data) every second, mode idle, and no first event
//   /plain      an ordinary JSON answer, no GRIP instruction
//   /forbidden  403
//
// Every answer carries X-Middleware-Signed (what serve-grip's middleware concluded) and X-Seen (the
// Cookie, Last-Event-ID and query it was called with), so a test can see what the caller sent.
//
// serve-grip 2.0.0's middleware sets req.grip.isSigned for any Grip-Sig at all: it calls the async
// validateSig inside Array.some without awaiting it, and a Promise is truthy. So the function checks the
// signature itself with the Publisher that serve-grip built from verify_key and verify_iss, whose
// validateGripSig awaits it.
import http from 'node:http';
import { ServeGrip } from '@fanoutio/serve-grip';
import { Channel } from '@fanoutio/grip';

const key = process.env.GRIP_KEY;
if (!key) {
  console.error('GRIP_KEY is not set');
  process.exit(2);
}
const serveGrip = new ServeGrip({
  grip: {
    control_uri: process.env.GRIP_CONTROL_URI ?? 'http://127.0.0.1:1/',
    verify_key: key,
    verify_iss: 'sseedge',
  },
});

async function handle(req, res) {
  if (!(await serveGrip.run(req, res))) {
    return;
  }
  const url = new URL(req.url, 'http://function');
  res.setHeader('X-Middleware-Signed', String(req.grip.isSigned));
  res.setHeader('X-Seen', JSON.stringify({
    cookie: req.headers.cookie ?? null,
    lastEventId: req.headers['last-event-id'] ?? null,
    query: url.search,
  }));
  const { isSigned } = await serveGrip.getPublisher().validateGripSig(req.headers['grip-sig']);
  switch (url.pathname) {
    case '/stream': {
      if (!isSigned) {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'Grip-Sig missing or wrong' }));
        return;
      }
      const instruct = res.grip.startInstruct();
      instruct.addChannel('news');
      instruct.addChannel(new Channel('pets/dogs', '41'));
      instruct.setHoldStream();
      instruct.setKeepAlive(':\n\n', 20);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end('event: welcome\ndata: {"hello": "stream"}\n\n');
      return;
    }
    case '/keepalive': {
      if (!isSigned) {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'Grip-Sig missing or wrong' }));
        return;
      }
      const instruct = res.grip.startInstruct();
      instruct.addChannel('ka');
      instruct.setHoldStream();
      instruct.setKeepAlive('event: keep-alive\ndata: \n\n', 1);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end();
      return;
    }
    case '/plain':
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ plain: true, signed: isSigned }));
      return;
    case '/forbidden':
      res.writeHead(403, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: 'forbidden' }));
      return;
    default:
      res.writeHead(404);
      res.end();
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error(err);
    if (!res.headersSent) {
      res.writeHead(500);
    }
    res.end();
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
