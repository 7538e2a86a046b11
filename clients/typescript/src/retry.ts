/**
 * Retries of UNAVAILABLE for the unary calls that only read: repeating one changes nothing on the
 * server. Writes are never repeated here (one that failed after the server took it would run
 * twice). The same methods and policy as the Python client's channel service config.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** Read-only unary methods per service of embedding_studio.v1. */
export const RETRYABLE_METHODS: Readonly<Record<string, readonly string[]>> = {
  SearchService: ["Search", "SearchByPayload", "CountItems", "FindSimilarItems", "PredictCategories"],
  UpsertService: ["GetItems"],
  TaskService: ["GetTask", "ListTasks"],
  ClickstreamService: ["GetSession", "ListSessions"],
  DeploymentService: ["ListModels", "ListCollections", "GetBlueCollection", "GetInterleavingVerdict"],
  FineTuneService: ["GetFineTuningTask", "ListFineTuningTasks"],
  RankingService: ["GetRankingSettings", "ListRankingSpecs"],
  SuggestionService: ["Suggest", "ListPhrases", "GetPhrases"],
  CategoryService: ["ListCategories"],
  KeyService: ["ListApiKeys"],
};

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  backoffMultiplier: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  maxAttempts: 4,
  initialBackoffMs: 100,
  maxBackoffMs: 2000,
  backoffMultiplier: 2,
};

const PACKAGE = "embedding_studio.v1.";

function isRetryable(serviceTypeName: string, methodName: string): boolean {
  if (!serviceTypeName.startsWith(PACKAGE)) return false;
  const methods = RETRYABLE_METHODS[serviceTypeName.slice(PACKAGE.length)];
  return methods !== undefined && methods.includes(methodName);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** An interceptor that repeats a read answered with UNAVAILABLE, waiting a random part of an
 * exponentially growing backoff between attempts (as gRPC's retryPolicy does). */
export function retryReads(policy: Readonly<RetryPolicy> = DEFAULT_RETRY_POLICY): Interceptor {
  return (next) => async (request) => {
    if (request.stream || !isRetryable(request.service.typeName, request.method.name)) {
      return next(request);
    }
    let backoffMs = policy.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(request);
      } catch (error) {
        const unavailable = ConnectError.from(error).code === Code.Unavailable;
        if (!unavailable || attempt >= policy.maxAttempts || request.signal.aborted) throw error;
      }
      await pause(Math.random() * backoffMs, request.signal);
      backoffMs = Math.min(backoffMs * policy.backoffMultiplier, policy.maxBackoffMs);
    }
  };
}
