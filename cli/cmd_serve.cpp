// `prunekv serve`: the OpenAI-compatible HTTP server (server/http_server.h). The flags, then the
// server until SIGINT / SIGTERM, then a drain.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <memory>
#include <string>

#include "cli/command_registry.h"
#include "cli/engine_options.h"
#include "common/error.h"
#include "common/log.h"
#include "model/chat_template.h"
#include "scheduler/transformer_runner.h"
#include "server/http_server.h"

namespace prunekv::cli {
namespace {

struct ServeArgs {
  EngineOptions engine;
  server::ServerOptions server;
  std::string served_model_name;
  std::string chat_template;  // overrides the model's
  double drain_seconds = 30.0;
};

int run_serve(ServeArgs& args) {
  auto log = log::get("cli");
  const EngineConfig config = args.engine.engine_config();
  if (!args.chat_template.empty() && !detect_chat_format(args.chat_template))
    throw ConfigError(fmt::format("--chat-template {}: expected chatml, llama2, mistral, llama3, zephyr, gemma or phi3",
                                  args.chat_template));
  // Before any thread starts, so that only the waiting thread below sees the signals.
  server::block_shutdown_signals();
  const auto model = load_model_for(args.engine);
  TransformerRunner runner(*model, args.engine.num_threads());
  args.server.model_name = args.served_model_name.empty() ? model->config.name : args.served_model_name;
  args.server.chat_template = args.chat_template.empty() ? model->chat_template : args.chat_template;
  server::HttpServer http(runner, config, args.server);
  log->info("serving {} on http://{}:{} (POST /v1/completions, /v1/chat/completions, GET /metrics); Ctrl-C drains and exits",
            args.server.model_name, args.server.host, http.port());
  const std::string signal = server::wait_for_shutdown_signal();
  log->info("{}: draining for up to {} s", signal, args.drain_seconds);
  http.shutdown(args.drain_seconds);
  log->info("stopped");
  return 0;
}

}  // namespace

Command serve_command() {
  auto args = std::make_shared<ServeArgs>();
  args->engine.policy = kDefaultServingPolicy;
  return Command{
      "serve",
      [args](CLI::App& app) {
        auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (completions, streaming, metrics)");
        add_engine_options(*cmd, args->engine);
        cmd->add_option("--host", args->server.host, "address to listen on")->capture_default_str();
        cmd->add_option("--port", args->server.port, "TCP port (0 = any free port)")->capture_default_str();
        cmd->add_option("--served-model-name", args->served_model_name,
                        "the name clients use in \"model\" (default: the model's own)");
        cmd->add_option("--chat-template", args->chat_template,
                        "chat format for /v1/chat/completions instead of the model's tokenizer.chat_template: "
                        "chatml, llama2, mistral, llama3, zephyr, gemma or phi3");
        cmd->add_option("--max-queued-requests", args->server.max_queued_requests,
                        "requests waiting beyond the running ones before new ones get 503")
            ->capture_default_str();
        cmd->add_option("--drain-seconds", args->drain_seconds,
                        "on SIGINT/SIGTERM, how long running requests may finish before they are cancelled")
            ->check(CLI::NonNegativeNumber)
            ->capture_default_str();
        cmd->add_option("--read-timeout", args->server.read_timeout_seconds,
                        "seconds a connection may take to send its next request before it is closed")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
        cmd->add_option("--write-timeout", args->server.write_timeout_seconds,
                        "seconds a client may take to receive one write before its connection is closed")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
        cmd->add_option("--status-interval", args->server.status_interval_seconds,
                        "seconds between status lines on stderr while busy (0 = none)")
            ->capture_default_str();
      },
      [args] { return run_serve(*args); }};
}

}  // namespace prunekv::cli
