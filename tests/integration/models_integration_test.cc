// Model currency (issue #22) through the whole stack against the emulator's models list:
// discovery at start (an unknown default is reported and counted), a retired model refused at
// call time with NOT_FOUND naming the closest listed model, ListModels filtered by the allowlist,
// what goes upstream for each option on each family (and that the emulator, which refuses what
// Gemini refuses, accepts it), Segment on a model answering boxes without masks, and rerouting.
#include <boost/json.hpp>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "emulator/gemini_wire.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/log_capture.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;
namespace json = boost::json;
using ::testing::HasSubstr;

std::string SmallPng() { return *Encode(MakePixels(64, 48, 3, 255), ".png"); }

// The ErrorInfo of a failed call.
google::rpc::ErrorInfo ErrorInfoOf(const grpc::Status& status) {
  google::rpc::Status details;
  google::rpc::ErrorInfo info;
  if (!details.ParseFromString(status.error_details())) return info;
  for (const auto& any : details.details()) {
    if (any.Is<google::rpc::ErrorInfo>()) any.UnpackTo(&info);
  }
  return info;
}

// The emulator's default list plus two listed 2.5-era budget models (Flash, Pro).
std::vector<emulator::EmulatorModel> ModelsWithBudgetFamily() {
  std::vector<emulator::EmulatorModel> models;
  for (emulator::EmulatorModel& m : emulator::DefaultModels()) {
    if (m.id == "gemini-2.5-flash" || m.id == "gemini-2.5-pro") continue;
    models.push_back(std::move(m));
  }
  models.push_back(emulator::BudgetModel("gemini-2.5-flash"));
  models.push_back(emulator::BudgetModel("gemini-2.5-pro", /*pro=*/true));
  return models;
}

class ModelsTest : public GatewayTest {
 protected:
  void SetUp() override {}  // each test starts its own stack

  void Start(std::vector<emulator::EmulatorModel> models = {}) {
    StackOptions stack;
    stack.models = std::move(models);
    StartStackWith(stack);
  }

  void ConfigureServer(server::ServerOptions& options) override {
    options.vision.default_model = default_model_;
    options.vision.cost.allowed_models = allowed_;
  }

  grpc::Status Caption(const std::string& model, std::vector<v1::CaptionResponse>* out = nullptr) {
    v1::CaptionRequest request;
    request.add_images()->set_content(SmallPng());
    request.mutable_options()->set_model(model);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    auto reader = stub_->Caption(&context, request);
    v1::CaptionResponse r;
    while (reader->Read(&r)) {
      if (out != nullptr) out->push_back(r);
    }
    return reader->Finish();
  }

  grpc::Status Detect(const v1::ModelOptions& options, v1::Summary* summary = nullptr) {
    v1::DetectRequest request;
    request.mutable_image()->set_content(SmallPng());
    *request.mutable_options() = options;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    auto reader = stub_->Detect(&context, request);
    v1::DetectResponse r;
    while (reader->Read(&r)) {
      if (r.has_summary() && summary != nullptr) *summary = r.summary();
    }
    return reader->Finish();
  }

  // The generationConfig of the last model request the emulator received.
  json::object LastGenerationConfig() {
    const std::vector<emulator::RecordedRequest> requests = emulator_->Requests();
    for (auto it = requests.rbegin(); it != requests.rend(); ++it) {
      if (!absl::StrContains(it->target, "Content")) continue;
      json::value body = json::parse(it->body);
      if (const json::value* config = body.as_object().if_contains("generationConfig")) {
        return config->as_object();
      }
      return json::object();
    }
    ADD_FAILURE() << "no model request";
    return json::object();
  }

  double Metric(const std::string& series) {
    const std::string text = metrics_->Scrape();
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::StartsWith(line, series + " ")) {
        double value = 0;
        if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
      }
    }
    return -1;
  }

  std::string default_model_ = "gemini-3-flash-preview";
  std::vector<std::string> allowed_;
};

// A default model Gemini no longer lists is reported loudly at start and counted; calls that rely
// on it fail fast with NOT_FOUND naming the closest listed model, without reaching Gemini.
TEST_F(ModelsTest, UnknownDefaultModelIsReportedAtStart) {
  LogCapture logs;
  default_model_ = "gemini-2.5-flash";
  Start();
  bool reported = false;
  for (const std::string& line : logs.Lines()) {
    if (absl::StrContains(line, "ERROR") &&
        absl::StrContains(line, "configured model gemini-2.5-flash is NOT in Gemini's models list")) {
      reported = true;
    }
  }
  EXPECT_TRUE(reported);
  EXPECT_EQ(Metric("vision_gateway_configured_models_unlisted"), 1);
  const grpc::Status status = Caption("");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("'gemini-2.5-flash'"));
  EXPECT_THAT(status.error_message(), HasSubstr("closest listed model is"));
  EXPECT_EQ(ErrorInfoOf(status).reason(), "MODEL_NOT_FOUND");
  EXPECT_TRUE(emulator_->Requests().empty());
}

TEST_F(ModelsTest, CurrentDefaultModelIsNotReported) {
  Start();
  EXPECT_EQ(Metric("vision_gateway_configured_models_unlisted"), 0);
  EXPECT_TRUE(Caption("").ok());
}

// A retired model named by the caller: NOT_FOUND naming it and the closest listed model, before
// any request to Gemini.
TEST_F(ModelsTest, RetiredModelFailsFastAtCallTime) {
  Start();
  const grpc::Status status = Caption("gemini-3-pro-preview");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(),
              HasSubstr("'gemini-3-pro-preview' is not in Gemini's models list"));
  const google::rpc::ErrorInfo info = ErrorInfoOf(status);
  EXPECT_EQ(info.reason(), "MODEL_NOT_FOUND");
  EXPECT_EQ(info.metadata().at("closest"), "gemini-3.1-pro-preview");
  EXPECT_TRUE(emulator_->Requests().empty());
  // A listed one goes through.
  EXPECT_TRUE(Caption("gemini-3.1-pro-preview").ok());
}

TEST_F(ModelsTest, ListModelsIsFilteredByTheAllowlist) {
  allowed_ = {"gemini-3-flash-preview", "gemini-3.1-flash-lite", "gemini-2.5-flash"};
  Start();
  grpc::ClientContext context;
  v1::ListModelsResponse response;
  ASSERT_TRUE(stub_->ListModels(&context, v1::ListModelsRequest(), &response).ok());
  ASSERT_EQ(response.models_size(), 2);
  EXPECT_EQ(response.models(0).id(), "gemini-3-flash-preview");
  EXPECT_TRUE(response.models(0).default_model());
  EXPECT_EQ(response.models(0).input_token_limit(), 1048576);
  EXPECT_EQ(response.models(0).output_token_limit(), 65536);
  EXPECT_TRUE(response.models(0).thinking());
  EXPECT_EQ(response.models(1).id(), "gemini-3.1-flash-lite");
  ASSERT_EQ(response.unlisted_allowed_models_size(), 1);
  EXPECT_EQ(response.unlisted_allowed_models(0), "gemini-2.5-flash");
  EXPECT_GT(response.list_time().seconds(), 0);
  // Served from the gateway's list: Gemini was not asked again.
  EXPECT_TRUE(emulator_->Requests().empty());
}

// What goes upstream for a caller's options on each family; every request is one the emulator
// (refusing what Gemini refuses, with a 400) accepts.
TEST_F(ModelsTest, OptionsAreTranslatedPerFamily) {
  Start(ModelsWithBudgetFamily());
  struct Case {
    std::string model;
    v1::ModelOptions options;
    std::string key;       // thinkingConfig member expected
    json::value expected;  // its value
  };
  auto with = [](std::string model, auto set) {
    v1::ModelOptions options;
    options.set_model(model);
    set(options);
    return options;
  };
  const std::vector<Case> cases = {
      {"gemini-3-flash-preview",
       with("gemini-3-flash-preview", [](auto& o) { o.set_thinking_budget(0); }),
       "thinkingLevel", "MINIMAL"},
      {"gemini-3.1-pro-preview",
       with("gemini-3.1-pro-preview", [](auto& o) { o.set_thinking_budget(0); }),
       "thinkingLevel", "LOW"},
      {"gemini-3.1-pro-preview",
       with("gemini-3.1-pro-preview",
            [](auto& o) { o.set_thinking_level(v1::THINKING_LEVEL_MINIMAL); }),
       "thinkingLevel", "LOW"},
      {"gemini-flash-latest", with("gemini-flash-latest", [](auto&) {}), "thinkingLevel", "LOW"},
      {"gemini-2.5-flash",
       with("gemini-2.5-flash", [](auto& o) { o.set_thinking_level(v1::THINKING_LEVEL_MINIMAL); }),
       "thinkingBudget", 0},
      {"gemini-2.5-pro", with("gemini-2.5-pro", [](auto& o) { o.set_thinking_budget(0); }),
       "thinkingBudget", 128},
      {"gemini-2.5-pro", with("gemini-2.5-pro", [](auto&) {}), "thinkingBudget", 128},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.options.DebugString());
    emulator_->ClearRequests();
    const grpc::Status status = Detect(c.options);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const json::object config = LastGenerationConfig();
    const json::object& thinking = config.at("thinkingConfig").as_object();
    EXPECT_EQ(thinking.size(), 1u) << json::serialize(thinking);
    ASSERT_TRUE(thinking.contains(c.key)) << json::serialize(thinking);
    EXPECT_EQ(thinking.at(c.key), c.expected);
  }
  // Media resolution: per image part on Gemini 3, request-level on 2.5.
  v1::ModelOptions low = with("gemini-3-flash-preview",
                              [](auto& o) { o.set_media_resolution(v1::MEDIA_RESOLUTION_LOW); });
  emulator_->ClearRequests();
  ASSERT_TRUE(Detect(low).ok());
  EXPECT_FALSE(LastGenerationConfig().contains("mediaResolution"));
  EXPECT_THAT(emulator_->Requests().back().body, HasSubstr("\"mediaResolution\":{\"level\""));
  low.set_model("gemini-2.5-flash");
  emulator_->ClearRequests();
  ASSERT_TRUE(Detect(low).ok());
  EXPECT_EQ(LastGenerationConfig().at("mediaResolution"), "MEDIA_RESOLUTION_LOW");
  // No faithful translation: refused by the gateway, naming model and option; Gemini not asked.
  emulator_->ClearRequests();
  const grpc::Status medium =
      Detect(with("gemini-2.5-flash", [](auto& o) { o.set_thinking_level(v1::THINKING_LEVEL_HIGH); }));
  EXPECT_EQ(medium.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(medium.error_message(), HasSubstr("model gemini-2.5-flash"));
  EXPECT_THAT(medium.error_message(), HasSubstr("thinking_level"));
  EXPECT_EQ(ErrorInfoOf(medium).reason(), "MODEL_OPTION_UNSUPPORTED");
  EXPECT_TRUE(emulator_->Requests().empty());
}

// A model that answers boxes without usable masks: the Summary says how many and why.
TEST_F(ModelsTest, SegmentOnAModelWithoutMasksSaysSo) {
  Start();
  emulator_->Enqueue(emulator::ScriptedStream(
      {R"([{"box_2d": [100, 100, 500, 500], "label": "cup"},)",
       R"( {"box_2d": [200, 200, 600, 600], "label": "plate", "mask": "<start_of_mask><seg_35>"},)",
       R"( {"box_2d": [100, 600, 400, 900], "label": "fork"}])"},
      "STOP", 10));
  v1::SegmentRequest request;
  request.mutable_image()->set_content(SmallPng());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto reader = stub_->Segment(&context, request);
  v1::SegmentResponse r;
  v1::Summary summary;
  int masks = 0;
  while (reader->Read(&r)) {
    if (r.has_mask()) ++masks;
    if (r.has_summary()) summary = r.summary();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(masks, 0);
  EXPECT_EQ(summary.count(), 0);
  EXPECT_EQ(summary.without_mask(), 3);
  EXPECT_EQ(summary.dropped(), 3);
  EXPECT_THAT(summary.without_mask_reason(), HasSubstr("mask missing (2)"));
  EXPECT_THAT(summary.without_mask_reason(),
              HasSubstr("mask segmentation tokens instead of an image (1)"));
  EXPECT_THAT(summary.without_mask_reason(), HasSubstr("gemini-3-flash-preview"));
}

// Gemini answering with another family than asked: logged once per model, counted, reported in
// the final message.
TEST_F(ModelsTest, ReroutingIsVisible) {
  Start(ModelsWithBudgetFamily());
  emulator::EmulatorConfig config = emulator_->config();
  config.model_version = "gemini-3-flash-preview-001";
  emulator_->SetConfig(config);
  LogCapture logs;
  std::vector<v1::CaptionResponse> first;
  ASSERT_TRUE(Caption("gemini-2.5-pro", &first).ok());
  ASSERT_FALSE(first.empty());
  EXPECT_TRUE(first.back().model_rerouted());
  EXPECT_EQ(first.back().model_version(), "gemini-3-flash-preview-001");
  ASSERT_TRUE(Caption("gemini-2.5-pro").ok());
  int warnings = 0;
  for (const std::string& line : logs.Lines()) {
    if (absl::StrContains(line, "rerouted calls for model gemini-2.5-pro")) ++warnings;
  }
  EXPECT_EQ(warnings, 1);
  // Model labels are folded to the known models (here only the default).
  EXPECT_EQ(Metric("vision_gateway_model_reroutes_total{requested=\"other\",served=\"other\"}"), 2);
  // The model asked for answering: not rerouted.
  std::vector<v1::CaptionResponse> same;
  ASSERT_TRUE(Caption("gemini-3-flash-preview", &same).ok());
  EXPECT_FALSE(same.back().model_rerouted());
}

}  // namespace
}  // namespace vision_gateway::testing
