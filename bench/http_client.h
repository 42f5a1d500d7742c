#pragma once
// A small blocking HTTP/1.1 client for the serving benchmark and the server's tests: one
// keep-alive connection to an IP address, JSON posts, and streamed bodies handed over as they
// arrive (Server-Sent Events). Boost.Beast stays in the .cpp.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace prunekv::bench {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string retry_after;  // the Retry-After header, when present
};

// "http://127.0.0.1:8000" (an IP literal or localhost; no path) -> host and port. Throws
// InputError naming what was expected.
struct ServerAddress {
  std::string host;
  uint16_t port = 0;
};
ServerAddress parse_server_url(std::string_view url);

class HttpClient {
 public:
  // Connects on first use; throws Error when the server cannot be reached.
  explicit HttpClient(ServerAddress address);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse get(std::string_view target);
  HttpResponse post(std::string_view target, std::string_view json_body);
  // Posts and hands the response body to on_data piece by piece as it arrives (chunk framing
  // removed); on_data returns false to hang up at once (the connection is closed). Returns the
  // status; the body of a non-200 answer goes to on_data too.
  int post_streaming(std::string_view target, std::string_view json_body,
                     const std::function<bool(std::string_view)>& on_data);
  // Sends `bytes` as they are (malformed requests in tests) and reads one response.
  HttpResponse send_raw(std::string_view bytes);
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits a Server-Sent Events byte stream into the payloads of its "data:" lines.
class SseParser {
 public:
  // Appends the payload of every event completed by `bytes` to `events`.
  void feed(std::string_view bytes, std::vector<std::string>& events);

 private:
  std::string pending_;
};

}  // namespace prunekv::bench
