#include "server/http_server.h"

#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "model/chat_template.h"
#include "server/api_error.h"
#include "server/completion_request.h"
#include "server/completion_response.h"
#include "server/engine_loop.h"
#include "server/request_channel.h"
#include "server/stream_text.h"

namespace prunekv::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

// How often a thread waiting on the engine looks whether its client is still there.
constexpr std::chrono::milliseconds kClientCheckPeriod{20};

// Whether the peer closed or reset the connection (non-blocking; pipelined bytes are left).
bool peer_gone(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
  if (p.revents & POLLIN) {
    char c;
    const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }
  return false;
}

// Each connection runs its own io_context for its reads, so that tcp_stream's deadline bounds
// them (a client that connects and sends nothing, or half a request, is dropped at the deadline);
// writes stay blocking on the same socket.
struct Connection {
  asio::io_context io;
  beast::tcp_stream stream{io};
  tcp::socket& socket = stream.socket();
  int fd = -1;
  std::mutex mutex;         // guards the fields below against shutdown()
  bool reading_idle = false;  // blocked waiting for the next request
  bool closed = false;
  std::atomic<bool> done{false};
  std::thread thread;
};

using Request = http::request<http::string_body>;

}  // namespace

struct HttpServer::Impl {
  Impl(ModelRunner& runner, EngineConfig config, ServerOptions options);

  void accept_loop();
  void serve(Connection& c);
  // Answers one request; false when the connection must close afterwards.
  bool handle(Connection& c, const Request& request);
  bool completion(Connection& c, const Request& request, OpenAiEndpoint endpoint);
  // ApiError 400 when the model has no chat template prunekv can apply.
  void require_chat_template() const;
  bool stream(Connection& c, const Request& request, const CompletionIds& ids, const CompletionRequest& cr,
              RequestId id, RequestChannel& channel, RequestChannel::Update& update);
  // Waits for news from the engine while watching the client; false when the client left (the
  // request is then cancelled).
  bool wait_for_engine(Connection& c, RequestId id, RequestChannel& channel, RequestChannel::Update& update);
  bool send_json(Connection& c, const Request& request, http::status status, const json& body,
                 std::string_view retry_after = {});
  bool send_error(Connection& c, const Request& request, const ApiError& error);
  void reap_connections(bool all);
  void shutdown(double drain_seconds);

  ServerOptions options;
  const uint32_t context_length;
  const std::optional<ChatFormat> chat_format;
  ServerMetrics metrics;
  EngineLoop loop;
  asio::io_context io;
  tcp::acceptor acceptor;
  uint16_t bound_port = 0;
  std::thread accept_thread;
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> next_completion{1};
  std::mutex connections_mutex;
  std::condition_variable connection_ended;
  std::list<std::shared_ptr<Connection>> connections;
  bool shut_down = false;
  std::shared_ptr<spdlog::logger> log = log::get("server");
};

HttpServer::Impl::Impl(ModelRunner& runner, EngineConfig config, ServerOptions opts)
    : options(std::move(opts)),
      context_length(runner.context_length()),
      chat_format(detect_chat_format(options.chat_template)),
      metrics(options.model_name),
      loop(runner, std::move(config), metrics, options.status_interval_seconds),
      acceptor(io) {
  beast::error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  if (ec) throw ConfigError(fmt::format("--host {}: expected an IP address, {}", options.host, ec.message()));
  const tcp::endpoint endpoint(address, options.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw Error(fmt::format("cannot listen on {}:{}: {}", options.host, options.port, ec.message()));
  bound_port = acceptor.local_endpoint().port();
  if (chat_format)
    log->info("chat template: {} (/v1/chat/completions)", chat_format_name(*chat_format));
  else if (!options.chat_template.empty())
    log->warn("the model's chat template is none prunekv recognises: /v1/chat/completions answers 400");
  accept_thread = std::thread([this] { accept_loop(); });
}

void HttpServer::Impl::accept_loop() {
  for (;;) {
    auto connection = std::make_shared<Connection>();
    beast::error_code ec;
    acceptor.accept(connection->socket, ec);
    if (draining.load()) break;
    if (ec) {
      if (ec == asio::error::invalid_argument || ec == asio::error::bad_descriptor) break;  // shut down
      log->warn("accept: {}", ec.message());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // out of descriptors: breathe
      continue;
    }
    connection->socket.set_option(tcp::no_delay(true), ec);
    connection->fd = connection->socket.native_handle();
    reap_connections(false);
    std::lock_guard lock(connections_mutex);
    if (connections.size() >= options.max_connections) {
      metrics.observe_refused(503);
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      asio::write(connection->socket, asio::buffer(kBusy), ec);
      connection->socket.close(ec);
      continue;
    }
    connections.push_back(connection);
    connection->thread = std::thread([this, connection] {
      serve(*connection);
      connection->done.store(true);
      connection_ended.notify_all();
    });
  }
}

void HttpServer::Impl::reap_connections(bool all) {
  std::list<std::shared_ptr<Connection>> ended;
  {
    std::lock_guard lock(connections_mutex);
    for (auto it = connections.begin(); it != connections.end();) {
      if (all || (*it)->done.load()) {
        ended.push_back(std::move(*it));
        it = connections.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : ended) c->thread.join();
}

void HttpServer::Impl::serve(Connection& c) {
  const auto read_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options.read_timeout_seconds));
  beast::flat_buffer buffer;
  for (;;) {
    {
      std::lock_guard lock(c.mutex);
      if (draining.load()) break;
      c.reading_idle = true;
    }
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    beast::error_code ec;
    c.stream.expires_after(read_timeout);
    http::async_read(c.stream, buffer, parser, [&ec](beast::error_code e, size_t) { ec = e; });
    c.io.restart();
    c.io.run();
    {
      std::lock_guard lock(c.mutex);
      c.reading_idle = false;
      // At the deadline tcp_stream closed the socket itself: shutdown() must not touch its
      // descriptor number any more.
      if (ec == beast::error::timeout) c.closed = true;
    }
    if (ec == beast::error::timeout) {
      log->debug("connection idle or incomplete for {} s: closed", options.read_timeout_seconds);
      return;
    }
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == asio::error::shut_down)
      break;
    if (ec) {
      Request bare;
      bare.version(11);
      if (ec == http::error::body_limit) {
        send_error(c, bare, ApiError(413, fmt::format("request body over {} bytes", options.max_body_bytes)));
      } else {
        send_error(c, bare, ApiError(400, fmt::format("malformed HTTP request: {}", ec.message())));
      }
      break;
    }
    const Request& request = parser.get();
    bool keep = false;
    try {
      keep = handle(c, request) && request.keep_alive();
    } catch (const ApiError& e) {
      keep = send_error(c, request, e) && request.keep_alive();
    } catch (const std::exception& e) {
      log->error("{} {}: {}", std::string(request.method_string()), std::string(request.target()), e.what());
      send_error(c, request, ApiError(500, fmt::format("internal error: {}", e.what())));
      keep = false;
    }
    if (!keep) break;
  }
  std::lock_guard lock(c.mutex);
  beast::error_code ec;
  c.socket.shutdown(tcp::socket::shutdown_both, ec);
  c.socket.close(ec);
  c.closed = true;
}

bool HttpServer::Impl::send_json(Connection& c, const Request& request, http::status status, const json& body,
                                 std::string_view retry_after) {
  http::response<http::string_body> response(status, request.version());
  response.set(http::field::server, "prunekv");
  response.set(http::field::content_type, "application/json");
  if (!retry_after.empty()) response.set(http::field::retry_after, std::string(retry_after));
  response.keep_alive(request.keep_alive() && !draining.load());
  response.body() = dump_json(body);
  response.prepare_payload();
  beast::error_code ec;
  http::write(c.socket, response, ec);
  return !ec && response.keep_alive();
}

bool HttpServer::Impl::send_error(Connection& c, const Request& request, const ApiError& error) {
  metrics.observe_refused(error.status());
  return send_json(c, request, static_cast<http::status>(error.status()), error.body(),
                   error.status() == 503 ? "1" : "");
}

bool HttpServer::Impl::handle(Connection& c, const Request& request) {
  const std::string_view target(request.target().data(), request.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  const bool get = request.method() == http::verb::get;
  const bool post = request.method() == http::verb::post;
  auto only = [&](bool allowed, std::string_view method) {
    if (!allowed)
      throw ApiError(405, fmt::format("{} {}: expected method {}", std::string(request.method_string()), path, method));
  };
  if (path == "/health") {
    only(get, "GET");
    return send_json(c, request, http::status::ok, {{"status", "ok"}});
  }
  if (path == "/v1/models") {
    only(get, "GET");
    json model = {{"id", options.model_name}, {"object", "model"}, {"created", int64_t(std::time(nullptr))},
                  {"owned_by", "prunekv"}, {"max_model_len", context_length}};
    return send_json(c, request, http::status::ok, {{"object", "list"}, {"data", json::array({model})}});
  }
  if (path == "/metrics") {
    only(get, "GET");
    http::response<http::string_body> response(http::status::ok, request.version());
    response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    response.keep_alive(request.keep_alive() && !draining.load());
    response.body() = metrics.render();
    response.prepare_payload();
    beast::error_code ec;
    http::write(c.socket, response, ec);
    return !ec && response.keep_alive();
  }
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    only(post, "POST");
    return completion(c, request,
                      path == "/v1/completions" ? OpenAiEndpoint::kCompletions : OpenAiEndpoint::kChatCompletions);
  }
  throw ApiError(404, fmt::format("no route {} {}: expected /health, /metrics, /v1/models, /v1/completions, /v1/chat/completions",
                                  std::string(request.method_string()), path));
}

bool HttpServer::Impl::wait_for_engine(Connection& c, RequestId id, RequestChannel& channel,
                                       RequestChannel::Update& update) {
  while (!channel.wait(update, kClientCheckPeriod)) {
    if (peer_gone(c.fd)) {
      loop.cancel(id);
      return false;
    }
  }
  return true;
}

void HttpServer::Impl::require_chat_template() const {
  if (options.chat_template.empty())
    throw ApiError(400, fmt::format("model \"{}\" has no chat template (GGUF metadata tokenizer.chat_template): use "
                                    "/v1/completions with a prompt",
                                    options.model_name),
                   "messages");
  if (!chat_format)
    throw ApiError(400, fmt::format("model \"{}\" has a chat template prunekv does not recognise (it renders the "
                                    "chatml, llama2, mistral, llama3, zephyr, gemma and phi3 formats and has no Jinja "
                                    "engine): use /v1/completions with a prompt",
                                    options.model_name),
                   "messages");
}

bool HttpServer::Impl::completion(Connection& c, const Request& request, OpenAiEndpoint endpoint) {
  if (draining.load()) throw ApiError(503, "server shutting down");
  const bool chat = endpoint == OpenAiEndpoint::kChatCompletions;
  if (chat) require_chat_template();  // before the body: no chat body can be served without one
  CompletionRequest cr = parse_completion_request(request.body(), options.model_name, endpoint);
  if (chat) cr.spec.prompt = render_chat(*chat_format, cr.messages, cr.add_generation_prompt);
  const CompletionIds ids{fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", next_completion.fetch_add(1)),
                          int64_t(std::time(nullptr)), options.model_name, chat};
  auto channel = std::make_shared<RequestChannel>();
  const bool streaming = cr.stream;
  const std::optional<RequestId> id = loop.try_submit(
      cr.spec,
      [channel, streaming](const RequestOutput& output, bool finished) {
        if (finished || streaming) channel->push(output, finished);
      },
      options.max_queued_requests);
  if (!id) {
    if (draining.load()) throw ApiError(503, "server shutting down");
    throw ApiError(503, fmt::format("server busy: {} requests queued (--max-queued-requests {}); retry later",
                                    loop.num_outstanding(), options.max_queued_requests));
  }
  RequestChannel::Update update;
  if (!wait_for_engine(c, *id, *channel, update)) return false;
  if (update.final && update.final->finish_reason == FinishReason::kError)
    throw ApiError(400, update.final->error, "prompt");
  if (streaming) return stream(c, request, ids, cr, *id, *channel, update);
  if (update.final->finish_reason == FinishReason::kCancelled)
    throw ApiError(503, "request cancelled: the server is shutting down");
  return send_json(c, request, http::status::ok, completion_body(ids, *update.final, cr.return_token_ids));
}

bool HttpServer::Impl::stream(Connection& c, const Request& request, const CompletionIds& ids,
                              const CompletionRequest& cr, RequestId id, RequestChannel& channel,
                              RequestChannel::Update& update) {
  http::response<http::empty_body> head(http::status::ok, request.version());
  head.set(http::field::server, "prunekv");
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.keep_alive(request.keep_alive() && !draining.load());
  head.chunked(true);
  http::response_serializer<http::empty_body> serializer(head);
  beast::error_code ec;
  http::write_header(c.socket, serializer, ec);
  // The events of every token that came in since the last write go out in one HTTP chunk: one
  // write per wake-up, however far the engine got meanwhile.
  std::string events;
  auto flush = [&] {
    if (!ec && !events.empty()) asio::write(c.socket, http::make_chunk(asio::buffer(events)), ec);
    events.clear();
    return !ec;
  };
  if (ids.chat) {
    events = chat_role_chunk(ids);
    flush();
  }
  size_t max_stop = 0;
  for (const std::string& s : cr.spec.stop) max_stop = std::max(max_stop, s.size());
  size_t tokens_sent = 0, text_sent = 0;
  for (;;) {
    // One event per token, each with the text that became safe to send.
    for (; tokens_sent < update.tokens.size(); ++tokens_sent) {
      const std::string_view text = std::string_view(update.text).substr(0, update.text_ends[tokens_sent]);
      const size_t end = sendable_text_end(text, text_sent, max_stop, false);
      const std::span<const TokenId> token(&update.tokens[tokens_sent], 1);
      events += completion_chunk(ids, text.substr(text_sent, end - text_sent), token, cr.return_token_ids, nullptr);
      text_sent = end;
    }
    if (update.final) break;
    if (!flush()) {
      loop.cancel(id);
      return false;
    }
    if (!wait_for_engine(c, id, channel, update)) return false;
  }
  const RequestOutput& out = *update.final;
  const std::string_view rest = text_sent < out.text.size() ? std::string_view(out.text).substr(text_sent) : "";
  const std::span<const TokenId> last_tokens =
      std::span<const TokenId>(out.output_tokens).subspan(std::min(tokens_sent, out.output_tokens.size()));
  events += completion_chunk(ids, rest, last_tokens, cr.return_token_ids, &out);
  if (cr.include_usage) events += usage_chunk(ids, out);
  events += kDoneEvent;
  flush();
  if (!ec) asio::write(c.socket, http::make_chunk_last(), ec);
  return !ec && head.keep_alive();
}

void HttpServer::Impl::shutdown(double drain_seconds) {
  if (shut_down) return;
  shut_down = true;
  draining.store(true);
  // Unblocks accept() (a syscall on the descriptor, not a change to the acceptor object).
  ::shutdown(acceptor.native_handle(), SHUT_RDWR);
  accept_thread.join();
  beast::error_code ec;
  acceptor.close(ec);
  if (!loop.wait_idle(std::max(0.0, drain_seconds)))
    log->warn("drain: {} requests still running after {} s; cancelling them", loop.num_outstanding(), drain_seconds);
  loop.stop();  // cancels the rest: their threads answer and close
  // Connections waiting for a next request are closed now; answering ones finish first (2 s).
  auto close_connections = [&](bool idle_only) {
    std::lock_guard lock(connections_mutex);
    for (auto& c : connections) {
      std::lock_guard guard(c->mutex);
      if (!c->closed && (!idle_only || c->reading_idle)) ::shutdown(c->fd, SHUT_RDWR);
    }
  };
  close_connections(true);
  {
    std::unique_lock lock(connections_mutex);
    connection_ended.wait_for(lock, std::chrono::seconds(2), [&] {
      return std::all_of(connections.begin(), connections.end(), [](const auto& c) { return c->done.load(); });
    });
  }
  close_connections(false);
  reap_connections(true);
}

HttpServer::HttpServer(ModelRunner& runner, EngineConfig config, ServerOptions options)
    : impl_(std::make_unique<Impl>(runner, std::move(config), std::move(options))) {}

HttpServer::~HttpServer() { impl_->shutdown(0.0); }

uint16_t HttpServer::port() const { return impl_->bound_port; }

void HttpServer::shutdown(double drain_seconds) { impl_->shutdown(drain_seconds); }

const ServerMetrics& HttpServer::metrics() const { return impl_->metrics; }

void block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

std::string wait_for_shutdown_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int signal = 0;
  sigwait(&set, &signal);
  return signal == SIGINT ? "SIGINT" : "SIGTERM";
}

}  // namespace prunekv::server
