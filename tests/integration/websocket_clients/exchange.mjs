// The exchange every JavaScript client runs against the echo server, in the browser (page.html)
// and in Node (node_client.mjs, with the ws package's WebSocket): the same code, so that the
// two runtimes are checked alike. It never throws: what went wrong is listed in the report.
//
// 1. each size of `sizes` as a binary message, then as a text message, each echo compared;
// 2. `count` text messages "0", "1", ... sent without waiting, echoes checked in order;
// 3. `big` bytes as one binary message (0: none);
// 4. a close with 1000 "done", the server's answer recorded.
// Payloads repeat a short pattern, so permessage-deflate shrinks them (the tests check that).

export function binaryPayload(size) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i & 255;
  return bytes;
}

export function textPayload(size) {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  return letters.repeat(Math.ceil(size / letters.length)).slice(0, size);
}

function sameBytes(data, expected) {
  if (!(data instanceof ArrayBuffer)) return false;
  const got = new Uint8Array(data);
  if (got.length !== expected.length) return false;
  for (let i = 0; i < got.length; i++) if (got[i] !== expected[i]) return false;
  return true;
}

function describe(data) {
  if (typeof data === "string") return `text of ${data.length} characters`;
  if (data instanceof ArrayBuffer) return `binary of ${data.byteLength} bytes`;
  return String(data);
}

export async function exchange(open, { sizes = [], count = 0, big = 0 } = {}) {
  const report = {
    errors: [], extensions: null, protocol: null, sized: 0, ordered: 0, big: false, close: null,
  };
  const inbox = [];
  let waiting = null;
  let closed = null;
  const closedPromise = new Promise((resolve) => { closed = resolve; });
  const ws = open();
  ws.binaryType = "arraybuffer";
  ws.addEventListener("message", (event) => {
    if (waiting) { const resolve = waiting; waiting = null; resolve(event.data); }
    else inbox.push(event.data);
  });
  ws.addEventListener("close", (event) => {
    report.close = { code: event.code, reason: event.reason, wasClean: event.wasClean };
    closed();
    if (waiting) { const resolve = waiting; waiting = null; resolve(undefined); }
  });
  const next = () => inbox.length ? Promise.resolve(inbox.shift())
    : new Promise((resolve) => { waiting = resolve; });
  try {
    await new Promise((resolve, reject) => {
      ws.addEventListener("open", resolve);
      ws.addEventListener("error", () => reject(new Error("the WebSocket failed to open")));
    });
    report.extensions = ws.extensions;
    report.protocol = ws.protocol;
    for (const size of sizes) {
      const bytes = binaryPayload(size);
      ws.send(bytes);
      const echoed = await next();
      if (sameBytes(echoed, bytes)) report.sized++;
      else report.errors.push(`binary ${size}: got ${describe(echoed)}`);
      const text = textPayload(size);
      ws.send(text);
      const echoedText = await next();
      if (echoedText === text) report.sized++;
      else report.errors.push(`text ${size}: got ${describe(echoedText)}`);
    }
    for (let i = 0; i < count; i++) ws.send(String(i));
    for (let i = 0; i < count; i++) {
      const echoed = await next();
      if (echoed === String(i)) report.ordered++;
      else {
        report.errors.push(`message ${i}: got ${describe(echoed)} ${String(echoed).slice(0, 20)}`);
        break;
      }
    }
    if (big) {
      const bytes = binaryPayload(big);
      ws.send(bytes);
      const echoed = await next();
      report.big = sameBytes(echoed, bytes);
      if (!report.big) report.errors.push(`big ${big}: got ${describe(echoed)}`);
    }
    ws.close(1000, "done");
  } catch (error) {
    report.errors.push(String(error));
    try { ws.close(); } catch (ignored) { /* already closed */ }
  }
  await closedPromise;
  return report;
}
