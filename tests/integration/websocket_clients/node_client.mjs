// Node's ws package against the echo server: `node node_client.mjs URL CONFIG_JSON` runs the
// exchange of exchange.mjs and prints its report as JSON. permessage-deflate is offered
// (threshold 0: every message compressed); TLS trusts NODE_EXTRA_CA_CERTS.
import { WebSocket } from "ws";
import { exchange } from "./exchange.mjs";

const [url, config] = process.argv.slice(2);
const options = JSON.parse(config || "{}");
const report = await exchange(
  () => new WebSocket(url, options.protocols || [], {
    perMessageDeflate: { threshold: 0 },
    maxPayload: 64 * 1024 * 1024,
  }),
  options,
);
process.stdout.write(JSON.stringify(report) + "\n");
