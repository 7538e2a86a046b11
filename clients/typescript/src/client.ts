/**
 * A typed client for Embedding Studio (embedding_studio.v1) over real gRPC: the generated
 * services as properties (`client.search.search(...)`), plus the helpers most callers need.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient as createServiceClient, type Client } from "@connectrpc/connect";
import { CategoryService } from "./gen/embedding_studio/v1/categories_pb.js";
import { ClickstreamService } from "./gen/embedding_studio/v1/clickstream_pb.js";
import { type FilterSchema, type Task, TaskStatus } from "./gen/embedding_studio/v1/common_pb.js";
import { DeploymentService } from "./gen/embedding_studio/v1/deployment_pb.js";
import { FineTuneService } from "./gen/embedding_studio/v1/fine_tune_pb.js";
import { KeyService } from "./gen/embedding_studio/v1/keys_pb.js";
import { RankingService } from "./gen/embedding_studio/v1/ranking_pb.js";
import { SearchService, type SearchResponse } from "./gen/embedding_studio/v1/search_pb.js";
import { SuggestionService } from "./gen/embedding_studio/v1/suggestion_pb.js";
import { TaskService } from "./gen/embedding_studio/v1/task_pb.js";
import { UpsertService, type UpsertItemSchema } from "./gen/embedding_studio/v1/upsert_pb.js";
import { createTransport, type TransportOptions } from "./transport.js";

/** One item to upsert: `{objectId, text, payload}` or `{objectId, parts}` or `{objectId, source}`. */
export type ItemInput = MessageInitShape<typeof UpsertItemSchema>;

/** Statuses after which a task never changes again. */
export const TERMINAL_TASK_STATUSES: ReadonlySet<TaskStatus> = new Set([
  TaskStatus.DONE,
  TaskStatus.FAILED,
  TaskStatus.CANCELED,
]);

/** A task did not reach a terminal status in time; `task` is its last state seen, if any. */
export class TaskTimeoutError extends Error {
  constructor(
    readonly taskId: string,
    readonly timeoutMs: number,
    readonly task: Task | undefined,
  ) {
    super(`task ${JSON.stringify(taskId)} did not finish within ${timeoutMs} ms`);
    this.name = "TaskTimeoutError";
  }
}

export interface SearchTextOptions {
  /** At most 1000; 0 = the server's default. */
  limit?: number;
  /** e.g. `{ kind: { case: "term", value: { field: "color", value: { kind: { case: "stringValue", value: "red" } } } } }` */
  filter?: MessageInitShape<typeof FilterSchema>;
  /** Empty = the blue collection. */
  collectionId?: string;
  userId?: string;
  createSession?: boolean;
  timeoutMs?: number;
}

export interface UpsertOptions {
  /** Empty = the blue collection. */
  collectionId?: string;
  /** The same key again returns the first call's task instead of starting another. */
  idempotencyKey?: string;
  timeoutMs?: number;
}

export interface EmbeddingStudioClient {
  readonly search: Client<typeof SearchService>;
  readonly clickstream: Client<typeof ClickstreamService>;
  readonly upsert: Client<typeof UpsertService>;
  readonly fineTune: Client<typeof FineTuneService>;
  readonly deployment: Client<typeof DeploymentService>;
  readonly tasks: Client<typeof TaskService>;
  readonly suggestions: Client<typeof SuggestionService>;
  readonly categories: Client<typeof CategoryService>;
  readonly ranking: Client<typeof RankingService>;
  readonly keys: Client<typeof KeyService>;
  /** Search by free text. */
  searchText(text: string, options?: SearchTextOptions): Promise<SearchResponse>;
  /** Start an upsertion of 1..1000 items; returns its task (wait with `waitForTask`). */
  upsertItems(items: readonly ItemInput[], options?: UpsertOptions): Promise<Task>;
  /** Watch a task until DONE, FAILED or CANCELED and return that state; a watch the server
   * ends at its cap while time is left is resumed. Throws TaskTimeoutError after timeoutMs. */
  waitForTask(taskId: string, timeoutMs: number): Promise<Task>;
}

/** A client for the server at `address` ("127.0.0.1:50051", or a http:// / https:// URL). */
export function createClient(address: string, options: TransportOptions = {}): EmbeddingStudioClient {
  const transport = createTransport(address, options);
  const search = createServiceClient(SearchService, transport);
  const upsert = createServiceClient(UpsertService, transport);
  const tasks = createServiceClient(TaskService, transport);
  return {
    search,
    upsert,
    tasks,
    clickstream: createServiceClient(ClickstreamService, transport),
    fineTune: createServiceClient(FineTuneService, transport),
    deployment: createServiceClient(DeploymentService, transport),
    suggestions: createServiceClient(SuggestionService, transport),
    categories: createServiceClient(CategoryService, transport),
    ranking: createServiceClient(RankingService, transport),
    keys: createServiceClient(KeyService, transport),
    searchText: (text, { timeoutMs, ...fields } = {}) =>
      search.search({ query: { case: "queryText", value: text }, ...fields }, { timeoutMs }),
    upsertItems: async (items, { timeoutMs, ...fields } = {}) => {
      const response = await upsert.upsertItems({ items: [...items], ...fields }, { timeoutMs });
      if (response.task === undefined) throw new Error("UpsertItems answered without a task");
      return response.task;
    },
    waitForTask: (taskId, timeoutMs) => waitForTask(tasks, taskId, timeoutMs),
  };
}

/** Whether a wait that ends at `ends` (Date.now()) has a moment left. */
function timeLeft(ends: number): boolean {
  return ends - Date.now() > 50;
}

async function waitForTask(
  tasks: Client<typeof TaskService>,
  taskId: string,
  timeoutMs: number,
): Promise<Task> {
  const ends = Date.now() + timeoutMs;
  let last: Task | undefined;
  for (;;) {
    try {
      const stream = tasks.watchTask({ taskId }, { timeoutMs: Math.max(1, ends - Date.now()) });
      for await (const response of stream) {
        last = response.task;
        if (last !== undefined && TERMINAL_TASK_STATUSES.has(last.status)) return last;
      }
    } catch (error) {
      if (ConnectError.from(error).code !== Code.DeadlineExceeded) throw error;
      if (!timeLeft(ends)) throw new TaskTimeoutError(taskId, timeoutMs, last);
      continue;
    }
    const status = last === undefined ? "none" : TaskStatus[last.status];
    throw new Error(`WatchTask stream for task ${JSON.stringify(taskId)} ended before a terminal status (last: ${status})`);
  }
}
