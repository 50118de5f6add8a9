// `vision`: a command-line client for vision-gateway.
//   vision caption IMAGE... [--prompt P] [--model M]
//   vision count-tokens IMAGE... [--prompt P] [--model M]
//   vision detect IMAGE [--prompt P] [--max_objects N] [--max_dimension D]
//   vision segment IMAGE [--prompt P] [--max_objects N] [--threshold T] [--masks_dir DIR]
//   vision upload FILE [--display_name N] [--sha256=false]   (progress on a terminal)
//   vision files list [--page_size N] [--page_token T] | files get NAME | files delete NAME
//   vision models    (the models this caller may use, with token limits and thinking)
// IMAGE is a local file or "files/<id>". --addr picks the server (default localhost:50051).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <type_traits>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "client/vision_client.h"

ABSL_FLAG(std::string, addr, "localhost:50051", "vision-gateway address (host:port).");
ABSL_FLAG(std::string, prompt, "", "Prompt (default: the task's own).");
ABSL_FLAG(std::string, model, "", "Gemini model id (default: the server's).");
ABSL_FLAG(int, timeout_s, 120, "Deadline of the call, in seconds.");
ABSL_FLAG(int, max_objects, 0, "detect/segment: most objects (0: the server's default, 25).");
ABSL_FLAG(int, max_dimension, 0, "detect/segment: downscale before sending (0: no).");
ABSL_FLAG(double, threshold, 0, "segment: mask probability threshold (0: 0.5).");
ABSL_FLAG(std::string, masks_dir, "", "segment: write each box-sized mask PNG here.");
ABSL_FLAG(std::string, display_name, "", "upload: a name for people.");
ABSL_FLAG(bool, sha256, true,
          "upload: hash the file first and send the hash (checked by the server; an identical "
          "file already uploaded is returned without uploading again).");
ABSL_FLAG(int, page_size, 0, "files list: files per page (0: the server's default, 10).");
ABSL_FLAG(std::string, page_token, "", "files list: the next_page_token of the previous page.");

namespace {

namespace v1 = ::vision::v1;
using vision_gateway::client::ImageFromPath;
using vision_gateway::client::VisionClient;

void PrintBox(const char* what, int index, const std::string& label, const v1::BoundingBox& b) {
  std::cout << what << " " << index << " \"" << label << "\" box x " << b.x_min() << ".."
            << b.x_max() << " y " << b.y_min() << ".." << b.y_max();
}

// One line per stream message, as it arrives.
template <typename Response>
void PrintEvent(const Response& r) {
  if (r.has_image_info()) {
    std::cout << "image " << r.image_info().width() << "x" << r.image_info().height() << " "
              << r.image_info().mime_type() << "\n";
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
    std::cout << " area " << r.mask().area() << " rle " << r.mask().rle().counts().size()
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
  std::cout << f.name() << "\n  state " << v1::File::State_Name(f.state()) << ", "
            << f.size_bytes() << " bytes, " << f.mime_type();
  if (f.width() > 0) std::cout << ", " << f.width() << "x" << f.height();
  std::cout << "\n  sha256 " << f.sha256() << "\n  created " << Time(f.create_time())
            << ", expires " << Time(f.expire_time()) << "\n  uri " << f.uri() << "\n";
  if (!f.display_name().empty()) std::cout << "  display_name " << f.display_name() << "\n";
  if (!f.error_message().empty()) std::cout << "  error " << f.error_message() << "\n";
}

// One line per model: id, token limits, thinking, defaults.
void PrintModels(const v1::ListModelsResponse& models) {
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
      "vision caption|count-tokens IMAGE... | vision detect|segment IMAGE  [--addr host:port] "
      "[--prompt P]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() == 2 && std::string(args[1]) == "models") {
    VisionClient client({.target = absl::GetFlag(FLAGS_addr),
                         .timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_s))});
    auto models = client.ListModels();
    if (!models.ok()) return Fail(models.status());
    PrintModels(*models);
    return 0;
  }
  if (args.size() < 3) {
    std::cerr << "usage: vision caption|count-tokens IMAGE... | vision detect|segment IMAGE\n"
                 "       vision upload FILE | vision files list|get NAME|delete NAME\n"
                 "       vision models\n"
                 "       [--addr host:port] [--prompt P] [--model M] (--helpfull: all flags)\n"
                 "IMAGE: a local file or files/<id> (as upload printed it)\n";
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
  if (command == "detect" || command == "segment") {
    auto image = ImageFromPath(args[2]);
    if (!image.ok()) return Fail(image.status());
    absl::Status status;
    if (command == "detect") {
      v1::DetectRequest request;
      *request.mutable_image() = *std::move(image);
      request.set_prompt(absl::GetFlag(FLAGS_prompt));
      request.set_max_objects(absl::GetFlag(FLAGS_max_objects));
      request.set_max_dimension(absl::GetFlag(FLAGS_max_dimension));
      request.mutable_options()->set_model(absl::GetFlag(FLAGS_model));
      status = client.Detect(request, [](const v1::DetectResponse& r) { PrintEvent(r); });
    } else {
      v1::SegmentRequest request;
      *request.mutable_image() = *std::move(image);
      request.set_prompt(absl::GetFlag(FLAGS_prompt));
      request.set_max_objects(absl::GetFlag(FLAGS_max_objects));
      request.set_max_dimension(absl::GetFlag(FLAGS_max_dimension));
      request.set_threshold(static_cast<float>(absl::GetFlag(FLAGS_threshold)));
      request.mutable_options()->set_model(absl::GetFlag(FLAGS_model));
      const std::string dir = absl::GetFlag(FLAGS_masks_dir);
      status = client.Segment(request, [&dir](const v1::SegmentResponse& r) {
        PrintEvent(r);
        if (r.has_mask() && !dir.empty()) {
          std::ofstream(dir + "/mask-" + std::to_string(r.mask().index()) + ".png",
                        std::ios::binary)
              << r.mask().png();
        }
      });
    }
    return status.ok() ? 0 : Fail(status);
  }
  if (command == "upload") {
    vision_gateway::client::UploadOptions options;
    options.display_name = absl::GetFlag(FLAGS_display_name);
    options.send_sha256 = absl::GetFlag(FLAGS_sha256);
    if (isatty(STDERR_FILENO)) {
      options.on_progress = [](int64_t sent, int64_t total) {
        std::fprintf(stderr, "\rupload: %.1f / %.1f MiB (%d%%)", sent / 1048576.0,
                     total / 1048576.0, total > 0 ? static_cast<int>(sent * 100 / total) : 100);
        std::fflush(stderr);
      };
    }
    auto file = client.UploadFile(args[2], options);
    if (options.on_progress) std::fprintf(stderr, "\n");
    if (!file.ok()) return Fail(file.status());
    PrintFile(*file);
    return 0;
  }
  if (command == "files") {
    const std::string what = args[2];
    if (what == "list") {
      auto page = client.ListFiles(absl::GetFlag(FLAGS_page_size), absl::GetFlag(FLAGS_page_token));
      if (!page.ok()) return Fail(page.status());
      for (const v1::File& f : page->files()) PrintFile(f);
      if (!page->next_page_token().empty()) {
        std::cout << "next_page_token: " << page->next_page_token() << "\n";
      }
      return 0;
    }
    if ((what == "get" || what == "delete") && args.size() >= 4) {
      if (what == "get") {
        auto file = client.GetFile(args[3]);
        if (!file.ok()) return Fail(file.status());
        PrintFile(*file);
        return 0;
      }
      if (absl::Status s = client.DeleteFile(args[3]); !s.ok()) return Fail(s);
      std::cout << "deleted " << args[3] << "\n";
      return 0;
    }
    std::cerr << "usage: vision files list | files get NAME | files delete NAME\n";
    return 2;
  }
  std::cerr << "vision: unknown command '" << command
            << "' (caption, count-tokens, detect, segment, upload, files, models)\n";
  return 2;
}
