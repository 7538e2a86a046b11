/**
 * The gRPC (HTTP/2) transport every client starts with: the server's message size limit,
 * keepalive pings the server accepts, the API key, retries of reads and a default deadline
 * for unary calls.
 */
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { retryReads } from "./retry.js";

/** The server's grpc.max_receive/send_message_length (es_server/app.py). */
export const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
/** A gRPC server refuses pings closer together than 5 minutes unless told otherwise. */
export const KEEPALIVE_INTERVAL_MS = 5 * 60 * 1000;
export const KEEPALIVE_TIMEOUT_MS = 20 * 1000;
/** Deadline of a unary call made without timeoutMs; streams get none. */
export const DEFAULT_UNARY_TIMEOUT_MS = 30 * 1000;

export interface TransportOptions {
  /** A token from `es keys create` or KeyService, sent as `authorization: Bearer <key>`. */
  apiKey?: string;
  /** PEM of the CA to trust: the connection is then TLS (as an https:// address is). */
  rootCertificates?: string | Buffer;
  /** Deadline of a unary call without timeoutMs; undefined = the default, 0 = none. */
  defaultTimeoutMs?: number;
  /** Interceptors run before the client's own ones. */
  interceptors?: Interceptor[];
}

function bearer(apiKey: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${apiKey}`);
    return next(request);
  };
}

/** "host:port" as a URL: https when a CA is given, else plaintext http. */
export function baseUrl(address: string, tls: boolean): string {
  if (/^https?:\/\//.test(address)) return address;
  return `${tls ? "https" : "http"}://${address}`;
}

/** `transport` with `timeoutMs` for unary calls that name none. */
export function withUnaryTimeout(transport: Transport, timeoutMs: number): Transport {
  if (timeoutMs <= 0) return transport;
  return {
    unary: (method, signal, callTimeoutMs, header, input, contextValues) =>
      transport.unary(method, signal, callTimeoutMs ?? timeoutMs, header, input, contextValues),
    stream: (method, signal, callTimeoutMs, header, input, contextValues) =>
      transport.stream(method, signal, callTimeoutMs, header, input, contextValues),
  };
}

export function createTransport(address: string, options: TransportOptions = {}): Transport {
  const tls = options.rootCertificates !== undefined || address.startsWith("https://");
  const interceptors = [...(options.interceptors ?? []), retryReads()];
  if (options.apiKey) interceptors.push(bearer(options.apiKey));
  const transport = createGrpcTransport({
    baseUrl: baseUrl(address, tls),
    interceptors,
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    pingIntervalMs: KEEPALIVE_INTERVAL_MS,
    pingTimeoutMs: KEEPALIVE_TIMEOUT_MS,
    ...(options.rootCertificates !== undefined ? { nodeOptions: { ca: options.rootCertificates } } : {}),
  });
  return withUnaryTimeout(transport, options.defaultTimeoutMs ?? DEFAULT_UNARY_TIMEOUT_MS);
}
