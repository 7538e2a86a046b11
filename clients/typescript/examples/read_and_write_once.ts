/**
 * One read (a text search) and one write (an upsert of one item), each reported as it ended, as
 * one JSON line: `node dist/examples/read_and_write_once.js <address>`. For a server that is
 * unavailable now and then: the read is retried (retry.ts), the write is not.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { createClient } from "../src/index.js";

async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return "OK";
  } catch (error) {
    return Code[ConnectError.from(error).code] ?? "UNKNOWN";
  }
}

async function main(address: string): Promise<void> {
  const client = createClient(address);
  const search = await outcome(() => client.searchText("socks", { limit: 1 }));
  const upsert = await outcome(() => client.upsertItems([{ objectId: "a", text: "red socks" }]));
  console.log(JSON.stringify({ search, upsert }));
}

const [address] = process.argv.slice(2);
if (address === undefined) {
  console.error("usage: read_and_write_once <address>");
  process.exit(2);
}
main(address).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
