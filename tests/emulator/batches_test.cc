// Batch API of the emulator: batchGenerateContent (inline and file input), the job's state
// machine on the advanceable clock, get/list/cancel/delete, responses files, per-line scripted
// errors, validation.
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "emulator/batches.h"
#include "emulator/emulator.h"
#include "emulator/gemini_wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/emulator/test_http.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::emulator {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::vision_gateway::emulator::testing::GenerateBody;
using ::vision_gateway::emulator::testing::HttpResult;
using ::vision_gateway::emulator::testing::MakeShapesImage;
using ::vision_gateway::emulator::testing::SendHttp;
using ::vision_gateway::testing::IsOk;

constexpr char kKey[] = "batch-key";
constexpr char kModel[] = "gemini-3-flash-preview";

json::value Parse(std::string_view text) {
  json::error_code ec;
  json::value value = json::parse(json::string_view(text.data(), text.size()), ec);
  EXPECT_FALSE(ec) << text.substr(0, 300);
  return value;
}

std::string Str(const json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : "";
}

// A request object for a batch line: the image and a caption prompt.
std::string CaptionRequest() {
  return GenerateBody(MakeShapesImage().png, "Describe this image.");
}

class BatchesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmulatorOptions options;
    options.api_key = kKey;
    // One hour of processing: tests move the clock instead of waiting.
    options.config.batch_processing = std::chrono::hours(1);
    absl::StatusOr<std::unique_ptr<Emulator>> started = Emulator::Start(options);
    ASSERT_THAT(started, IsOk());
    emulator_ = *std::move(started);
  }

  HttpResult Call(std::string_view method, std::string_view target, std::string_view body = {},
                  HeaderList headers = {}) {
    headers.emplace_back("x-goog-api-key", kKey);
    absl::StatusOr<HttpResult> result = SendHttp(emulator_->port(), method, target, headers, body);
    EXPECT_THAT(result, IsOk());
    return result.ok() ? *std::move(result) : HttpResult();
  }

  // Through the admin endpoint, as an out-of-process test would.
  void AdvanceClock(absl::Duration by) {
    absl::StatusOr<HttpResult> advanced =
        SendHttp(emulator_->port(), "POST", "/emulator/clock", {},
                 absl::StrCat("{\"advance_ms\": ", absl::ToInt64Milliseconds(by), "}"));
    ASSERT_THAT(advanced, IsOk());
    ASSERT_EQ(advanced->status, 200) << advanced->body;
  }

  HttpResult Create(std::string_view body, std::string_view model = kModel,
                    std::string_view version = "v1beta") {
    return Call("POST",
                absl::StrCat("/", std::string(version), "/models/", std::string(model),
                             ":batchGenerateContent"),
                body);
  }

  // Creates a batch; returns its operation.
  json::value CreateOk(std::string_view body) {
    HttpResult created = Create(body);
    EXPECT_EQ(created.status, 200) << created.body;
    return Parse(created.body);
  }

  json::value Get(const std::string& name) {
    HttpResult got = Call("GET", absl::StrCat("/v1beta/", name));
    EXPECT_EQ(got.status, 200) << got.body;
    return Parse(got.body);
  }

  static std::string InlineBody(const std::vector<std::string>& keys) {
    std::string requests;
    for (const std::string& key : keys) {
      absl::StrAppend(&requests, requests.empty() ? "" : ",", "{\"request\": ", CaptionRequest(),
                      ", \"metadata\": {\"key\": \"", key, "\"}}");
    }
    return absl::StrCat(R"({"batch": {"displayName": "inline", "inputConfig": {"requests": )",
                        R"({"requests": [)", requests, "]}}}}");
  }

  // Uploads a JSONL file; returns its name.
  std::string UploadJsonl(std::string_view bytes) {
    HttpResult started = Call("POST", "/upload/v1beta/files", R"({"file": {}})",
                              {{"X-Goog-Upload-Protocol", "resumable"},
                               {"X-Goog-Upload-Command", "start"},
                               {"X-Goog-Upload-Header-Content-Length", absl::StrCat(bytes.size())},
                               {"X-Goog-Upload-Header-Content-Type", "application/jsonl"}});
    EXPECT_EQ(started.status, 200) << started.body;
    const std::string url = started.Header("x-goog-upload-url").substr(
        emulator_->base_url().size());
    HttpResult final_reply = Call(
        "POST", url, bytes, {{"X-Goog-Upload-Command", "upload, finalize"},
                             {"X-Goog-Upload-Offset", "0"}});
    EXPECT_EQ(final_reply.status, 200) << final_reply.body;
    return Str(Parse(final_reply.body).at("file").at("name"));
  }

  static std::string ErrorStatus(const HttpResult& result) {
    json::value body = Parse(result.body);
    return body.is_object() && body.get_object().contains("error")
               ? Str(body.at("error").at("status"))
               : "";
  }
  static std::string ErrorMessage(const HttpResult& result) {
    json::value body = Parse(result.body);
    return body.is_object() && body.get_object().contains("error")
               ? Str(body.at("error").at("message"))
               : "";
  }

  std::unique_ptr<Emulator> emulator_;
};

TEST_F(BatchesTest, InlineBatchMovesPendingRunningSucceededAndAnswersInline) {
  const json::value created = CreateOk(InlineBody({"first", "second"}));
  const std::string name = Str(created.at("name"));
  EXPECT_THAT(name, StartsWith("batches/"));
  const json::value& metadata = created.at("metadata");
  EXPECT_EQ(Str(metadata.at("@type")),
            "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch");
  EXPECT_EQ(Str(metadata.at("state")), "BATCH_STATE_PENDING");
  EXPECT_EQ(Str(metadata.at("model")), absl::StrCat("models/", kModel));
  EXPECT_EQ(Str(metadata.at("displayName")), "inline");
  EXPECT_EQ(Str(metadata.at("batchStats").at("requestCount")), "2");  // int64 as a string
  EXPECT_EQ(Str(metadata.at("batchStats").at("pendingRequestCount")), "2");
  EXPECT_FALSE(created.get_object().contains("done"));

  AdvanceClock(absl::Minutes(31));
  EXPECT_EQ(Str(Get(name).at("metadata").at("state")), "BATCH_STATE_RUNNING");
  AdvanceClock(absl::Minutes(30));
  const json::value done = Get(name);
  EXPECT_EQ(done.at("done"), json::value(true));
  EXPECT_EQ(Str(done.at("metadata").at("state")), "BATCH_STATE_SUCCEEDED");
  EXPECT_EQ(Str(done.at("metadata").at("batchStats").at("successfulRequestCount")), "2");
  EXPECT_EQ(Str(done.at("metadata").at("batchStats").at("pendingRequestCount")), "0");
  EXPECT_FALSE(Str(done.at("metadata").at("endTime")).empty());
  const json::array& answers =
      done.at("metadata").at("output").at("inlinedResponses").at("inlinedResponses").get_array();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(Str(answers[0].at("metadata").at("key")), "first");
  EXPECT_EQ(Str(answers[1].at("metadata").at("key")), "second");
  // Scene mode, as online: the caption names the shapes.
  const std::string text =
      Str(answers[0].at("response").at("candidates").at(0).at("content").at("parts").at(0).at(
          "text"));
  EXPECT_THAT(text, HasSubstr("red"));
  EXPECT_THAT(text, HasSubstr("blue"));
  EXPECT_EQ(done.at("response").at("inlinedResponses").at("inlinedResponses").get_array().size(),
            2u);
}

TEST_F(BatchesTest, FileBatchWritesAResponsesFileWithScriptedErrorLines) {
  const std::string input = absl::StrCat(
      "{\"key\": \"a\", \"request\": ", CaptionRequest(), "}\n",
      "{\"key\": \"b\", \"request\": ", CaptionRequest(), "}\n",
      // Valid JSON, invalid request: only this line fails.
      "{\"key\": \"c\", \"request\": {\"contents\": [], \"bogusField\": 1}}\n");
  const std::string file = UploadJsonl(input);
  emulator_->EnqueueForBatchKey(
      "b", ScriptedError(429, "Resource has been exhausted (e.g. check quota)."));
  const json::value created = CreateOk(absl::StrCat(
      R"({"batch": {"display_name": "from-file", "input_config": {"file_name": ")", file,
      R"("}}})"));
  const std::string name = Str(created.at("name"));
  EXPECT_EQ(Str(created.at("metadata").at("inputConfig").at("fileName")), file);

  AdvanceClock(absl::Hours(1));
  const json::value done = Get(name);
  const json::value& metadata = done.at("metadata");
  ASSERT_EQ(Str(metadata.at("state")), "BATCH_STATE_SUCCEEDED") << json::serialize(done);
  EXPECT_EQ(Str(metadata.at("batchStats").at("successfulRequestCount")), "1");
  EXPECT_EQ(Str(metadata.at("batchStats").at("failedRequestCount")), "2");
  const std::string responses = Str(metadata.at("output").at("responsesFile"));
  EXPECT_THAT(responses, StartsWith("files/batch-"));
  EXPECT_EQ(Str(done.at("response").at("responsesFile")), responses);

  const json::value file_resource = Get(responses);
  EXPECT_EQ(Str(file_resource.at("state")), "ACTIVE");
  EXPECT_EQ(Str(file_resource.at("source")), "GENERATED");

  const HttpResult download = Call("GET", absl::StrCat("/v1beta/", responses, ":download?alt=media"));
  ASSERT_EQ(download.status, 200) << download.body;
  EXPECT_EQ(Str(file_resource.at("sizeBytes")), absl::StrCat(download.body.size()));
  std::vector<std::string> lines = absl::StrSplit(download.body, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  const json::value a = Parse(lines[0]);
  EXPECT_EQ(Str(a.at("key")), "a");
  EXPECT_THAT(Str(a.at("response").at("candidates").at(0).at("content").at("parts").at(0).at(
                  "text")),
              HasSubstr("red"));
  const json::value b = Parse(lines[1]);
  EXPECT_EQ(Str(b.at("key")), "b");
  EXPECT_EQ(b.at("error").at("code"), json::value(429));
  EXPECT_EQ(Str(b.at("error").at("status")), "RESOURCE_EXHAUSTED");
  const json::value c = Parse(lines[2]);
  EXPECT_EQ(Str(c.at("key")), "c");
  EXPECT_EQ(Str(c.at("error").at("status")), "INVALID_ARGUMENT");
  EXPECT_THAT(Str(c.at("error").at("message")), HasSubstr("bogusField"));
  EXPECT_EQ(emulator_->BatchCount(), 1);

  // Downloads need alt=media.
  EXPECT_EQ(Call("GET", absl::StrCat("/v1beta/", responses, ":download")).status, 400);
}

TEST_F(BatchesTest, FifoScriptEntriesAnswerBatchLinesInOrderAndV1AliasWorks) {
  emulator_->Enqueue(ScriptedText("scripted one"));
  HttpResult created = Create(InlineBody({"x"}), kModel, "v1");
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string name = Str(Parse(created.body).at("name"));
  AdvanceClock(absl::Hours(2));
  HttpResult got = Call("GET", absl::StrCat("/v1/", name));
  ASSERT_EQ(got.status, 200);
  const json::value operation = Parse(got.body);
  const json::value& answer = operation.at("metadata").at("output").at("inlinedResponses").at(
      "inlinedResponses").at(0);
  EXPECT_EQ(Str(answer.at("response").at("candidates").at(0).at("content").at("parts").at(0).at(
                "text")),
            "scripted one");
  EXPECT_EQ(emulator_->PendingScripted(), 0u);
}

TEST_F(BatchesTest, RefusesModelsAsOnlineCallsDo) {
  for (const std::string model : {"no-such-model", "gemini-2.5-flash"}) {
    const HttpResult online = Call("POST", absl::StrCat("/v1beta/models/", model,
                                                        ":generateContent"),
                                   CaptionRequest());
    const HttpResult batch = Create(InlineBody({"k"}), model);
    EXPECT_EQ(online.status, 404);
    EXPECT_EQ(batch.status, 404) << model;
    EXPECT_EQ(ErrorStatus(batch), "NOT_FOUND");
    EXPECT_EQ(ErrorMessage(batch),
              absl::StrCat("models/", model,
                           " is not found for API version v1beta, or is not supported for "
                           "batchGenerateContent. Call ListModels to see the list of available "
                           "models and their supported methods."));
  }
  EXPECT_EQ(emulator_->BatchCount(), 0);
}

TEST_F(BatchesTest, ValidatesTheBody) {
  const std::string request = CaptionRequest();
  struct Case {
    std::string body;
    int status;
    std::string message_part;
  };
  const std::string missing_file = "files/doesnotexist";
  const std::string bad_lines = UploadJsonl(absl::StrCat(
      "{\"key\": \"a\", \"request\": ", request, "}\n", "{\"key\": \"b\", \"request\": \n"));
  const std::string no_request = UploadJsonl("{\"key\": \"a\"}\n");
  const std::vector<Case> cases = {
      {"not json", 400, "Invalid JSON payload"},
      {R"({"batch": {"inputConfig": {"fileName": "files/x"}}})", 400, "display_name is required"},
      {R"({"batch": {"displayName": "d"}})", 400, "input_config is required"},
      {R"({"batch": {"displayName": "d", "inputConfig": {}}})", 400, "exactly one of"},
      {absl::StrCat(R"({"batch": {"displayName": "d", "inputConfig": {"fileName": "files/x", )",
                    R"("requests": {"requests": [{"request": )", request, "}]}}}}"),
       400, "exactly one of"},
      {R"({"batch": {"displayName": "d", "inputConfig": {"requests": {"requests": []}}}})", 400,
       "non-empty"},
      {R"({"batch": {"displayName": "d", "inputConfig": {"requests": {"requests": [{}]}}}})", 400,
       "requests[0].request is required"},
      {R"({"batch": {"displayName": "d", "bogus": 1, "inputConfig": {"fileName": "files/x"}}})",
       400, "Unknown name \"bogus\""},
      {absl::StrCat(R"({"batch": {"displayName": "d", "inputConfig": {"fileName": ")",
                    missing_file, R"("}}})"),
       403, "may not exist"},
      {absl::StrCat(R"({"batch": {"displayName": "d", "inputConfig": {"fileName": ")", bad_lines,
                    R"("}}})"),
       400, "Line 2 of"},
      {absl::StrCat(R"({"batch": {"displayName": "d", "inputConfig": {"fileName": ")",
                    no_request, R"("}}})"),
       400, "has no \"request\" object"},
  };
  for (const Case& c : cases) {
    const HttpResult result = Create(c.body);
    EXPECT_EQ(result.status, c.status) << c.body << "\n" << result.body;
    EXPECT_THAT(ErrorMessage(result), HasSubstr(c.message_part)) << c.body;
    EXPECT_THAT(result.Header("content-type"), StartsWith("application/json"));
  }
  EXPECT_EQ(emulator_->BatchCount(), 0);
}

TEST_F(BatchesTest, ListPagesNewestFirst) {
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) names.push_back(Str(CreateOk(InlineBody({"k"})).at("name")));
  const HttpResult first = Call("GET", "/v1beta/batches?pageSize=2");
  ASSERT_EQ(first.status, 200) << first.body;
  const json::value page1 = Parse(first.body);
  ASSERT_EQ(page1.at("operations").get_array().size(), 2u);
  EXPECT_EQ(Str(page1.at("operations").at(0).at("name")), names[2]);
  EXPECT_EQ(Str(page1.at("operations").at(1).at("name")), names[1]);
  const std::string token = Str(page1.at("nextPageToken"));
  ASSERT_FALSE(token.empty());
  const json::value page2 =
      Parse(Call("GET", absl::StrCat("/v1beta/batches?pageSize=2&pageToken=", token)).body);
  ASSERT_EQ(page2.at("operations").get_array().size(), 1u);
  EXPECT_EQ(Str(page2.at("operations").at(0).at("name")), names[0]);
  EXPECT_FALSE(page2.get_object().contains("nextPageToken"));
  EXPECT_EQ(Call("GET", "/v1beta/batches?pageToken=garbage").status, 400);
}

TEST_F(BatchesTest, CancelAndDelete) {
  const std::string name = Str(CreateOk(InlineBody({"k"})).at("name"));
  EXPECT_EQ(Call("POST", absl::StrCat("/v1beta/", name, ":cancel")).status, 200);
  json::value cancelled = Get(name);
  EXPECT_EQ(Str(cancelled.at("metadata").at("state")), "BATCH_STATE_CANCELLED");
  EXPECT_EQ(cancelled.at("done"), json::value(true));
  // Cancelling again is harmless (a retried cancel); the clock moving on changes nothing.
  EXPECT_EQ(Call("POST", absl::StrCat("/v1beta/", name, ":cancel")).status, 200);
  AdvanceClock(absl::Hours(2));
  EXPECT_EQ(Str(Get(name).at("metadata").at("state")), "BATCH_STATE_CANCELLED");

  const std::string finished = Str(CreateOk(InlineBody({"k"})).at("name"));
  AdvanceClock(absl::Hours(2));
  const HttpResult late = Call("POST", absl::StrCat("/v1beta/", finished, ":cancel"));
  EXPECT_EQ(late.status, 400);
  EXPECT_EQ(ErrorStatus(late), "FAILED_PRECONDITION");
  EXPECT_EQ(Str(Get(finished).at("metadata").at("state")), "BATCH_STATE_SUCCEEDED");

  EXPECT_EQ(Call("DELETE", absl::StrCat("/v1beta/", name)).status, 200);
  const HttpResult gone = Call("GET", absl::StrCat("/v1beta/", name));
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(ErrorStatus(gone), "NOT_FOUND");
  EXPECT_EQ(Call("DELETE", absl::StrCat("/v1beta/", name)).status, 404);
  EXPECT_EQ(Call("POST", absl::StrCat("/v1beta/", name, ":cancel")).status, 404);
  EXPECT_EQ(emulator_->BatchCount(), 1);
}

TEST_F(BatchesTest, JobsStillRunningAfter48HoursExpire) {
  absl::StatusOr<HttpResult> configured = SendHttp(
      emulator_->port(), "POST", "/emulator/config", {}, R"({"batch_processing_ms": 259200000})");
  ASSERT_THAT(configured, IsOk());
  ASSERT_EQ(configured->status, 200) << configured->body;
  const std::string name = Str(CreateOk(InlineBody({"k"})).at("name"));
  AdvanceClock(absl::Hours(47));
  EXPECT_EQ(Str(Get(name).at("metadata").at("state")), "BATCH_STATE_RUNNING");
  AdvanceClock(absl::Hours(1));
  const json::value expired = Get(name);
  EXPECT_EQ(Str(expired.at("metadata").at("state")), "BATCH_STATE_EXPIRED");
  EXPECT_EQ(expired.at("done"), json::value(true));
  EXPECT_FALSE(expired.at("metadata").get_object().contains("output"));
}

TEST_F(BatchesTest, FailBatchesEndsJobsFailedWithAnOperationError) {
  EmulatorConfig config = emulator_->config();
  config.fail_batches = true;
  emulator_->SetConfig(config);
  const std::string name = Str(CreateOk(InlineBody({"k"})).at("name"));
  AdvanceClock(absl::Hours(1));
  const json::value failed = Get(name);
  EXPECT_EQ(Str(failed.at("metadata").at("state")), "BATCH_STATE_FAILED");
  EXPECT_EQ(failed.at("error").at("code"), json::value(13));
}

TEST_F(BatchesTest, NeedsTheApiKey) {
  absl::StatusOr<HttpResult> anonymous = SendHttp(emulator_->port(), "GET", "/v1beta/batches");
  ASSERT_THAT(anonymous, IsOk());
  EXPECT_EQ(anonymous->status, 400);
  EXPECT_EQ(Call("GET", "/v1beta/batches/UPPER").status, 404);
}

// The store straight, with a line runner the test holds: while one request runs a due job's
// lines, other requests (the same job, another job, the count) are answered at once, and see the
// running job RUNNING; the running request then publishes it SUCCEEDED.
TEST(BatchStoreTest, LinesRunOutsideTheStoreLock) {
  FileStore files;
  BatchStore store(&files);
  EmulatorConfig config;
  config.batch_processing = std::chrono::milliseconds(0);
  const auto create = [&](const std::string& key) {
    ScriptedResponse created = store.Create(
        "v1beta", kModel,
        absl::StrCat(R"({"batch": {"displayName": "held", "inputConfig": {"requests": )",
                     R"({"requests": [{"request": {"contents": [{"parts": [{"text": "hi"}]}]},)",
                     R"( "metadata": {"key": ")", key, R"("}}]}}}})"),
        config);
    EXPECT_EQ(created.status, 200) << created.body;
    return std::string(Str(Parse(created.body).at("name"))).substr(sizeof("batches/") - 1);
  };
  const std::string held_id = create("held");
  const std::string other_id = create("other");
  const auto get = [](const std::string& id) {
    BatchRequest request;
    request.method = "GET";
    request.api_version = "v1beta";
    request.segments = {"batches", id};
    return request;
  };
  const BatchLineRunner answer = [](const std::string&, const std::string&, std::string,
                                    const std::string&) {
    return BatchLineResult{.ok = true, .json = R"({"candidates": []})"};
  };

  absl::Notification entered, release;
  ScriptedResponse held_reply;
  std::thread holder([&] {
    held_reply = store.Handle(get(held_id), [&](const std::string& version,
                                                const std::string& model, std::string request,
                                                const std::string& key) {
      entered.Notify();
      release.WaitForNotification();
      return answer(version, model, std::move(request), key);
    });
  });
  entered.WaitForNotification();
  absl::Notification others_answered;
  ScriptedResponse same, other;
  int count = 0;
  std::thread others([&] {
    same = store.Handle(get(held_id), answer);
    other = store.Handle(get(other_id), answer);
    count = store.JobCount();
    others_answered.Notify();
  });
  const bool answered = others_answered.WaitForNotificationWithTimeout(absl::Seconds(20));
  release.Notify();  // whatever happened, let the held request end
  holder.join();
  others.join();
  EXPECT_TRUE(answered) << "requests waited for another request's lines to run";
  EXPECT_EQ(Str(Parse(same.body).at("metadata").at("state")), "BATCH_STATE_RUNNING");
  EXPECT_EQ(Str(Parse(other.body).at("metadata").at("state")), "BATCH_STATE_SUCCEEDED");
  EXPECT_EQ(count, 2);
  const json::value done = Parse(held_reply.body);
  EXPECT_EQ(Str(done.at("metadata").at("state")), "BATCH_STATE_SUCCEEDED");
  EXPECT_EQ(Str(done.at("metadata").at("batchStats").at("successfulRequestCount")), "1");
}

// A job cancelled while its lines run stays cancelled: the outcome is dropped.
TEST(BatchStoreTest, AJobCancelledWhileItsLinesRunStaysCancelled) {
  FileStore files;
  BatchStore store(&files);
  EmulatorConfig config;
  config.batch_processing = std::chrono::milliseconds(0);
  ScriptedResponse created = store.Create(
      "v1beta", kModel,
      R"({"batch": {"displayName": "c", "inputConfig": {"requests": {"requests": [)"
      R"({"request": {"contents": [{"parts": [{"text": "hi"}]}]}}]}}}})",
      config);
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id =
      std::string(Str(Parse(created.body).at("name"))).substr(sizeof("batches/") - 1);
  BatchRequest get;
  get.method = "GET";
  get.api_version = "v1beta";
  get.segments = {"batches", id};
  BatchRequest cancel = get;
  cancel.method = "POST";
  cancel.segments = {"batches", id + ":cancel"};
  const BatchLineRunner never = [](const std::string&, const std::string&, std::string,
                                   const std::string&) {
    ADD_FAILURE() << "the lines run once only";
    return BatchLineResult{};
  };
  ScriptedResponse cancelled;
  ScriptedResponse held = store.Handle(
      get, [&](const std::string&, const std::string&, std::string, const std::string&) {
        cancelled = store.Handle(cancel, never);  // the store is not locked here
        return BatchLineResult{.ok = true, .json = R"({"candidates": []})"};
      });
  EXPECT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(Str(Parse(held.body).at("metadata").at("state")), "BATCH_STATE_CANCELLED");
  EXPECT_EQ(Str(Parse(store.Handle(get, never).body).at("metadata").at("state")),
            "BATCH_STATE_CANCELLED");
}

}  // namespace
}  // namespace vision_gateway::emulator
