// `vision`: a command-line client for vision-gateway. `vision --help` lists the commands and the
// global flags, `vision COMMAND --help` a command's flags and an example.
//
// Exit codes: 0 success; 1 a local failure (a file that cannot be read or written, a drawing that
// fails, an unhealthy server); 2 a usage error; 64 + the gRPC status code for an RPC error
// (grpcurl's convention: NOT_FOUND → 69, RESOURCE_EXHAUSTED → 72, UNAVAILABLE → 78), with the
// code's name, the message, the ErrorInfo reason, the RetryInfo delay, field violations and the
// request id on stderr.
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/overlay.h"
#include "client/vision_client.h"

// Connection (global) flags.
ABSL_FLAG(std::string, target, "",
          "vision-gateway address, host:port (alias --addr; empty: the VISION_TARGET environment "
          "variable, else localhost:50051).");
ABSL_FLAG(std::string, ca_file, "",
          "TLS, trusting this CA (PEM) for the server's certificate.");
ABSL_FLAG(bool, tls, false, "TLS with the system's root certificates (implied by --ca_file).");
ABSL_FLAG(std::string, cert_file, "", "mTLS: the client certificate chain (PEM; needs --key_file).");
ABSL_FLAG(std::string, key_file, "", "mTLS: the client certificate's private key (PEM).");
ABSL_FLAG(std::string, authority, "",
          "The :authority to send, and with TLS the name the server's certificate must carry.");
ABSL_FLAG(std::string, token_file, "",
          "A file holding the bearer token sent as 'authorization: Bearer ...' (default: the "
          "VISION_TOKEN environment variable).");
ABSL_FLAG(std::string, output, "text",
          "text, or json: one JSON object per message as it arrives (JSON Lines, proto3 JSON "
          "mapping).");
ABSL_FLAG(int, timeout_s, -1,
          "Deadline of the call in seconds; 0: none; -1: the command's default (see its --help).");
// Command flags.
ABSL_FLAG(std::string, prompt, "", "Prompt (default: the task's own).");
ABSL_FLAG(std::string, model, "", "Gemini model id (default: the server's).");
ABSL_FLAG(std::string, cache, "use",
          "The server's result cache for this call: use (the default: a stored answer serves it), "
          "bypass (neither read nor written) or refresh (not read, written).");
ABSL_FLAG(int, max_objects, 0, "Most objects (0: the server's default, 25).");
ABSL_FLAG(int, max_dimension, 0,
          "Downscale the image to this longer side before it goes to Gemini (0: no); results "
          "stay in the original image's pixels.");
ABSL_FLAG(double, threshold, 0, "Mask probability threshold in (0, 1] (0: 0.5).");
ABSL_FLAG(std::string, masks_dir, "", "Write each box-sized mask PNG to DIR/mask-<index>.png.");
ABSL_FLAG(std::string, draw, "",
          "Write a PNG of the upright image with what was found drawn on it (needs a local image "
          "or -).");
ABSL_FLAG(std::string, display_name, "", "A name for people.");
ABSL_FLAG(bool, sha256, true,
          "Hash the file first and send the hash (checked by the server; an identical file "
          "already uploaded is returned without uploading again).");
ABSL_FLAG(int, page_size, 0, "Files per page (0: the server's default, 10).");
ABSL_FLAG(std::string, page_token, "", "The next_page_token of the previous page.");
// ---- Batch jobs (#20) ----
ABSL_FLAG(std::string, task, "detect", "batch create: caption, detect or segment.");
ABSL_FLAG(bool, wait, false,
          "batch create: poll the job every 30 s until it ends, then print it (a long wait: "
          "Gemini's target is 24 h).");
ABSL_FLAG(std::string, start_after_key, "",
          "batch results: resume after the item with this key.");
ABSL_FLAG(std::string, service, "",
          "The service to check (empty: the server as a whole; e.g. vision.v1.VisionService).");

namespace {

namespace v1 = ::vision::v1;
using vision_gateway::client::ClientOptions;
using vision_gateway::client::ImageFromPath;
using vision_gateway::client::VisionClient;

constexpr int kExitLocal = 1;
constexpr int kExitUsage = 2;
constexpr int kExitRpcBase = 64;
constexpr char kVersion[] = "1.1.0";

const std::vector<std::string> kGlobalFlags = {"target",    "ca_file",  "tls",
                                               "cert_file", "key_file", "authority",
                                               "token_file", "output",  "timeout_s"};

struct Command {
  std::string name;
  std::string args;
  std::string summary;
  std::vector<std::string> flags;
  // Default deadline in seconds; 0: none.
  int timeout_s;
  std::string example;
};

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"caption", "IMAGE...", "Caption images; the text streams as it arrives.",
       {"prompt", "model", "cache"}, 120,
       "vision caption photo.jpg --prompt 'What is on the table?'"},
      {"count-tokens", "IMAGE...", "Tokens a Caption of these images would cost.",
       {"prompt", "model"}, 30, "vision count-tokens photo.jpg"},
      {"detect", "IMAGE", "Objects with pixel boxes: ImageInfo, one line per object, a summary.",
       {"prompt", "model", "cache", "max_objects", "max_dimension", "draw"}, 120,
       "vision detect photo.jpg --prompt 'the cups' --draw boxes.png"},
      {"segment", "IMAGE", "Objects with pixel masks (COCO RLE + box-sized PNG).",
       {"prompt", "model", "cache", "max_objects", "max_dimension", "threshold", "masks_dir",
        "draw"},
       120,
       "vision segment photo.jpg --draw masks.png --masks_dir masks/"},
      {"upload", "FILE",
       "Upload a file to Gemini; its name (files/...) serves as IMAGE for 48 h.",
       {"display_name", "sha256"}, 0, "vision upload big-photo.jpg --display_name 'site photo'"},
      {"files", "list | get NAME | delete NAME", "Your uploaded files.",
       {"page_size", "page_token"}, 30, "vision files get files/g1-00hs00dc-k3x9q2m1z8aa"},
      {"batch",
       "create IMAGE... | get NAME | list | cancel NAME | delete NAME | results NAME",
       "Batch jobs at half the price (results within 24 h): typed results per image, keyed by "
       "its path.",
       {"task", "prompt", "model", "max_objects", "threshold", "display_name", "wait",
        "page_size", "page_token", "start_after_key"},
       0, "vision batch create --task detect a.jpg b.jpg --wait"},
      {"models", "", "The models you may use, with token limits and thinking controls.", {}, 30,
       "vision models"},
      {"health", "", "grpc.health.v1 Check: prints SERVING (exit 0) or the status (exit 1).",
       {"service"}, 10, "vision health --service vision.v1.VisionService"},
  };
  return commands;
}

const Command* FindCommand(const std::string& name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// ---- usage --------------------------------------------------------------------------------

void PrintFlags(std::ostream& out, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string default_value = flag->DefaultValue();
    if (flag->IsOfType<std::string>()) default_value = "\"" + default_value + "\"";
    out << "  --" << name << (name == "target" ? ", --addr" : "") << " (default "
        << default_value << ")\n      " << flag->Help() << "\n";
  }
}

void PrintMainHelp(std::ostream& out) {
  out << "vision: a command-line client for vision-gateway.\n\n"
         "usage: vision COMMAND [ARGS] [FLAGS]     (flags may come before or after the command)\n\n"
         "commands:\n";
  for (const Command& c : Commands()) {
    out << absl::StrFormat("  %-13s %s\n", c.name, c.summary);
  }
  out << "\nIMAGE: a local file (./files/x.jpg is always local), files/<id> (a file uploaded to\n"
         "Gemini, when no such local file exists), or - for stdin.\n\n"
         "global flags:\n";
  PrintFlags(out, kGlobalFlags);
  out << "  --help\n      this text; vision COMMAND --help: that command's flags and an example\n"
         "  --version\n      the CLI's version\n\n"
         "exit codes: 0 success, 1 local failure, 2 usage error, 64 + the gRPC status code for an\n"
         "RPC error (e.g. 69 NOT_FOUND, 72 RESOURCE_EXHAUSTED), details on stderr.\n";
}

void PrintCommandHelp(std::ostream& out, const Command& c) {
  out << "usage: vision " << c.name << (c.args.empty() ? "" : " ") << c.args << " [FLAGS]\n\n"
      << c.summary << "\n\n";
  if (!c.flags.empty()) {
    out << "flags:\n";
    PrintFlags(out, c.flags);
  }
  out << "\ndeadline (--timeout_s): "
      << (c.timeout_s == 0 ? std::string("none by default")
                           : absl::StrCat(c.timeout_s, " s by default"))
      << "\n\nexample:\n  " << c.example << "\n\nglobal flags (--target, --ca_file, --tls, "
      << "--cert_file, --key_file, --authority, --token_file, --output, --timeout_s): vision --help\n";
}

int UsageError(const std::string& message) {
  std::cerr << "vision: " << message << "\n(vision --help for usage)\n";
  return kExitUsage;
}

// ---- command line -------------------------------------------------------------------------

struct CommandLine {
  bool help = false;
  bool version = false;
  std::vector<std::string> positional;
  // Flag name (aliases resolved) → value, in order.
  std::vector<std::pair<std::string, std::string>> flags;
};

// Splits argv into flags and positional arguments; flags may come anywhere ("--" ends them;
// "-" is a positional, stdin). Flag values are parsed by absl's registry in ApplyFlags.
std::optional<std::string> Split(int argc, char** argv, CommandLine& line) {
  bool flags_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (flags_done || arg == "-" || !absl::StartsWith(arg, "-")) {
      line.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    std::string name = std::string(absl::StripPrefix(absl::StripPrefix(arg, "-"), "-"));
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (name == "help" || name == "h") {
      line.help = true;
      continue;
    }
    if (name == "version") {
      line.version = true;
      continue;
    }
    if (name == "addr") name = "target";
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && absl::StartsWith(name, "no") && !value) {
      absl::CommandLineFlag* negated = absl::FindCommandLineFlag(name.substr(2));
      if (negated != nullptr && negated->IsOfType<bool>()) {
        line.flags.emplace_back(name.substr(2), "false");
        continue;
      }
    }
    if (flag == nullptr) return absl::StrCat("unknown flag ", arg);
    if (!value) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::StrCat("flag --", name, " needs a value");
      }
    }
    line.flags.emplace_back(name, *value);
  }
  return std::nullopt;
}

// Checks that each flag belongs to the command (or is global) and sets it.
std::optional<std::string> ApplyFlags(const CommandLine& line, const Command* command) {
  for (const auto& [name, value] : line.flags) {
    const bool global = absl::c_linear_search(kGlobalFlags, name);
    const bool own = command != nullptr && absl::c_linear_search(command->flags, name);
    if (!global && !own) {
      return command == nullptr
                 ? absl::StrCat("--", name, " is not a global flag")
                 : absl::StrCat("vision ", command->name, " has no flag --", name);
    }
    std::string error;
    if (!absl::FindCommandLineFlag(name)->ParseFrom(value, &error)) {
      return absl::StrCat("--", name, "=", value, ": ", error);
    }
  }
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output != "text" && output != "json") return "--output must be text or json";
  if (const std::string cache = absl::GetFlag(FLAGS_cache);
      cache != "use" && cache != "bypass" && cache != "refresh") {
    return "--cache must be use, bypass or refresh";
  }
  if (absl::GetFlag(FLAGS_cert_file).empty() != absl::GetFlag(FLAGS_key_file).empty()) {
    return "--cert_file and --key_file go together";
  }
  if (absl::GetFlag(FLAGS_timeout_s) < -1) return "--timeout_s must be >= 0";
  return std::nullopt;
}

// ---- output -------------------------------------------------------------------------------

bool Json() { return absl::GetFlag(FLAGS_output) == "json"; }

// --cache (checked before a command runs) as the request's cache control.
v1::CacheControl CacheControlFlag() {
  const std::string cache = absl::GetFlag(FLAGS_cache);
  if (cache == "bypass") return v1::CACHE_CONTROL_BYPASS;
  if (cache == "refresh") return v1::CACHE_CONTROL_REFRESH;
  return v1::CACHE_CONTROL_USE;
}

// One line of proto3 JSON, flushed at once (a live stream can be piped to jq).
void PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  std::cout << json << "\n" << std::flush;
}

std::string FormatDuration(const google::protobuf::Duration& d) {
  return absl::FormatDuration(absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos()));
}

// The error on stderr: code name and number, message, and what the server attached. Returns the
// exit code.
int Fail(const absl::Status& status) {
  const auto error = vision_gateway::client::RpcErrorOf(status);
  const int code = static_cast<int>(status.code());
  std::cerr << "vision: " << absl::StatusCodeToString(status.code());
  if (error.from_rpc) std::cerr << " (gRPC code " << code << ")";
  std::cerr << ": " << status.message() << "\n";
  if (error.error_info) {
    std::cerr << "  reason: " << error.error_info->reason();
    if (!error.error_info->domain().empty()) std::cerr << " (" << error.error_info->domain() << ")";
    std::map<std::string, std::string> metadata(error.error_info->metadata().begin(),
                                                error.error_info->metadata().end());
    for (const auto& [key, value] : metadata) std::cerr << " " << key << "=" << value;
    std::cerr << "\n";
  }
  if (error.retry_info) {
    std::cerr << "  retry after: " << FormatDuration(error.retry_info->retry_delay()) << "\n";
  }
  if (error.bad_request) {
    for (const auto& v : error.bad_request->field_violations()) {
      std::cerr << "  field violation: " << v.field() << ": " << v.description() << "\n";
    }
  }
  if (error.quota_failure) {
    for (const auto& v : error.quota_failure->violations()) {
      std::cerr << "  quota violation: " << v.subject() << ": " << v.description() << "\n";
    }
  }
  if (!error.request_id.empty()) std::cerr << "  request id: " << error.request_id << "\n";
  if (!error.from_rpc) return kExitLocal;
  return kExitRpcBase + code;
}

void PrintBox(const char* what, int index, const std::string& label, const v1::BoundingBox& b) {
  std::cout << what << " " << index << " \"" << label << "\" box x " << b.x_min() << ".."
            << b.x_max() << " y " << b.y_min() << ".." << b.y_max();
}

// One line per stream message, as it arrives.
template <typename Response>
void PrintEvent(const Response& r) {
  if (Json()) {
    PrintJson(r);
    return;
  }
  if (r.has_image_info()) {
    const v1::ImageInfo& info = r.image_info();
    std::cout << "image " << info.width() << "x" << info.height() << " pixels " << info.mime_type()
              << (info.size_unknown() ? " (size unknown: normalized boxes only)" : "")
              << "; boxes in pixels, x_min..x_max y_min..y_max\n";
  } else if (r.has_summary()) {
    const v1::Summary& s = r.summary();
    std::cout << "summary: " << s.count() << " objects, " << s.dropped() << " dropped, "
              << s.finish_reason() << ", tokens " << s.usage().total_tokens() << ", model "
              << s.model_version() << (s.model_rerouted() ? " (rerouted by Google)" : "") << "\n";
    if (s.without_mask() > 0) {
      std::cout << "  " << s.without_mask() << " objects without a mask: "
                << s.without_mask_reason() << "\n";
    }
  } else if constexpr (std::is_same_v<Response, v1::DetectResponse>) {
    PrintBox("object", r.detection().index(), r.detection().label(), r.detection().box());
    std::cout << "\n";
  } else {
    PrintBox("mask", r.mask().index(), r.mask().label(), r.mask().box());
    std::cout << " area " << r.mask().area() << " pixels, rle " << r.mask().rle().counts().size()
              << " chars\n";
  }
  std::cout.flush();
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

void PrintFile(const v1::File& f) {
  if (Json()) {
    PrintJson(f);
    return;
  }
  std::cout << f.name() << "\n  state " << v1::File::State_Name(f.state()) << ", "
            << f.size_bytes() << " bytes, " << f.mime_type();
  if (f.width() > 0) std::cout << ", " << f.width() << "x" << f.height() << " pixels";
  std::cout << "\n  sha256 " << f.sha256() << "\n  created " << Time(f.create_time())
            << ", expires " << Time(f.expire_time()) << "\n  uri " << f.uri() << "\n";
  if (!f.display_name().empty()) std::cout << "  display_name " << f.display_name() << "\n";
  if (!f.error_message().empty()) std::cout << "  error " << f.error_message() << "\n";
}

// One line per model: id, token limits, thinking, defaults.
void PrintModels(const v1::ListModelsResponse& models) {
  if (Json()) {
    PrintJson(models);
    return;
  }
  for (const v1::ModelInfo& m : models.models()) {
    std::cout << m.id() << "  in " << m.input_token_limit() << " / out "
              << m.output_token_limit() << " tokens, ";
    if (m.thinking_control() == v1::THINKING_CONTROL_LEVEL) {
      std::cout << "thinks (levels";
      for (int level : m.thinking_levels()) {
        std::cout << " "
                  << v1::ThinkingLevel_Name(static_cast<v1::ThinkingLevel>(level)).substr(15);
      }
      std::cout << ")";
    } else if (m.thinking_control() == v1::THINKING_CONTROL_BUDGET) {
      std::cout << "thinks (budget " << m.min_thinking_budget() << ".."
                << m.max_thinking_budget() << ")";
    } else {
      std::cout << (m.thinking() ? "thinks" : "does not think");
    }
    if (m.default_model()) std::cout << ", default";
    if (m.segment_default()) std::cout << ", segment default";
    std::cout << "\n";
  }
  for (const std::string& id : models.unlisted_allowed_models()) {
    std::cout << id << "  allowed but NOT listed by Gemini (calls fail with NOT_FOUND)\n";
  }
  std::cout << "(Gemini's list read " << Time(models.list_time()) << ")\n";
}

// "\rupload  12.0 / 40.0 MiB  30%  8.1 MiB/s  ETA 4s" on a terminal.
std::function<void(int64_t, int64_t)> ProgressBar() {
  const auto start = std::chrono::steady_clock::now();
  return [start](int64_t sent, int64_t total) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = seconds > 0 ? sent / seconds : 0;
    std::string eta = "-";
    if (rate > 0) {
      eta = absl::FormatDuration(absl::Seconds(static_cast<int64_t>((total - sent) / rate)));
    }
    std::fprintf(stderr, "\rupload %7.1f / %.1f MiB %3d%%  %.1f MiB/s  ETA %s   ", sent / 1048576.0,
                 total / 1048576.0, total > 0 ? static_cast<int>(sent * 100 / total) : 100,
                 rate / 1048576.0, eta.c_str());
    std::fflush(stderr);
  };
}

template <typename Request>
absl::Status FillImages(Request& request, const std::vector<std::string>& images) {
  for (const std::string& path : images) {
    auto image = ImageFromPath(path);
    if (!image.ok()) return image.status();
    *request.add_images() = *std::move(image);
  }
  request.set_prompt(absl::GetFlag(FLAGS_prompt));
  request.mutable_options()->set_model(absl::GetFlag(FLAGS_model));
  request.mutable_options()->set_cache(CacheControlFlag());
  return absl::OkStatus();
}

absl::StatusOr<ClientOptions> MakeClientOptions(const Command& command) {
  ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  if (options.target.empty()) {
    const char* env = std::getenv("VISION_TARGET");
    options.target = env != nullptr && *env != '\0' ? env : "localhost:50051";
  }
  int timeout_s = absl::GetFlag(FLAGS_timeout_s);
  if (timeout_s < 0) timeout_s = command.timeout_s;
  options.timeout = timeout_s == 0 ? absl::InfiniteDuration() : absl::Seconds(timeout_s);
  options.authority = absl::GetFlag(FLAGS_authority);
  const std::string ca_file = absl::GetFlag(FLAGS_ca_file);
  const std::string cert_file = absl::GetFlag(FLAGS_cert_file);
  if (absl::GetFlag(FLAGS_tls) || !ca_file.empty() || !cert_file.empty()) {
    vision_gateway::client::TlsOptions tls;
    if (!ca_file.empty()) {
      auto pem = vision_gateway::client::ReadFileToString(ca_file);
      if (!pem.ok()) return pem.status();
      tls.root_certs_pem = *std::move(pem);
    }
    if (!cert_file.empty()) {
      auto cert = vision_gateway::client::ReadFileToString(cert_file);
      if (!cert.ok()) return cert.status();
      auto key = vision_gateway::client::ReadFileToString(absl::GetFlag(FLAGS_key_file));
      if (!key.ok()) return key.status();
      tls.cert_chain_pem = *std::move(cert);
      tls.private_key_pem = *std::move(key);
    }
    options.tls = std::move(tls);
  }
  if (const std::string token_file = absl::GetFlag(FLAGS_token_file); !token_file.empty()) {
    auto token = vision_gateway::client::ReadFileToString(token_file);
    if (!token.ok()) return token.status();
    options.token = std::string(absl::StripAsciiWhitespace(*token));
  } else if (const char* env = std::getenv("VISION_TOKEN"); env != nullptr) {
    options.token = std::string(absl::StripAsciiWhitespace(env));
  }
  return options;
}

// ---- commands -----------------------------------------------------------------------------

int RunCaption(VisionClient& client, const std::vector<std::string>& args) {
  if (args.empty()) return UsageError("caption needs at least one IMAGE");
  v1::CaptionRequest request;
  if (absl::Status s = FillImages(request, args); !s.ok()) return Fail(s);
  auto last = client.Caption(
      request,
      [](const std::string& text) {
        if (Json()) return;
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      },
      [](const v1::CaptionResponse& message) {
        if (Json()) PrintJson(message);
      });
  if (!Json()) std::cout << "\n" << std::flush;
  if (!last.ok()) return Fail(last.status());
  if (!Json()) {
    std::cerr << "[" << last->finish_reason() << "; model " << last->model_version()
              << "; tokens " << last->usage().prompt_tokens() << " in, "
              << last->usage().output_tokens() << " out, " << last->usage().total_tokens()
              << " total]\n";
  }
  return 0;
}

int RunCountTokens(VisionClient& client, const std::vector<std::string>& args) {
  if (args.empty()) return UsageError("count-tokens needs at least one IMAGE");
  v1::CountTokensRequest request;
  if (absl::Status s = FillImages(request, args); !s.ok()) return Fail(s);
  auto response = client.CountTokens(request);
  if (!response.ok()) return Fail(response.status());
  if (Json()) {
    PrintJson(*response);
  } else {
    std::cout << "total_tokens: " << response->total_tokens()
              << "\nestimated_image_tokens: " << response->estimated_image_tokens() << "\n";
  }
  return 0;
}

// Detect or segment, printing each message as it arrives; with --draw, the PNG once the stream
// has ended well.
int RunSpatial(VisionClient& client, const std::string& command,
               const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError(command + " takes exactly one IMAGE");
  const std::string draw = absl::GetFlag(FLAGS_draw);
  auto image = ImageFromPath(args[0]);
  if (!image.ok()) return Fail(image.status());
  if (!draw.empty() && !image->has_content()) {
    return UsageError("--draw needs a local image (or -), not a Gemini file: " + args[0]);
  }
  vision_gateway::client::Overlay overlay;
  v1::ImageInfo info;
  absl::Status status;
  absl::Status write_error;  // --masks_dir
  if (command == "detect") {
    v1::DetectRequest request;
    *request.mutable_image() = *image;
    request.set_prompt(absl::GetFlag(FLAGS_prompt));
    request.set_max_objects(absl::GetFlag(FLAGS_max_objects));
    request.set_max_dimension(absl::GetFlag(FLAGS_max_dimension));
    request.mutable_options()->set_model(absl::GetFlag(FLAGS_model));
    request.mutable_options()->set_cache(CacheControlFlag());
    status = client.Detect(request, [&](const v1::DetectResponse& r) {
      PrintEvent(r);
      if (r.has_image_info()) info = r.image_info();
      if (r.has_detection()) overlay.detections.push_back(r.detection());
    });
  } else {
    v1::SegmentRequest request;
    *request.mutable_image() = *image;
    request.set_prompt(absl::GetFlag(FLAGS_prompt));
    request.set_max_objects(absl::GetFlag(FLAGS_max_objects));
    request.set_max_dimension(absl::GetFlag(FLAGS_max_dimension));
    request.set_threshold(static_cast<float>(absl::GetFlag(FLAGS_threshold)));
    request.mutable_options()->set_model(absl::GetFlag(FLAGS_model));
    request.mutable_options()->set_cache(CacheControlFlag());
    const std::string dir = absl::GetFlag(FLAGS_masks_dir);
    status = client.Segment(request, [&](const v1::SegmentResponse& r) {
      PrintEvent(r);
      if (r.has_image_info()) info = r.image_info();
      if (!r.has_mask()) return;
      if (!draw.empty()) overlay.masks.push_back(r.mask());
      if (!dir.empty()) {
        const std::string path = dir + "/mask-" + std::to_string(r.mask().index()) + ".png";
        std::ofstream out(path, std::ios::binary);
        out << r.mask().png();
        if (!out.flush() && write_error.ok()) {
          write_error = absl::UnavailableError("cannot write " + path);
        }
      }
    });
  }
  if (!status.ok()) return Fail(status);
  if (!write_error.ok()) return Fail(write_error);
  if (draw.empty()) return 0;
  if (info.size_unknown()) {
    std::cerr << "vision: --draw: the server did not know the image's size; nothing drawn\n";
    return kExitLocal;
  }
  auto png = vision_gateway::client::DrawOverlay(image->content(), info.width(), info.height(),
                                                 overlay);
  if (!png.ok()) return Fail(png.status());
  std::ofstream out(draw, std::ios::binary);
  out << *png;
  if (!out.flush()) return Fail(absl::UnavailableError("cannot write " + draw));
  if (!Json()) std::cerr << "drew " << draw << "\n";
  return 0;
}

int RunUpload(VisionClient& client, const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("upload takes exactly one FILE");
  if (args[0] == "-") {
    return UsageError("upload needs a file (Upload declares the size first, so not stdin)");
  }
  vision_gateway::client::UploadOptions options;
  options.display_name = absl::GetFlag(FLAGS_display_name);
  options.send_sha256 = absl::GetFlag(FLAGS_sha256);
  if (isatty(STDERR_FILENO)) options.on_progress = ProgressBar();
  auto file = client.UploadFile(args[0], options);
  if (options.on_progress) std::fprintf(stderr, "\n");
  if (!file.ok()) return Fail(file.status());
  PrintFile(*file);
  return 0;
}

int RunFiles(VisionClient& client, const std::vector<std::string>& args) {
  const std::string what = args.empty() ? "" : args[0];
  if (what == "list" && args.size() == 1) {
    auto page = client.ListFiles(absl::GetFlag(FLAGS_page_size), absl::GetFlag(FLAGS_page_token));
    if (!page.ok()) return Fail(page.status());
    if (Json()) {
      PrintJson(*page);
      return 0;
    }
    for (const v1::File& f : page->files()) PrintFile(f);
    if (!page->next_page_token().empty()) {
      std::cout << "next_page_token: " << page->next_page_token() << "\n";
    }
    return 0;
  }
  if (what == "get" && args.size() == 2) {
    auto file = client.GetFile(args[1]);
    if (!file.ok()) return Fail(file.status());
    PrintFile(*file);
    return 0;
  }
  if (what == "delete" && args.size() == 2) {
    if (absl::Status s = client.DeleteFile(args[1]); !s.ok()) return Fail(s);
    if (Json()) {
      PrintJson(google::protobuf::Empty());
    } else {
      std::cout << "deleted " << args[1] << "\n";
    }
    return 0;
  }
  return UsageError("usage: vision files list | files get NAME | files delete NAME");
}

// ---- Batch jobs (#20) ----

bool BatchEnded(const v1::BatchJob& job) {
  return job.state() == v1::BatchJob::STATE_SUCCEEDED ||
         job.state() == v1::BatchJob::STATE_FAILED ||
         job.state() == v1::BatchJob::STATE_CANCELLED ||
         job.state() == v1::BatchJob::STATE_EXPIRED;
}

void PrintBatch(const v1::BatchJob& job) {
  if (Json()) return PrintJson(job);
  std::cout << job.name() << "  " << v1::BatchJob::State_Name(job.state()) << "  "
            << v1::BatchTask_Name(job.task()) << "  " << job.model() << "  items "
            << job.item_count() << " (ok " << job.succeeded_count() << ", failed "
            << job.failed_count() << ", pending " << job.pending_count() << ")";
  if (!job.display_name().empty()) std::cout << "  \"" << job.display_name() << "\"";
  if (!job.error_message().empty()) std::cout << "  error: " << job.error_message();
  std::cout << "\n";
}

int RunBatch(VisionClient& client, const std::vector<std::string>& args) {
  const std::string what = args.empty() ? "" : args[0];
  if (what == "create" && args.size() >= 2) {
    v1::CreateBatchHeader header;
    const std::string task = absl::GetFlag(FLAGS_task);
    if (task == "caption") {
      header.set_task(v1::BATCH_TASK_CAPTION);
    } else if (task == "detect") {
      header.set_task(v1::BATCH_TASK_DETECT);
    } else if (task == "segment") {
      header.set_task(v1::BATCH_TASK_SEGMENT);
    } else {
      return UsageError("--task must be caption, detect or segment");
    }
    header.set_prompt(absl::GetFlag(FLAGS_prompt));
    header.mutable_options()->set_model(absl::GetFlag(FLAGS_model));
    header.set_max_objects(absl::GetFlag(FLAGS_max_objects));
    header.set_threshold(static_cast<float>(absl::GetFlag(FLAGS_threshold)));
    header.set_display_name(absl::GetFlag(FLAGS_display_name));
    auto job = client.CreateBatch(header, std::vector<std::string>(args.begin() + 1, args.end()));
    if (!job.ok()) return Fail(job.status());
    PrintBatch(*job);
    if (!absl::GetFlag(FLAGS_wait)) return 0;
    while (!BatchEnded(*job)) {
      absl::SleepFor(absl::Seconds(30));
      job = client.GetBatch(job->name());
      if (!job.ok()) return Fail(job.status());
      PrintBatch(*job);
    }
    return job->state() == v1::BatchJob::STATE_SUCCEEDED ? 0 : kExitLocal;
  }
  if (what == "get" && args.size() == 2) {
    auto job = client.GetBatch(args[1]);
    if (!job.ok()) return Fail(job.status());
    PrintBatch(*job);
    return 0;
  }
  if (what == "list" && args.size() == 1) {
    auto page =
        client.ListBatches(absl::GetFlag(FLAGS_page_size), absl::GetFlag(FLAGS_page_token));
    if (!page.ok()) return Fail(page.status());
    if (Json()) {
      PrintJson(*page);
      return 0;
    }
    for (const v1::BatchJob& job : page->batches()) PrintBatch(job);
    if (!page->next_page_token().empty()) {
      std::cout << "next_page_token: " << page->next_page_token() << "\n";
    }
    return 0;
  }
  if ((what == "cancel" || what == "delete") && args.size() == 2) {
    absl::Status s = what == "cancel" ? client.CancelBatch(args[1]) : client.DeleteBatch(args[1]);
    if (!s.ok()) return Fail(s);
    if (Json()) {
      PrintJson(google::protobuf::Empty());
    } else {
      std::cout << (what == "cancel" ? "cancelling " : "deleted ") << args[1] << "\n";
    }
    return 0;
  }
  if (what == "results" && args.size() == 2) {
    // Text: one line per message, "<key>  <message>". JSON: one object per item,
    // {"key": ..., "results": [the item's messages, in order]} (an item's messages arrive
    // together), printed once the item's last message arrived.
    std::string item_key;
    std::vector<std::string> item_results;
    bool have_item = false;
    auto flush = [&] {
      if (!have_item) return;
      v1::BatchResult key_only;
      key_only.set_key(item_key);
      std::string json;
      google::protobuf::util::JsonPrintOptions options;
      options.always_print_primitive_fields = true;
      (void)google::protobuf::util::MessageToJsonString(key_only, &json, options);
      json.pop_back();  // the closing brace: the results follow
      std::cout << json << ",\"results\":[" << absl::StrJoin(item_results, ",") << "]}\n"
                << std::flush;
      item_results.clear();
      have_item = false;
    };
    absl::Status status = client.ReadBatchResults(
        args[1], absl::GetFlag(FLAGS_start_after_key), [&](const v1::BatchResult& r) {
          if (Json()) {
            if (have_item && r.key() != item_key) flush();
            item_key = r.key();
            have_item = true;
            v1::BatchResult body = r;
            body.clear_key();
            std::string json;
            google::protobuf::util::JsonPrintOptions options;
            (void)google::protobuf::util::MessageToJsonString(body, &json, options);
            item_results.push_back(std::move(json));
            return;
          }
          std::string text;
          google::protobuf::TextFormat::Printer printer;
          printer.SetSingleLineMode(true);
          if (r.has_caption()) printer.PrintToString(r.caption(), &text);
          if (r.has_detect()) printer.PrintToString(r.detect(), &text);
          if (r.has_segment()) printer.PrintToString(r.segment(), &text);
          if (r.has_error()) {
            text = absl::StrCat("error ", r.error().code(), ": ", r.error().message());
          }
          std::cout << r.key() << "  " << text << "\n";
        });
    flush();  // the last item (also after an error: what arrived is printed)
    if (!status.ok()) return Fail(status);
    return 0;
  }
  return UsageError(
      "usage: vision batch create IMAGE... | get NAME | list | cancel NAME | delete NAME | "
      "results NAME");
}

int RunHealth(VisionClient& client) {
  auto response = client.Health(absl::GetFlag(FLAGS_service));
  if (!response.ok()) return Fail(response.status());
  if (Json()) {
    PrintJson(*response);
  } else {
    std::cout << ::grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response->status())
              << "\n";
  }
  return response->status() == ::grpc::health::v1::HealthCheckResponse::SERVING ? 0 : kExitLocal;
}

}  // namespace

int main(int argc, char** argv) {
  CommandLine line;
  if (auto error = Split(argc, argv, line)) return UsageError(*error);
  const Command* command = nullptr;
  if (!line.positional.empty()) {
    command = FindCommand(line.positional[0]);
    if (command == nullptr) {
      std::vector<std::string> names;
      for (const Command& c : Commands()) names.push_back(c.name);
      return UsageError(absl::StrCat("unknown command '", line.positional[0], "' (",
                                     absl::StrJoin(names, ", "), ")"));
    }
  }
  if (line.version) {
    std::cout << "vision " << kVersion << " (vision.v1; gRPC " << grpc::Version() << ")\n";
    return 0;
  }
  if (line.help) {
    if (command != nullptr) {
      PrintCommandHelp(std::cout, *command);
    } else {
      PrintMainHelp(std::cout);
    }
    return 0;
  }
  if (command == nullptr) {
    PrintMainHelp(std::cerr);
    return kExitUsage;
  }
  if (auto error = ApplyFlags(line, command)) return UsageError(*error);
  const std::vector<std::string> args(line.positional.begin() + 1, line.positional.end());
  if ((command->name == "models" || command->name == "health") && !args.empty()) {
    return UsageError(command->name + " takes no arguments");
  }
  if (!absl::GetFlag(FLAGS_draw).empty()) {
    if (absl::Status s = vision_gateway::client::InitOverlay(argv[0]); !s.ok()) return Fail(s);
  }
  auto options = MakeClientOptions(*command);
  if (!options.ok()) return Fail(options.status());
  auto client = VisionClient::Create(*std::move(options));
  if (!client.ok()) return UsageError(std::string(client.status().message()));
  const std::string& name = command->name;
  if (name == "caption") return RunCaption(**client, args);
  if (name == "count-tokens") return RunCountTokens(**client, args);
  if (name == "detect" || name == "segment") return RunSpatial(**client, name, args);
  if (name == "upload") return RunUpload(**client, args);
  if (name == "files") return RunFiles(**client, args);
  if (name == "health") return RunHealth(**client);
  if (name == "batch") return RunBatch(**client, args);
  auto models = client.value()->ListModels();
  if (!models.ok()) return Fail(models.status());
  PrintModels(*models);
  return 0;
}
