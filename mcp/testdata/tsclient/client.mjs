// Test client for the sseedge MCP gateway, on the official TypeScript SDK.
//
//   node client.mjs <url> <streamable|sse> [text]
//
// connects to url with the given transport, lists the tools, calls upper with text (default "hello")
// and prints one JSON line: {"transport": ..., "protocolVersion": ..., "tools": [...], "text": ...}.
// Any failure is printed on stderr and exits 1.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, kind, text = 'hello'] = process.argv.slice(2);
if (!url || !['streamable', 'sse'].includes(kind)) {
  console.error('usage: node client.mjs <url> <streamable|sse> [text]');
  process.exit(2);
}

const timer = setTimeout(() => {
  console.error('timed out');
  process.exit(1);
}, 20000);

const transport = kind === 'sse' ? new SSEClientTransport(new URL(url)) : new StreamableHTTPClientTransport(new URL(url));
const client = new Client({ name: 'sseedge-tsclient', version: '1.0.0' });
try {
  await client.connect(transport);
  const { tools } = await client.listTools();
  const res = await client.callTool({ name: 'upper', arguments: { text } });
  const out = {
    transport: kind,
    protocolVersion: transport.protocolVersion ?? null,
    sessionId: transport.sessionId ?? null,
    tools: tools.map((t) => t.name),
    text: res.content?.[0]?.text ?? null,
    isError: res.isError ?? false,
  };
  if (kind === 'streamable') {
    await transport.terminateSession(); // DELETE: the session ends on the edge
  }
  await client.close();
  console.log(JSON.stringify(out));
  clearTimeout(timer);
} catch (err) {
  console.error(err?.stack ?? String(err));
  process.exit(1);
}
