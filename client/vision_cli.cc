// `vision`: a command-line client for vision-gateway.
//   vision caption IMAGE... [--prompt P] [--model M]
//   vision count-tokens IMAGE... [--prompt P] [--model M]
// IMAGE is a local file or "files/<id>". --addr picks the server (default localhost:50051).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "client/vision_client.h"

ABSL_FLAG(std::string, addr, "localhost:50051", "vision-gateway address (host:port).");
ABSL_FLAG(std::string, prompt, "", "Prompt (default: the task's own).");
ABSL_FLAG(std::string, model, "", "Gemini model id (default: the server's).");
ABSL_FLAG(int, timeout_s, 120, "Deadline of the call, in seconds.");

namespace {

namespace v1 = ::vision::v1;
using vision_gateway::client::ImageFromPath;
using vision_gateway::client::VisionClient;

int Fail(const absl::Status& status) {
  std::cerr << "vision: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
            << "\n";
  return 1;
}

template <typename Request>
absl::Status FillCommon(Request& request, const std::vector<char*>& args) {
  for (size_t i = 2; i < args.size(); ++i) {
    auto image = ImageFromPath(args[i]);
    if (!image.ok()) return image.status();
    *request.add_images() = *std::move(image);
  }
  request.set_prompt(absl::GetFlag(FLAGS_prompt));
  request.mutable_options()->set_model(absl::GetFlag(FLAGS_model));
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "vision caption IMAGE... | vision count-tokens IMAGE...  [--addr host:port] [--prompt P]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 3) {
    std::cerr << "usage: vision caption|count-tokens IMAGE... [--addr host:port] [--prompt P] "
                 "[--model M]\n";
    return 2;
  }
  VisionClient client({.target = absl::GetFlag(FLAGS_addr),
                       .timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_s))});
  const std::string command = args[1];
  if (command == "caption") {
    v1::CaptionRequest request;
    if (absl::Status s = FillCommon(request, args); !s.ok()) return Fail(s);
    auto last = client.Caption(request, [](const std::string& text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    });
    std::cout << "\n";
    if (!last.ok()) return Fail(last.status());
    std::cerr << "[" << last->finish_reason() << "; model " << last->model_version() << "; tokens "
              << last->usage().prompt_tokens() << " in, " << last->usage().output_tokens()
              << " out, " << last->usage().total_tokens() << " total]\n";
    return 0;
  }
  if (command == "count-tokens") {
    v1::CountTokensRequest request;
    if (absl::Status s = FillCommon(request, args); !s.ok()) return Fail(s);
    auto response = client.CountTokens(request);
    if (!response.ok()) return Fail(response.status());
    std::cout << "total_tokens: " << response->total_tokens()
              << "\nestimated_image_tokens: " << response->estimated_image_tokens() << "\n";
    return 0;
  }
  std::cerr << "vision: unknown command '" << command << "' (caption, count-tokens)\n";
  return 2;
}
