/**
 * Upsert three items with text, wait for the upsertion, search by text and print what came back
 * as one JSON line: `node dist/examples/upsert_and_search.js <address> <suite>`.
 * Items carry `payload.suite = <suite>` and the search filters on it, so other items in the
 * collection do not get in the way; they are deleted again at the end.
 */
import { createClient, TaskStatus } from "../src/index.js";

const ITEMS = [
  { id: "socks", text: "Warm red wool socks for cold winter days" },
  { id: "hose", text: "Green rubber garden hose, fifteen metres long" },
  { id: "laptop", text: "Lightweight laptop with a 14 inch screen and long battery life" },
];

async function main(address: string, suite: string): Promise<void> {
  const client = createClient(address, { apiKey: process.env.ES_API_KEY });
  const objectId = (id: string): string => `${suite}-${id}`;
  const upserted = await client.upsertItems(
    ITEMS.map((item) => ({ objectId: objectId(item.id), text: item.text, payload: { suite } })),
  );
  const done = await client.waitForTask(upserted.taskId, 120_000);
  const mine = { kind: { case: "stringValue" as const, value: suite } };
  const response = await client.searchText("woollen socks to keep feet warm", {
    limit: 10,
    filter: { kind: { case: "term", value: { field: "suite", value: mine } } },
  });
  const deleted = await client.upsert.deleteItems({ objectIds: ITEMS.map((item) => objectId(item.id)) });
  if (deleted.task !== undefined) await client.waitForTask(deleted.task.taskId, 120_000);
  console.log(
    JSON.stringify({
      upsertStatus: TaskStatus[done.status],
      collectionId: response.collectionId,
      results: response.results.map((r) => ({ objectId: r.objectId, score: r.score, payload: r.payload })),
    }),
  );
}

const [address, suite] = process.argv.slice(2);
if (address === undefined || suite === undefined) {
  console.error("usage: upsert_and_search <address> <suite>");
  process.exit(2);
}
main(address, suite).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
