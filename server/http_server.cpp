#include "server/http_server.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <list>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

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

using Request = http::request<http::string_body>;

// While a request is answered, the socket stays read (so that a hang-up is seen at once) in
// pieces of this size, into the buffer the next request is parsed from: pipelined requests are
// kept. Beyond kMaxBufferedAhead such bytes the reads stop until the answer is out.
constexpr size_t kWatchReadBytes = 4096;
constexpr size_t kMaxBufferedAhead = 64 * 1024;

std::chrono::steady_clock::duration steady_seconds(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

// A message or header as the bytes on the wire.
template <class Message>
std::string wire_bytes(const Message& message) {
  std::ostringstream out;
  out << message;
  return std::move(out).str();
}

}  // namespace

struct HttpServer::Impl {
  class Connection;
  // A request's channel with news from the engine, and the connection answering it.
  struct News {
    std::shared_ptr<RequestChannel> channel;
    std::weak_ptr<Connection> connection;
  };

  Impl(ModelRunner& runner, EngineConfig config, ServerOptions options);

  // Network thread.
  void accept_next();
  void deliver_news();
  void forget(Connection& c);
  // Any thread: closes the idle connections (waiting for their next request), or all of them,
  // on the network thread.
  void close_connections(bool idle_only);
  // Engine thread: a channel's first news since its connection last took.
  void tell(News news);
  // Engine thread, after each step: one wake-up of the network thread for all of the step's news
  // (none while a delivery it has not started yet is posted already).
  void hand_news_on();
  // ApiError 400 when the model has no chat template prunekv can apply.
  void require_chat_template() const;
  void shutdown(double drain_seconds);

  ServerOptions options;
  const uint32_t context_length;
  const std::optional<ChatFormat> chat_format;
  ServerMetrics metrics;
  // One io_context on one network thread serves the acceptor and every connection.
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  uint16_t bound_port = 0;
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> next_completion{1};
  std::mutex news_mutex;
  std::vector<News> news;  // guarded by news_mutex
  // A delivery is posted and has not taken the news yet: later steps' news rides along with it.
  std::atomic<bool> delivery_posted{false};
  std::list<std::shared_ptr<Connection>> connections;  // network thread
  std::mutex open_mutex;
  std::condition_variable all_closed;
  size_t num_open = 0;  // connections not closed yet; guarded by open_mutex
  EngineLoop loop;      // after what its after_step hook touches
  std::thread network;
  bool shut_down = false;
  std::shared_ptr<spdlog::logger> log = log::get("server");
};

// One client connection, driven by completion handlers on the network thread only: read a
// request (deadline --read-timeout), answer it, read the next (keep-alive, pipelining). A
// completion is submitted to the engine and answered from its news; meanwhile the socket stays
// read, and a hang-up cancels the request. Everything pending goes out in one write, each with
// its deadline (write_timeout_seconds).
class HttpServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Impl& server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {
    beast::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }
  void start() { read_next(); }
  // Waiting for a next request (shutdown closes these first).
  bool idle() const { return state_ == State::kReading; }
  // The engine has news on `channel`.
  void on_news(RequestChannel& channel);
  // Cancels the request being answered, if any, and closes the socket.
  void close();

  std::list<std::shared_ptr<Connection>>::iterator place;  // in server.connections

 private:
  enum class State { kReading, kAnswering, kClosed };
  // A completion the engine is working on.
  struct Pending {
    RequestId id = kInvalidRequest;
    std::shared_ptr<RequestChannel> channel;
    RequestChannel::Update update;
    CompletionIds ids;
    bool streaming = false;
    bool token_ids = false;
    bool include_usage = false;
    size_t max_stop = 0;  // longest stop string
    bool head_sent = false;
    size_t tokens_sent = 0, text_sent = 0;
  };

  void read_next();
  void on_request(beast::error_code ec);
  void handle(const Request& request);
  void completion(const Request& request, OpenAiEndpoint endpoint);
  // Turns the news taken so far into the answer's next bytes.
  void answer();
  void send(http::status status, std::string_view content_type, std::string body, std::string_view retry_after = {},
            bool keep = true);
  void send_json(http::status status, const json& body) { send(status, "application/json", dump_json(body)); }
  void send_error(const ApiError& error, bool keep = true);
  // Queues the answer's last bytes; after them the connection reads on or closes.
  void finish_with(std::string bytes, bool keep);
  void write_more();
  void on_written(beast::error_code ec);
  void finish_response();
  void watch();
  void on_watched(beast::error_code ec, size_t bytes);

  Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  State state_ = State::kReading;
  unsigned version_ = 11;       // of the request being answered
  bool keep_requested_ = false;  // it asked for keep-alive
  std::optional<Pending> pending_;
  std::string outbox_;           // bytes waiting for the write in flight
  std::string in_flight_;        // the bytes of the write in flight
  bool writing_ = false;
  bool response_done_ = false;   // the answer's last bytes are queued or in flight
  bool keep_after_ = false;      // read the next request after the answer
  bool watching_ = false;        // a hang-up read is in flight
  bool read_after_watch_ = false;  // the answer is out: read the next request once that read ends
};

void HttpServer::Impl::Connection::read_next() {
  if (state_ == State::kClosed) return;
  if (server_.draining.load()) return close();
  state_ = State::kReading;
  parser_.emplace();
  parser_->body_limit(server_.options.max_body_bytes);
  stream_.expires_after(steady_seconds(server_.options.read_timeout_seconds));
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->on_request(ec); });
}

void HttpServer::Impl::Connection::on_request(beast::error_code ec) {
  if (state_ == State::kClosed) return;
  state_ = State::kAnswering;
  version_ = 11;
  keep_requested_ = false;
  if (ec == beast::error::timeout) {
    server_.log->debug("connection idle or incomplete for {} s: closed", server_.options.read_timeout_seconds);
    return close();
  }
  if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::operation_aborted || ec == asio::error::shut_down)
    return close();
  if (ec == http::error::body_limit)
    return send_error(ApiError(413, fmt::format("request body over {} bytes", server_.options.max_body_bytes)), false);
  if (ec) return send_error(ApiError(400, fmt::format("malformed HTTP request: {}", ec.message())), false);
  const Request request = parser_->release();
  version_ = request.version();
  keep_requested_ = request.keep_alive();
  try {
    handle(request);
  } catch (const ApiError& e) {
    send_error(e);
  } catch (const std::exception& e) {
    server_.log->error("{} {}: {}", std::string(request.method_string()), std::string(request.target()), e.what());
    send_error(ApiError(500, fmt::format("internal error: {}", e.what())), false);
  }
}

void HttpServer::Impl::Connection::send(http::status status, std::string_view content_type, std::string body,
                                        std::string_view retry_after, bool keep) {
  http::response<http::string_body> response(status, version_);
  response.set(http::field::server, "prunekv");
  response.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  if (!retry_after.empty())
    response.set(http::field::retry_after, beast::string_view(retry_after.data(), retry_after.size()));
  response.keep_alive(keep && keep_requested_ && !server_.draining.load());
  response.body() = std::move(body);
  response.prepare_payload();
  finish_with(wire_bytes(response), response.keep_alive());
}

void HttpServer::Impl::Connection::send_error(const ApiError& error, bool keep) {
  server_.metrics.observe_refused(error.status());
  send(static_cast<http::status>(error.status()), "application/json", dump_json(error.body()),
       error.status() == 503 ? "1" : "", keep);
}

void HttpServer::Impl::Connection::handle(const Request& request) {
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
    return send_json(http::status::ok, {{"status", "ok"}});
  }
  if (path == "/v1/models") {
    only(get, "GET");
    json model = {{"id", server_.options.model_name}, {"object", "model"}, {"created", int64_t(std::time(nullptr))},
                  {"owned_by", "prunekv"}, {"max_model_len", server_.context_length}};
    return send_json(http::status::ok, {{"object", "list"}, {"data", json::array({model})}});
  }
  if (path == "/metrics") {
    only(get, "GET");
    return send(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", server_.metrics.render());
  }
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    only(post, "POST");
    return completion(request,
                      path == "/v1/completions" ? OpenAiEndpoint::kCompletions : OpenAiEndpoint::kChatCompletions);
  }
  throw ApiError(404, fmt::format("no route {} {}: expected /health, /metrics, /v1/models, /v1/completions, /v1/chat/completions",
                                  std::string(request.method_string()), path));
}

void HttpServer::Impl::Connection::completion(const Request& request, OpenAiEndpoint endpoint) {
  if (server_.draining.load()) throw ApiError(503, "server shutting down");
  const bool chat = endpoint == OpenAiEndpoint::kChatCompletions;
  if (chat) server_.require_chat_template();  // before the body: no chat body can be served without one
  CompletionRequest cr = parse_completion_request(request.body(), server_.options.model_name, endpoint);
  if (chat) {
    cr.spec.prompt = render_chat(*server_.chat_format, cr.messages, cr.add_generation_prompt);
    cr.spec.parse_special_tokens = true;  // the template's <s>, </s>, <|im_start|> are tokens, not text
  }
  Pending p;
  p.ids = CompletionIds{fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", server_.next_completion.fetch_add(1)),
                        int64_t(std::time(nullptr)), server_.options.model_name, chat};
  p.channel = std::make_shared<RequestChannel>();
  p.streaming = cr.stream;
  p.token_ids = cr.return_token_ids;
  p.include_usage = cr.include_usage;
  for (const std::string& s : cr.spec.stop) p.max_stop = std::max(p.max_stop, s.size());
  // Runs on the engine thread: it only collects, and tells the network thread once per take.
  auto on_output = [&server = server_, channel = p.channel, connection = weak_from_this(),
                    streaming = p.streaming](const RequestOutput& output, bool finished) {
    if ((finished || streaming) && channel->push(output, finished)) server.tell({channel, connection});
  };
  const std::optional<RequestId> id =
      server_.loop.try_submit(std::move(cr.spec), std::move(on_output), server_.options.max_queued_requests);
  if (!id) {
    if (server_.draining.load()) throw ApiError(503, "server shutting down");
    throw ApiError(503, fmt::format("server busy: {} requests queued (--max-queued-requests {}); retry later",
                                    server_.loop.num_outstanding(), server_.options.max_queued_requests));
  }
  p.id = *id;
  pending_ = std::move(p);
  watch();
}

void HttpServer::Impl::Connection::on_news(RequestChannel& channel) {
  if (state_ == State::kClosed || !pending_ || pending_->channel.get() != &channel || response_done_) return;
  if (!channel.take(pending_->update)) return;
  try {
    answer();
  } catch (const std::exception& e) {
    server_.log->error("answering {}: {}", pending_->ids.id, e.what());
    close();
  }
}

void HttpServer::Impl::Connection::answer() {
  Pending& p = *pending_;
  const std::optional<RequestOutput>& final = p.update.final;
  std::string events;
  if (!p.head_sent) {
    // Nothing is sent before the first news, so that a request the engine refuses still gets
    // its status code.
    if (final && final->finish_reason == FinishReason::kError) return send_error(ApiError(400, final->error, "prompt"));
    if (!p.streaming) {
      if (!final) return;
      if (final->finish_reason == FinishReason::kCancelled)
        return send_error(ApiError(503, "request cancelled: the server is shutting down"));
      return send_json(http::status::ok, completion_body(p.ids, *final, p.token_ids));
    }
    http::response<http::empty_body> head(http::status::ok, version_);
    head.set(http::field::server, "prunekv");
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    head.keep_alive(keep_requested_ && !server_.draining.load());
    head.chunked(true);
    keep_after_ = head.keep_alive();
    outbox_ += wire_bytes(head.base());
    p.head_sent = true;
    if (p.ids.chat) events = chat_role_chunk(p.ids);
  }
  // One event per token, each with the text that became safe to send; all of them in one chunk.
  for (; p.tokens_sent < p.update.tokens.size(); ++p.tokens_sent) {
    const std::string_view text = std::string_view(p.update.text).substr(0, p.update.text_ends[p.tokens_sent]);
    const size_t end = sendable_text_end(text, p.text_sent, p.max_stop, false);
    const std::span<const TokenId> token(&p.update.tokens[p.tokens_sent], 1);
    events += completion_chunk(p.ids, text.substr(p.text_sent, end - p.text_sent), token, p.token_ids, nullptr);
    p.text_sent = end;
  }
  if (final) {
    const std::string_view rest =
        p.text_sent < final->text.size() ? std::string_view(final->text).substr(p.text_sent) : "";
    const std::span<const TokenId> last_tokens =
        std::span<const TokenId>(final->output_tokens).subspan(std::min(p.tokens_sent, final->output_tokens.size()));
    events += completion_chunk(p.ids, rest, last_tokens, p.token_ids, &*final);
    if (p.include_usage) events += usage_chunk(p.ids, *final);
    events += kDoneEvent;
  }
  if (!events.empty()) outbox_ += beast::buffers_to_string(http::make_chunk(asio::buffer(events)));
  if (final) return finish_with(beast::buffers_to_string(http::make_chunk_last()), keep_after_);
  write_more();
}

void HttpServer::Impl::Connection::finish_with(std::string bytes, bool keep) {
  outbox_ += bytes;
  response_done_ = true;
  keep_after_ = keep;
  write_more();
}

void HttpServer::Impl::Connection::write_more() {
  if (writing_ || outbox_.empty() || state_ == State::kClosed) return;
  in_flight_.swap(outbox_);
  outbox_.clear();
  writing_ = true;
  stream_.expires_after(steady_seconds(server_.options.write_timeout_seconds));
  asio::async_write(stream_, asio::buffer(in_flight_),
                    [self = shared_from_this()](beast::error_code ec, size_t) { self->on_written(ec); });
}

void HttpServer::Impl::Connection::on_written(beast::error_code ec) {
  writing_ = false;
  if (state_ == State::kClosed) return;
  if (ec) {
    if (ec == beast::error::timeout)
      server_.log->debug("client read nothing for {} s: closed", server_.options.write_timeout_seconds);
    return close();  // the client is gone or stalled: its request is cancelled
  }
  if (!outbox_.empty()) return write_more();
  if (response_done_) finish_response();
}

void HttpServer::Impl::Connection::finish_response() {
  pending_.reset();
  response_done_ = false;
  if (!keep_after_ || server_.draining.load()) return close();
  if (!watching_) return read_next();
  // The hang-up read owns the buffer until it ends: stop it, and read on from its handler.
  read_after_watch_ = true;
  beast::error_code ec;
  stream_.socket().cancel(ec);
}

void HttpServer::Impl::Connection::watch() {
  if (watching_ || state_ == State::kClosed || buffer_.size() >= kMaxBufferedAhead) return;
  watching_ = true;
  stream_.socket().async_read_some(buffer_.prepare(kWatchReadBytes),
                                   [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                                     self->on_watched(ec, bytes);
                                   });
}

void HttpServer::Impl::Connection::on_watched(beast::error_code ec, size_t bytes) {
  watching_ = false;
  buffer_.commit(bytes);  // a pipelined request's bytes: parsed after this answer
  if (state_ == State::kClosed) return;
  const bool hung_up = ec && ec != asio::error::operation_aborted;
  if (read_after_watch_) {
    read_after_watch_ = false;
    return hung_up ? close() : read_next();
  }
  if (!hung_up) return watch();
  // The client closed or reset its end. While its answer is still being made, its request is
  // cancelled (its blocks go back at the next step); an answer already complete goes out first.
  if (!response_done_) return close();
  keep_after_ = false;
}

void HttpServer::Impl::Connection::close() {
  if (state_ == State::kClosed) return;
  const auto self = shared_from_this();  // forget() drops the server's reference
  state_ = State::kClosed;
  if (pending_ && !response_done_) server_.loop.cancel(pending_->id);
  pending_.reset();
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();  // the reads and writes in flight end with operation_aborted
  server_.forget(*this);
}

HttpServer::Impl::Impl(ModelRunner& runner, EngineConfig config, ServerOptions opts)
    : options(std::move(opts)),
      context_length(runner.context_length()),
      chat_format(detect_chat_format(options.chat_template)),
      metrics(options.model_name),
      loop(runner, std::move(config), metrics, options.status_interval_seconds, [this] { hand_news_on(); }) {
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
  accept_next();
  network = std::thread([this] {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {  // a handler threw: log it and serve on
        log->error("network thread: {}", e.what());
      }
    }
  });
}

void HttpServer::Impl::accept_next() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (draining.load() || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) return;
    if (ec) {
      log->warn("accept: {}", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(10));  // out of descriptors: breathe
      accept_retry.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) accept_next();
      });
      return;
    }
    if (connections.size() >= options.max_connections) {
      metrics.observe_refused(503);
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      auto refused = std::make_shared<tcp::socket>(std::move(socket));
      asio::async_write(*refused, asio::buffer(kBusy), [refused](beast::error_code, size_t) {
        beast::error_code close_ec;
        refused->close(close_ec);
      });
    } else {
      auto c = std::make_shared<Connection>(*this, std::move(socket));
      c->place = connections.insert(connections.end(), c);
      {
        std::lock_guard lock(open_mutex);
        ++num_open;
      }
      c->start();
    }
    accept_next();
  });
}

void HttpServer::Impl::forget(Connection& c) {
  connections.erase(c.place);
  std::lock_guard lock(open_mutex);
  if (--num_open == 0) all_closed.notify_all();
}

void HttpServer::Impl::tell(News n) {
  std::lock_guard lock(news_mutex);
  news.push_back(std::move(n));
}

void HttpServer::Impl::hand_news_on() {
  {
    std::lock_guard lock(news_mutex);
    if (news.empty()) return;
  }
  if (!delivery_posted.exchange(true)) asio::post(io, [this] { deliver_news(); });
}

void HttpServer::Impl::deliver_news() {
  delivery_posted.store(false);  // before the swap: news told after it gets a delivery of its own
  std::vector<News> batch;
  {
    std::lock_guard lock(news_mutex);
    batch.swap(news);
  }
  for (const News& n : batch)
    if (const auto c = n.connection.lock()) c->on_news(*n.channel);
}

void HttpServer::Impl::close_connections(bool idle_only) {
  asio::post(io, [this, idle_only] {
    const std::vector<std::shared_ptr<Connection>> all(connections.begin(), connections.end());
    for (const auto& c : all)
      if (!idle_only || c->idle()) c->close();
  });
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

void HttpServer::Impl::shutdown(double drain_seconds) {
  if (shut_down) return;
  shut_down = true;
  draining.store(true);
  asio::post(io, [this] {
    beast::error_code ec;
    acceptor.close(ec);
    accept_retry.cancel();
  });
  if (!loop.wait_idle(std::max(0.0, drain_seconds)))
    log->warn("drain: {} requests still running after {} s; cancelling them", loop.num_outstanding(), drain_seconds);
  loop.stop();  // cancels the rest: their connections answer them and close
  // Connections waiting for a next request are closed now; answering ones finish first (2 s).
  close_connections(true);
  {
    std::unique_lock lock(open_mutex);
    all_closed.wait_for(lock, std::chrono::seconds(2), [&] { return num_open == 0; });
  }
  close_connections(false);
  asio::post(io, [this] { work.reset(); });  // io.run() returns once the closed sockets' handlers ran
  network.join();
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
