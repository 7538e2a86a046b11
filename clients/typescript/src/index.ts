export * from "./client.js";
export * from "./transport.js";
export * from "./retry.js";
export * from "./gen/embedding_studio/v1/common_pb.js";
export * from "./gen/embedding_studio/v1/search_pb.js";
export * from "./gen/embedding_studio/v1/upsert_pb.js";
export * from "./gen/embedding_studio/v1/task_pb.js";
