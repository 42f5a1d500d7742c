#include "bench/http_client.h"

#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <limits>
#include <optional>

#include "common/error.h"

namespace prunekv::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

ServerAddress parse_server_url(std::string_view url) {
  const auto bad = [&] {
    return InputError(fmt::format("--url \"{}\": expected http://HOST:PORT with HOST an IP address or localhost", url));
  };
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) throw bad();
  std::string_view rest = url.substr(kScheme.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || rest.find('/') != std::string_view::npos) throw bad();
  ServerAddress address;
  address.host = std::string(rest.substr(0, colon));
  if (address.host == "localhost") address.host = "127.0.0.1";
  const std::string_view port = rest.substr(colon + 1);
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), address.port);
  if (ec != std::errc() || end != port.data() + port.size() || address.port == 0) throw bad();
  beast::error_code parse_ec;
  asio::ip::make_address(address.host, parse_ec);
  if (parse_ec) throw bad();
  return address;
}

struct HttpClient::Impl {
  explicit Impl(ServerAddress a) : address(std::move(a)), socket(io) {}

  void connect() {
    if (socket.is_open()) return;
    beast::error_code ec;
    socket.connect(tcp::endpoint(asio::ip::make_address(address.host), address.port), ec);
    if (ec) {
      socket.close(ec);
      throw Error(fmt::format("cannot connect to {}:{}: {}", address.host, address.port, ec.message()));
    }
    socket.set_option(tcp::no_delay(true), ec);
    buffer.clear();
  }
  void disconnect() {
    beast::error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    buffer.clear();
  }
  http::request<http::string_body> make(http::verb verb, std::string_view target, std::string_view body) {
    http::request<http::string_body> request(verb, std::string(target), 11);
    request.set(http::field::host, fmt::format("{}:{}", address.host, address.port));
    request.set(http::field::user_agent, "prunekv-bench");
    if (verb == http::verb::post) request.set(http::field::content_type, "application/json");
    request.body() = std::string(body);
    request.keep_alive(true);
    request.prepare_payload();
    return request;
  }
  HttpResponse read_response() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    beast::error_code ec;
    http::read(socket, buffer, parser, ec);
    if (ec) {
      disconnect();
      throw Error(fmt::format("reading the response from {}:{}: {}", address.host, address.port, ec.message()));
    }
    auto& response = parser.get();
    HttpResponse out;
    out.status = static_cast<int>(response.result_int());
    out.body = std::move(response.body());
    out.content_type = std::string(response[http::field::content_type]);
    out.retry_after = std::string(response[http::field::retry_after]);
    if (!response.keep_alive()) disconnect();
    return out;
  }
  // One request and its whole response; a kept-alive connection the server closed meanwhile is
  // reopened once.
  HttpResponse exchange(http::verb verb, std::string_view target, std::string_view body) {
    for (int attempt = 0;; ++attempt) {
      const bool fresh = !socket.is_open();
      connect();
      auto request = make(verb, target, body);
      beast::error_code ec;
      http::write(socket, request, ec);
      if (!ec) {
        try {
          return read_response();
        } catch (const Error&) {
          if (fresh || attempt > 0) throw;
        }
      } else {
        disconnect();
        if (fresh || attempt > 0)
          throw Error(fmt::format("sending to {}:{}: {}", address.host, address.port, ec.message()));
      }
    }
  }

  ServerAddress address;
  asio::io_context io;
  tcp::socket socket;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(ServerAddress address) : impl_(std::make_unique<Impl>(std::move(address))) {}
HttpClient::~HttpClient() { impl_->disconnect(); }

HttpResponse HttpClient::get(std::string_view target) { return impl_->exchange(http::verb::get, target, {}); }

HttpResponse HttpClient::post(std::string_view target, std::string_view json_body) {
  return impl_->exchange(http::verb::post, target, json_body);
}

int HttpClient::post_streaming(std::string_view target, std::string_view json_body,
                               const std::function<bool(std::string_view)>& on_data) {
  // A fresh connection per stream: a hang-up must not poison the next request.
  impl_->disconnect();
  impl_->connect();
  auto request = impl_->make(http::verb::post, target, json_body);
  beast::error_code ec;
  http::write(impl_->socket, request, ec);
  if (ec) {
    impl_->disconnect();
    throw Error(fmt::format("sending to {}:{}: {}", impl_->address.host, impl_->address.port, ec.message()));
  }
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(impl_->socket, impl_->buffer, parser, ec);
  if (ec) {
    impl_->disconnect();
    throw Error(fmt::format("reading the response header: {}", ec.message()));
  }
  const int status = static_cast<int>(parser.get().result_int());
  char data[16384];
  while (!parser.is_done()) {
    parser.get().body().data = data;
    parser.get().body().size = sizeof(data);
    // read_some: hand over what arrived now (read() would wait to fill the whole buffer).
    http::read_some(impl_->socket, impl_->buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      impl_->disconnect();
      throw Error(fmt::format("reading the streamed body: {}", ec.message()));
    }
    const size_t n = sizeof(data) - parser.get().body().size;
    if (n > 0 && !on_data(std::string_view(data, n))) {
      impl_->disconnect();
      return status;
    }
  }
  if (!parser.get().keep_alive()) impl_->disconnect();
  return status;
}

HttpResponse HttpClient::send_raw(std::string_view bytes) {
  impl_->disconnect();
  impl_->connect();
  beast::error_code ec;
  asio::write(impl_->socket, asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec) throw Error(fmt::format("sending raw bytes: {}", ec.message()));
  HttpResponse response = impl_->read_response();
  impl_->disconnect();
  return response;
}

void HttpClient::close() { impl_->disconnect(); }

void SseParser::feed(std::string_view bytes, std::vector<std::string>& events) {
  pending_.append(bytes);
  size_t start = 0;
  for (;;) {
    const size_t end = pending_.find("\n\n", start);
    if (end == std::string::npos) break;
    std::string_view event(pending_.data() + start, end - start);
    // One "data:" line per event here (the server never splits one across lines).
    constexpr std::string_view kData = "data: ";
    if (event.starts_with(kData)) events.emplace_back(event.substr(kData.size()));
    start = end + 2;
  }
  pending_.erase(0, start);
}

}  // namespace prunekv::bench
