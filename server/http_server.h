#pragma once
// `prunekv serve`: an OpenAI-compatible HTTP/1.1 server over one EngineLoop.
//   GET  /health               200 once the model is loaded (it is, by construction)
//   GET  /v1/models            the one served model
//   GET  /metrics              Prometheus text (ServerMetrics)
//   POST /v1/completions       CompletionRequest; "stream": true answers with Server-Sent Events
//   POST /v1/chat/completions  the messages rendered with the model's chat template when
//                              model/chat_template.h recognises it; 400 when there is none or
//                              it is not one prunekv knows (it has no Jinja engine)
// One network thread serves every connection with Asio (reads and writes with deadlines,
// keep-alive, pipelining); the engine's output reaches it with one wake-up per engine step, and
// each connection sends all its pending events in one write. A client that goes away cancels its
// request. Boost.Asio and Beast stay in the .cpp.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "scheduler/engine_config.h"
#include "scheduler/model_runner.h"
#include "server/server_metrics.h"

namespace prunekv::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;  // 0 = an ephemeral port (see HttpServer::port())
  std::string model_name = "prunekv";  // what /v1/models lists and "model" must name
  std::string chat_template;  // the model's tokenizer.chat_template (Model::chat_template); "" = none
  // Requests accepted but not yet running beyond which a new one gets 503 + Retry-After.
  size_t max_queued_requests = 1024;
  double status_interval_seconds = 5.0;  // status line period while busy; <= 0: none
  size_t max_body_bytes = 1 << 20;       // larger bodies get 413
  size_t max_connections = 1024;         // more at once get 503 and are closed
  // A connection whose next request has not fully arrived this long after the last answer (or
  // after it connected) is closed, so idle or stalled clients cannot hold connections forever.
  double read_timeout_seconds = 60.0;
  // A connection whose client takes longer than this to take one write's bytes is closed (and
  // its request cancelled).
  double write_timeout_seconds = 60.0;
};

class HttpServer {
 public:
  // Builds the engine on `runner` (which must outlive the server), binds host:port and starts
  // serving. Throws ConfigError for a bad engine config, Error when the address cannot be bound.
  HttpServer(ModelRunner& runner, EngineConfig config, ServerOptions options);
  // shutdown(0) unless done already.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // Stops accepting, answers new requests on open connections with 503, lets running requests
  // finish for up to drain_seconds, cancels the rest, closes every connection and joins every
  // thread. Every block is back in the pool when it returns. Idempotent; owner thread only.
  void shutdown(double drain_seconds);
  const ServerMetrics& metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// For the `serve` command: blocks SIGINT and SIGTERM in the calling thread and every thread it
// starts afterwards (call before building the server), then waits for one of them.
void block_shutdown_signals();
// Returns the signal's name ("SIGINT", "SIGTERM") once one arrives.
std::string wait_for_shutdown_signal();

}  // namespace prunekv::server
