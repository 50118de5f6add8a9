// Model discovery (issue #22): paging and bounds of the models list, NOT_FOUND with the closest
// listed model, the periodic refresh, and the ListModels answer filtered by the allowlist.
#include "service/vision/model_catalog.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "google/rpc/error_details.pb.h"
#include "service/common/status_details.h"
#include "service/vision/model_options.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/fake_timer.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::vision {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vision_gateway::testing::FakeGeminiClient;
using ::vision_gateway::testing::FakeTimer;
using ::vision_gateway::testing::IsOk;

gemini::Model M(std::string id, std::vector<std::string> methods = {"generateContent"}) {
  gemini::Model model;
  model.name = "models/" + id;
  model.display_name = id;
  model.input_token_limit = 1048576;
  model.output_token_limit = 65536;
  model.thinking = true;
  model.supported_generation_methods = std::move(methods);
  return model;
}

class ModelCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gemini_ = std::make_shared<FakeGeminiClient>();
    timer_ = std::make_shared<FakeTimer>();
  }
  void TearDown() override {
    if (catalog_) catalog_->Stop();
    for (auto& call : gemini_->calls()) call->ReleaseCallbacks();
  }

  std::shared_ptr<ModelCatalog> Make(ModelCatalogOptions options = {}) {
    catalog_ = ModelCatalog::Create(gemini_, timer_, options);
    return catalog_;
  }

  // Answers the n-th ListModels call with `page`.
  void Answer(size_t n, std::vector<gemini::Model> models, std::string next = "") {
    ASSERT_TRUE(gemini_->WaitForCalls(n + 1));
    auto call = gemini_->calls()[n];
    ASSERT_EQ(call->method, "ListModels");
    gemini::ListModelsResponse page;
    page.models = std::move(models);
    page.next_page_token = std::move(next);
    auto done = std::move(call->models_done);
    done(std::move(page));
  }

  std::shared_ptr<FakeGeminiClient> gemini_;
  std::shared_ptr<FakeTimer> timer_;
  std::shared_ptr<ModelCatalog> catalog_;
};

TEST_F(ModelCatalogTest, ReadsEveryPageAndKeepsModelsThatGenerate) {
  auto catalog = Make();
  absl::Status result = absl::UnknownError("not yet");
  catalog->Refresh([&](absl::Status s) { result = s; });
  Answer(0, {M("gemini-3-flash-preview"), M("gemini-embedding-001", {"embedContent"})}, "t1");
  EXPECT_EQ(gemini_->calls()[0]->page_size, 1000);
  Answer(1, {M("gemini-3.1-pro-preview")});
  EXPECT_EQ(gemini_->calls()[1]->page_token, "t1");
  ASSERT_THAT(result, IsOk());
  auto list = catalog->List();
  ASSERT_NE(list, nullptr);
  EXPECT_TRUE(list->complete);
  std::vector<std::string> ids;
  for (const ListedModel& m : list->models) ids.push_back(m.id);
  EXPECT_THAT(ids, ElementsAre("gemini-3-flash-preview", "gemini-3.1-pro-preview"));
}

TEST_F(ModelCatalogTest, UnlistedModelIsNotFoundNamingTheClosest) {
  auto catalog = Make();
  // Before any list: nothing is refused.
  EXPECT_THAT(catalog->Check("gemini-2.5-flash", {}), IsOk());
  catalog->SetList({.models = {{.id = "gemini-3-flash-preview"}, {.id = "gemini-3.1-pro-preview"},
                               {.id = "gemini-2.5-flash-image"}}});
  EXPECT_THAT(catalog->Check("gemini-3-flash-preview", {}), IsOk());
  absl::Status retired = catalog->Check("gemini-2.5-flash", {});
  EXPECT_EQ(retired.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(retired.message(), HasSubstr("'gemini-2.5-flash' is not in Gemini's models list"));
  EXPECT_THAT(retired.message(), HasSubstr("closest listed model is 'gemini-2.5-flash-image'"));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(retired, info));
  EXPECT_EQ(info.reason(), "MODEL_NOT_FOUND");
  EXPECT_EQ(info.metadata().at("closest"), "gemini-2.5-flash-image");
  // The closest the caller may use, when the allowlist names listed models.
  absl::Status allowed = catalog->Check("gemini-2.5-flash", {"gemini-3-flash-preview"});
  EXPECT_THAT(allowed.message(), HasSubstr("closest listed model is 'gemini-3-flash-preview'"));
  EXPECT_THAT(catalog->Unlisted({"gemini-3-flash-preview", "gemini-2.5-pro", "gemini-2.5-pro"}),
              ElementsAre("gemini-2.5-pro"));
}

TEST_F(ModelCatalogTest, ABoundedListIsKeptButNeverRefuses) {
  auto catalog = Make({.page_size = 1, .max_pages = 2});
  catalog->Refresh([](absl::Status) {});
  Answer(0, {M("a")}, "t1");
  Answer(1, {M("b")}, "t2");  // a third page would be past the bound
  auto list = catalog->List();
  ASSERT_NE(list, nullptr);
  EXPECT_FALSE(list->complete);
  EXPECT_EQ(gemini_->calls().size(), 2u);
  EXPECT_THAT(catalog->Check("c", {}), IsOk());
  EXPECT_TRUE(catalog->Unlisted({"c"}).empty());
}

TEST_F(ModelCatalogTest, FailedRefreshKeepsThePreviousList) {
  auto catalog = Make({.refresh_period = absl::Minutes(10)});
  catalog->Refresh([](absl::Status) {});
  Answer(0, {M("gemini-3-flash-preview")});
  catalog->StartPeriodic();
  timer_->Advance(absl::Minutes(10));
  ASSERT_TRUE(gemini_->WaitForCalls(2));
  auto done = std::move(gemini_->calls()[1]->models_done);
  done(absl::UnavailableError("503"));
  ASSERT_NE(catalog->List(), nullptr);
  EXPECT_EQ(catalog->List()->models.size(), 1u);
  // And the next period tries again, with the new list replacing the old one.
  timer_->Advance(absl::Minutes(10));
  Answer(2, {M("gemini-3.1-pro-preview")});
  EXPECT_EQ(catalog->List()->models.front().id, "gemini-3.1-pro-preview");
}

TEST_F(ModelCatalogTest, StopEndsAListingBetweenPages) {
  auto catalog = Make();
  absl::Status result = absl::UnknownError("not yet");
  catalog->Refresh([&](absl::Status s) { result = s; });
  ASSERT_TRUE(gemini_->WaitForCalls(1));
  catalog->Stop();  // cancels the page in flight
  EXPECT_TRUE(gemini_->calls()[0]->cancelled.HasBeenNotified());
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(catalog->List(), nullptr);
  // A refresh after Stop() does not ask Gemini.
  absl::Status later = absl::UnknownError("not yet");
  catalog->Refresh([&](absl::Status s) { later = s; });
  EXPECT_EQ(later.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(gemini_->calls().size(), 1u);
}

TEST_F(ModelCatalogTest, ListModelsAnswerIsFilteredByTheAllowlist) {
  auto catalog = Make();
  catalog->SetList({.models = {{.id = "gemini-3-flash-preview",
                                .display_name = "Gemini 3 Flash",
                                .input_token_limit = 1048576,
                                .output_token_limit = 65536,
                                .thinking = true},
                               {.id = "gemini-3.1-pro-preview", .thinking = true},
                               {.id = "gemini-2.5-flash", .thinking = true}}});
  VisionOptions options;
  options.catalog = catalog;
  options.default_model = "gemini-3-flash-preview";
  options.segment_model = "gemini-2.5-flash";
  options.cost.allowed_models = {"gemini-3-flash-preview", "gemini-2.5-flash", "gemini-2.5-pro"};
  absl::StatusOr<v1::ListModelsResponse> answer = absl::UnknownError("no answer");
  StartListModels(options, [&](absl::StatusOr<v1::ListModelsResponse> r) { answer = r; });
  ASSERT_THAT(answer, IsOk());
  ASSERT_EQ(answer->models_size(), 2);
  const v1::ModelInfo& flash = answer->models(0);
  EXPECT_EQ(flash.id(), "gemini-3-flash-preview");
  EXPECT_EQ(flash.input_token_limit(), 1048576);
  EXPECT_EQ(flash.output_token_limit(), 65536);
  EXPECT_TRUE(flash.thinking());
  EXPECT_TRUE(flash.default_model());
  EXPECT_FALSE(flash.segment_default());
  EXPECT_EQ(flash.thinking_control(), v1::THINKING_CONTROL_LEVEL);
  EXPECT_THAT(flash.thinking_levels(),
              ElementsAre(v1::THINKING_LEVEL_MINIMAL, v1::THINKING_LEVEL_LOW,
                          v1::THINKING_LEVEL_MEDIUM, v1::THINKING_LEVEL_HIGH));
  const v1::ModelInfo& flash25 = answer->models(1);
  EXPECT_EQ(flash25.id(), "gemini-2.5-flash");
  EXPECT_TRUE(flash25.segment_default());
  EXPECT_EQ(flash25.thinking_control(), v1::THINKING_CONTROL_BUDGET);
  EXPECT_EQ(flash25.max_thinking_budget(), 24576);
  EXPECT_THAT(answer->unlisted_allowed_models(), ElementsAre("gemini-2.5-pro"));
}

TEST_F(ModelCatalogTest, ChooseModelRefusesUnlistedModelsBeforeGemini) {
  auto catalog = Make();
  catalog->SetList({.models = {{.id = "gemini-3-flash-preview"}}});
  VisionOptions options;
  options.catalog = catalog;
  v1::ModelOptions request;
  request.set_model("models/gemini-2.5-pro");
  absl::StatusOr<std::string> chosen = ChooseModel(request, options);
  EXPECT_EQ(chosen.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(chosen.status().message(), HasSubstr("gemini-2.5-pro"));
  EXPECT_THAT(chosen.status().message(), HasSubstr("gemini-3-flash-preview"));
  // Segment's own default.
  options.segment_model = "gemini-3-flash-preview";
  options.default_model = "gemini-2.5-flash";
  EXPECT_EQ(*ChooseModel(v1::ModelOptions(), options, /*segment=*/true), "gemini-3-flash-preview");
  EXPECT_EQ(ChooseModel(v1::ModelOptions(), options).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(gemini_->calls().empty());
}

}  // namespace
}  // namespace vision_gateway::vision
