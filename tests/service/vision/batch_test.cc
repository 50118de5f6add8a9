// Batch jobs in the vision layer (#20) over fake Batch and Files stubs: the line key and the
// display-name tag, item requests equal to the online ones, results post-processed exactly as the
// online tasks do, per-item errors, the paced results reader (resumption, the state check,
// bounded memory), ownership, and CreateBatch's spool → upload → job flow.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "service/common/status_details.h"
#include "service/common/timer.h"
#include "service/gemini/json_codec.h"
#include "service/image/mask_codec.h"
#include "service/vision/batch_key.h"
#include "service/vision/batch_results.h"
#include "service/vision/batch_service.h"
#include "service/vision/batch_task.h"
#include "service/vision/caption_task.h"
#include "service/vision/file_id.h"
#include "service/vision/spatial_task.h"
#include "tests/testing/fake_batches_stub.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/task_results.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::vision {
namespace {

using ::vision_gateway::testing::FakeBatchesStub;
using ::vision_gateway::testing::FakeFilesStub;
using ::vision_gateway::testing::FakeGeminiClient;
using ::vision_gateway::testing::MakePng;
using ::vision_gateway::testing::StatusIs;

gemini::GenerateContentResponse Answer(const std::string& text,
                                       const std::string& finish = "STOP") {
  return testing::AnswerChunk(text, finish, "gemini-3-flash-preview");
}

using ::vision_gateway::testing::Collected;

std::string Encoded(const gemini::GenerateContentRequest& request) {
  auto body = gemini::EncodeGenerateContentRequest(request);
  EXPECT_TRUE(body.ok()) << body.status();
  return body.ok() ? *body : "";
}

std::string ErrorReason(const v1::BatchItemStatus& status) {
  for (const auto& any : status.details()) {
    google::rpc::ErrorInfo info;
    if (any.type_url() == "type.googleapis.com/google.rpc.ErrorInfo" &&
        info.ParseFromString(any.value())) {
      return info.reason();
    }
  }
  return "";
}

class BatchTest : public ::testing::Test {
 protected:
  // options_ as the caller's options (the test owns them).
  std::shared_ptr<const VisionOptions> Options() {
    return std::shared_ptr<const VisionOptions>(std::shared_ptr<void>(), &options_);
  }

  // The files runtime, made with options_ as they are at the first use (no hash cache).
  FilesContext Files() {
    if (files_runtime_ == nullptr) {
      options_.file_hash_ttl = absl::ZeroDuration();
      files_runtime_ = std::make_shared<const FilesRuntime>(
          std::shared_ptr<gemini::FilesStub>(std::shared_ptr<void>(), &files_), timer_, options_,
          &cpu_, nullptr);
    }
    return FilesContext{.runtime = files_runtime_};
  }

  // 400x200 white image with a red rectangle.
  std::string png_ = MakePng(400, 200, {255, 255, 255}, {220, 20, 20}, 100, 50, 200, 150);
  FakeGeminiClient gemini_;
  FakeBatchesStub batches_;
  FakeFilesStub files_;
  ThreadPool cpu_{2};
  std::shared_ptr<Timer> timer_ = MakeThreadTimer();
  VisionOptions options_;
  std::shared_ptr<const FilesRuntime> files_runtime_;  // Files()

  BatchContext Context(const std::string& owner_tag = "") {
    return BatchContext{.batches = &batches_, .cpu = &cpu_, .options = &options_,
                        .owner_tag = owner_tag, .record = nullptr};
  }

  absl::StatusOr<BatchItemRequest> Build(const v1::CreateBatchHeader& header,
                                         v1::CreateBatchItem item) {
    absl::StatusOr<BatchItemRequest> out = absl::UnknownError("not called");
    absl::Notification done;
    BuildBatchItem(Files(), options_, header, std::move(item), absl::InfiniteFuture(),
                   std::make_shared<StagedCall>(), [&](absl::StatusOr<BatchItemRequest> r) {
                     out = std::move(r);
                     done.Notify();
                   });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    return out;
  }

  v1::CreateBatchItem Item(const std::string& key) {
    v1::CreateBatchItem item;
    item.set_key(key);
    item.mutable_image()->set_content(png_);
    return item;
  }

  // The online Detect's upstream request and results for `answer`.
  template <typename Response, typename Request>
  std::pair<gemini::GenerateContentRequest, std::vector<Response>> Online(
      Request request, const gemini::GenerateContentResponse& answer) {
    Collected<Response> out;
    const size_t before = gemini_.calls().size();
    absl::StatusOr<std::shared_ptr<gemini::PendingCall>> started;
    if constexpr (std::is_same_v<Response, v1::DetectResponse>) {
      started = StartDetect(gemini_, cpu_, options_, request, absl::InfiniteFuture(),
                            out.Callbacks());
    } else {
      started = StartSegment(gemini_, cpu_, options_, request, absl::InfiniteFuture(),
                             out.Callbacks());
    }
    EXPECT_TRUE(started.ok()) << started.status();
    EXPECT_TRUE(gemini_.WaitForCalls(before + 1));
    auto call = gemini_.calls().back();
    gemini::GenerateContentRequest sent = call->request;
    call->observer.on_chunk(answer);
    call->observer.on_done(absl::OkStatus());
    EXPECT_TRUE(out.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_TRUE(out.status.ok()) << out.status;
    return {std::move(sent), std::move(out.responses)};
  }

  std::vector<v1::BatchResult> Process(const std::string& line_key,
                                       const gemini::GenerateContentResponse& answer,
                                       v1::BatchTask task) {
    gemini::BatchResponseLine line;
    line.key = line_key;
    line.response = answer;
    std::vector<v1::BatchResult> results;
    ProcessBatchLine(line, task, "gemini-3-flash-preview", options_,
                     [&](v1::BatchResult r) { results.push_back(std::move(r)); });
    return results;
  }
};

TEST_F(BatchTest, LineKeyRoundTripsAndRejectsWhatTheGatewayDidNotWrite) {
  const BatchItemKey key{.task = v1::BATCH_TASK_SEGMENT, .max_objects = 25,
                         .threshold_milli = 500, .width = 4000, .height = 3000,
                         .mime_type = "image/jpeg", .caller_key = "photo/1.jpg \xE2\x9C\x93"};
  const std::string encoded = EncodeBatchItemKey(key);
  EXPECT_LE(encoded.size(), kMaxLineKeyBytes);
  auto decoded = DecodeBatchItemKey(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->task, key.task);
  EXPECT_EQ(decoded->max_objects, 25);
  EXPECT_EQ(decoded->threshold_milli, 500);
  EXPECT_EQ(decoded->width, 4000);
  EXPECT_EQ(decoded->height, 3000);
  EXPECT_EQ(decoded->mime_type, "image/jpeg");
  EXPECT_EQ(decoded->caller_key, key.caller_key);
  // The longest caller key still fits.
  BatchItemKey longest = key;
  longest.caller_key = std::string(kMaxBatchKeyBytes, '\xff');
  EXPECT_LE(EncodeBatchItemKey(longest).size(), kMaxLineKeyBytes);
  EXPECT_TRUE(DecodeBatchItemKey(EncodeBatchItemKey(longest)).ok());

  const std::string b64 = absl::WebSafeBase64Escape("k");
  for (const std::string& bad : std::vector<std::string>{
           "", "k", absl::StrCat("vg2.s.25.500.4.3.j.", b64),
           absl::StrCat("vg1.q.25.500.4.3.j.", b64),
           absl::StrCat("vg1.d.1001.0.4.3.j.", b64),      // max_objects over 1000
           absl::StrCat("vg1.d.0.0.4.3.j.", b64),         // no max_objects
           absl::StrCat("vg1.s.25.0.4.3.j.", b64),        // segment without a threshold
           absl::StrCat("vg1.d.25.500.4.3.j.", b64),      // detect with a threshold
           absl::StrCat("vg1.d.25.0.1679616.3.j.", b64),  // over the largest dimension
           absl::StrCat("vg1.d.25.0.4.0.j.", b64),        // one side unknown
           absl::StrCat("vg1.d.25.0.04.3.j.", b64),       // leading zero
           absl::StrCat("vg1.d.25.0.-4.3.j.", b64), absl::StrCat("vg1.d.25.0.4.3.z.", b64),
           "vg1.d.25.0.4.3.j.", "vg1.d.25.0.4.3.j.a+b/",
           absl::StrCat("vg1.d.25.0.4.3.j.", absl::WebSafeBase64Escape(std::string(129, 'k'))),
           absl::StrCat("vg1.d.25.0.4.3.j.", b64, ".x")}) {
    EXPECT_FALSE(DecodeBatchItemKey(bad).ok()) << bad;
  }
}

TEST_F(BatchTest, DisplayNameTagCarriesTaskAndOwner) {
  const std::string owner = OwnerTagOf("alice");
  const std::string stored = EncodeBatchDisplayName("nightly", v1::BATCH_TASK_DETECT, owner);
  BatchDisplayName name = DecodeBatchDisplayName(stored);
  EXPECT_TRUE(name.tagged);
  EXPECT_EQ(name.display_name, "nightly");
  EXPECT_EQ(name.task, v1::BATCH_TASK_DETECT);
  EXPECT_EQ(name.owner_tag, owner);
  EXPECT_TRUE(BatchVisibleTo(name, owner));
  EXPECT_TRUE(BatchVisibleTo(name, ""));
  EXPECT_FALSE(BatchVisibleTo(name, OwnerTagOf("bob")));

  BatchDisplayName open = DecodeBatchDisplayName(
      EncodeBatchDisplayName("", v1::BATCH_TASK_CAPTION, ""));
  EXPECT_TRUE(open.tagged);
  EXPECT_EQ(open.owner_tag, "");
  EXPECT_FALSE(BatchVisibleTo(open, owner));

  // Jobs made elsewhere carry no valid tag: nobody's with authentication on.
  for (const std::string& foreign : {std::string("my job"), std::string("x|vg-batch=q.-"),
                                     std::string("x|vg-batch=d.ABCDEFGH")}) {
    BatchDisplayName untagged = DecodeBatchDisplayName(foreign);
    EXPECT_FALSE(untagged.tagged) << foreign;
    EXPECT_EQ(untagged.display_name, foreign);
    EXPECT_FALSE(BatchVisibleTo(untagged, owner));
  }
}

TEST_F(BatchTest, DetectItemRequestIsTheOnlineRequest) {
  v1::CreateBatchHeader header;
  header.set_task(v1::BATCH_TASK_DETECT);
  header.set_prompt("the red things");
  header.set_max_objects(7);
  header.mutable_options()->set_temperature(0.25f);
  auto built = Build(header, Item("a"));
  ASSERT_TRUE(built.ok()) << built.status();

  v1::DetectRequest online;
  online.mutable_image()->set_content(png_);
  online.set_prompt("the red things");
  online.set_max_objects(7);
  online.mutable_options()->set_temperature(0.25f);
  auto [sent, responses] = Online<v1::DetectResponse>(online, Answer("[]"));
  EXPECT_EQ(Encoded(built->request), Encoded(sent));

  auto key = DecodeBatchItemKey(built->line_key);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->task, v1::BATCH_TASK_DETECT);
  EXPECT_EQ(key->max_objects, 7);
  EXPECT_EQ(key->width, 400);
  EXPECT_EQ(key->height, 200);
  EXPECT_EQ(key->mime_type, "image/png");
  EXPECT_EQ(key->caller_key, "a");
}

TEST_F(BatchTest, SegmentAndCaptionItemRequestsAreTheOnlineRequests) {
  v1::CreateBatchHeader header;
  header.set_task(v1::BATCH_TASK_SEGMENT);
  header.set_threshold(0.75f);
  v1::CreateBatchItem item = Item("s");
  item.set_prompt("the rectangle");
  auto built = Build(header, item);
  ASSERT_TRUE(built.ok()) << built.status();
  v1::SegmentRequest online;
  online.mutable_image()->set_content(png_);
  online.set_prompt("the rectangle");
  online.set_threshold(0.75f);
  auto [sent, responses] = Online<v1::SegmentResponse>(online, Answer("[]"));
  EXPECT_EQ(Encoded(built->request), Encoded(sent));
  auto key = DecodeBatchItemKey(built->line_key);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->threshold_milli, 750);

  v1::CreateBatchHeader caption_header;
  caption_header.set_task(v1::BATCH_TASK_CAPTION);
  caption_header.set_prompt("Describe it.");
  auto caption = Build(caption_header, Item("c"));
  ASSERT_TRUE(caption.ok()) << caption.status();
  v1::CaptionRequest caption_online;
  caption_online.add_images()->set_content(png_);
  caption_online.set_prompt("Describe it.");
  Collected<v1::CaptionResponse> out;
  const size_t before = gemini_.calls().size();
  ASSERT_TRUE(StartCaption(gemini_, options_, caption_online, absl::InfiniteFuture(),
                           out.Callbacks())
                  .ok());
  ASSERT_TRUE(gemini_.WaitForCalls(before + 1));
  EXPECT_EQ(Encoded(caption->request), Encoded(gemini_.calls().back()->request));
  gemini_.calls().back()->observer.on_done(absl::CancelledError("done"));
}

TEST_F(BatchTest, ItemValidationIsTheOnlineValidation) {
  v1::CreateBatchHeader header;
  header.set_task(v1::BATCH_TASK_DETECT);
  v1::CreateBatchItem item;
  item.set_key("bad");
  item.mutable_image()->set_content("not an image");
  EXPECT_THAT(Build(header, item).status(), StatusIs(absl::StatusCode::kInvalidArgument));

  EXPECT_THAT(ValidateBatchHeader(v1::CreateBatchHeader(), options_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  header.set_max_objects(1001);
  EXPECT_THAT(ValidateBatchHeader(header, options_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  header.set_max_objects(0);
  header.set_display_name("x|vg-batch=d.-");
  EXPECT_THAT(ValidateBatchHeader(header, options_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  header.set_display_name("fine");
  EXPECT_TRUE(ValidateBatchHeader(header, options_).ok());
  header.set_task(v1::BATCH_TASK_SEGMENT);
  header.set_threshold(1.5f);
  EXPECT_THAT(ValidateBatchHeader(header, options_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(BatchTest, DetectResultsArePostProcessedAsOnline) {
  const gemini::GenerateContentResponse answer = Answer(
      R"([{"box_2d": [250, 250, 750, 500], "label": "red"}, {"box_2d": [1200, 990, -5, 10],)"
      R"( "label": "x"}, {"box_2d": [10, 10, 10, 500], "label": "flat"}, 17])");
  v1::DetectRequest online;
  online.mutable_image()->set_content(png_);
  auto [sent, expected] = Online<v1::DetectResponse>(online, answer);

  v1::CreateBatchHeader header;
  header.set_task(v1::BATCH_TASK_DETECT);
  auto built = Build(header, Item("k1"));
  ASSERT_TRUE(built.ok());
  auto results = Process(built->line_key, answer, v1::BATCH_TASK_DETECT);
  ASSERT_EQ(results.size(), expected.size());
  ASSERT_EQ(results.size(), 4u);  // ImageInfo, two detections, Summary
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].key(), "k1");
    ASSERT_TRUE(results[i].has_detect());
    EXPECT_EQ(results[i].detect().SerializeAsString(), expected[i].SerializeAsString())
        << i << ": " << results[i].detect().DebugString() << " vs " << expected[i].DebugString();
  }
  EXPECT_EQ(results[1].detect().detection().box().x_min(), 100);
  EXPECT_EQ(results[3].detect().summary().dropped(), 2);
}

TEST_F(BatchTest, SegmentResultsArePostProcessedAsOnline) {
  image::BinaryMask left_half{.width = 256, .height = 256, .data = std::vector<uint8_t>(65536)};
  for (int y = 0; y < 256; ++y) {
    for (int x = 0; x < 128; ++x) left_half.data[y * 256 + x] = 1;
  }
  const gemini::GenerateContentResponse answer = Answer(absl::StrCat(
      R"([{"box_2d":[250,250,750,500],"label":"red","mask":"data:image/png;base64,)",
      absl::Base64Escape(image::EncodeMaskPng(left_half)),
      R"("},{"box_2d":[0,0,100,100],"label":"junk","mask":"<start_of_mask><seg_35>"}])"));
  v1::SegmentRequest online;
  online.mutable_image()->set_content(png_);
  online.set_threshold(0.4f);
  auto [sent, expected] = Online<v1::SegmentResponse>(online, answer);

  v1::CreateBatchHeader header;
  header.set_task(v1::BATCH_TASK_SEGMENT);
  header.set_threshold(0.4f);
  auto built = Build(header, Item("s1"));
  ASSERT_TRUE(built.ok());
  auto results = Process(built->line_key, answer, v1::BATCH_TASK_SEGMENT);
  ASSERT_EQ(results.size(), expected.size());
  ASSERT_EQ(results.size(), 3u);
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].has_segment());
    EXPECT_EQ(results[i].segment().SerializeAsString(), expected[i].SerializeAsString()) << i;
  }
  EXPECT_EQ(results[1].segment().mask().area(), 50 * 100);
  EXPECT_EQ(results[2].segment().summary().without_mask(), 1);
}

TEST_F(BatchTest, CaptionResultIsTheOnlineFinalMessage) {
  const gemini::GenerateContentResponse answer = Answer("A red rectangle.");
  BatchItemKey key;
  key.task = v1::BATCH_TASK_CAPTION;
  key.caller_key = "c1";
  auto results = Process(EncodeBatchItemKey(key), answer, v1::BATCH_TASK_CAPTION);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_TRUE(results[0].has_caption());
  EXPECT_EQ(results[0].key(), "c1");
  EXPECT_EQ(results[0].caption().text(), "A red rectangle.");
  EXPECT_EQ(results[0].caption().finish_reason(), "STOP");
  EXPECT_EQ(results[0].caption().usage().prompt_tokens(), 270);
  EXPECT_EQ(results[0].caption().model_version(), "gemini-3-flash-preview");
}

TEST_F(BatchTest, ItemFailuresAreOneErrorResultEach) {
  BatchItemKey key;
  key.task = v1::BATCH_TASK_DETECT;
  key.max_objects = 25;
  key.width = 400;
  key.height = 200;
  key.mime_type = "image/png";
  key.caller_key = "k";
  const std::string line_key = EncodeBatchItemKey(key);

  // No JSON array: MODEL_OUTPUT_INVALID, as the online Detect fails (and no partial results).
  auto invalid = Process(line_key, Answer("I see a red box."), v1::BATCH_TASK_DETECT);
  ASSERT_EQ(invalid.size(), 1u);
  EXPECT_EQ(invalid[0].key(), "k");
  ASSERT_TRUE(invalid[0].has_error());
  EXPECT_EQ(invalid[0].error().code(), static_cast<int>(absl::StatusCode::kInternal));
  EXPECT_EQ(ErrorReason(invalid[0].error()), "MODEL_OUTPUT_INVALID");

  // Gemini's per-item error goes through the error table.
  gemini::BatchResponseLine failed;
  failed.key = line_key;
  failed.error = ::vision_gateway::WithOutcome(absl::ResourceExhaustedError("Gemini: quota"),
                             "UPSTREAM_RATE_LIMITED");
  std::vector<v1::BatchResult> out;
  ProcessBatchLine(failed, v1::BATCH_TASK_DETECT, "m", options_,
                   [&](v1::BatchResult r) { out.push_back(std::move(r)); });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key(), "k");
  EXPECT_EQ(out[0].error().code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(ErrorReason(out[0].error()), "UPSTREAM_RATE_LIMITED");

  // A blocked prompt.
  gemini::GenerateContentResponse blocked;
  blocked.prompt_feedback = gemini::PromptFeedback{.block_reason = "SAFETY"};
  auto refused = Process(line_key, blocked, v1::BATCH_TASK_DETECT);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(ErrorReason(refused[0].error()), "CONTENT_BLOCKED");

  // A key of another task, or one the gateway did not write: an error without a key.
  for (const std::string& foreign : {line_key, std::string("somebody-elses-key")}) {
    auto stray = Process(foreign, Answer("[]"), v1::BATCH_TASK_SEGMENT);
    ASSERT_EQ(stray.size(), 1u);
    EXPECT_EQ(stray[0].key(), "");
    EXPECT_EQ(ErrorReason(stray[0].error()), "UPSTREAM_BAD_RESPONSE");
  }
}

// A SUCCEEDED detect job whose responses file has `keys` items answered with one box each.
class BatchReaderTest : public BatchTest {
 protected:
  std::string ResponsesFile(const std::vector<std::string>& keys) {
    std::string file;
    for (const std::string& k : keys) {
      BatchItemKey key;
      key.task = v1::BATCH_TASK_DETECT;
      key.max_objects = 25;
      key.width = 400;
      key.height = 200;
      key.mime_type = "image/png";
      key.caller_key = k;
      absl::StrAppend(&file, R"({"key":")", EncodeBatchItemKey(key), R"(","response":)",
                      gemini::EncodeGenerateContentResponse(
                          Answer(R"([{"box_2d":[250,250,750,500],"label":"red"}])")),
                      "}\n");
    }
    return file;
  }

  void PutJob(const std::string& state, const std::string& owner_tag = "") {
    gemini::BatchJob job;
    job.name = "batches/b1";
    job.display_name = EncodeBatchDisplayName("nightly", v1::BATCH_TASK_DETECT, owner_tag);
    job.model = "models/gemini-3-flash-preview";
    job.state = state;
    job.responses_file = "files/responses1";
    batches_.PutJob(job);
  }

  struct Read {
    std::vector<v1::BatchResult> results;
    absl::Status status;
    absl::Notification done;
    std::shared_ptr<gemini::PendingCall> call;
  };

  // Reads everything, taking each result at once.
  void ReadAll(Read& read, const std::string& start_after_key = "",
               const std::string& owner_tag = "") {
    v1::ReadBatchResultsRequest request;
    request.set_name("batches/b1");
    request.set_start_after_key(start_after_key);
    auto started = StartReadBatchResults(
        Context(owner_tag), request, absl::InfiniteFuture(),
        BatchResultsCallbacks{
            .on_result =
                [&read](v1::BatchResult r, absl::AnyInvocable<void()> next) {
                  read.results.push_back(std::move(r));
                  next();
                },
            .on_done =
                [&read](absl::Status s) {
                  read.status = std::move(s);
                  read.done.Notify();
                },
        });
    ASSERT_TRUE(started.ok()) << started.status();
    read.call = *started;
    ASSERT_TRUE(read.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }

  static std::vector<std::string> ItemKeys(const std::vector<v1::BatchResult>& results) {
    std::vector<std::string> keys;
    for (const auto& r : results) {
      if (keys.empty() || keys.back() != r.key()) keys.push_back(r.key());
    }
    return keys;
  }
};

TEST_F(BatchReaderTest, ResultsBeforeSucceededAreFailedPreconditionNamingTheState) {
  PutJob("BATCH_STATE_RUNNING");
  Read read;
  ReadAll(read);
  EXPECT_THAT(read.status, StatusIs(absl::StatusCode::kFailedPrecondition,
                                    ::testing::HasSubstr("BATCH_STATE_RUNNING")));
  EXPECT_TRUE(read.results.empty());
  EXPECT_TRUE(batches_.downloads().empty());
}

TEST_F(BatchReaderTest, StreamsEveryItemAcrossPiecesSplitAnywhere) {
  PutJob("BATCH_STATE_SUCCEEDED");
  // 7-byte pieces: every line spans many pieces, and pieces end mid-line.
  batches_.SetResponses(ResponsesFile({"a", "b", "c"}), 7);
  Read read;
  ReadAll(read);
  ASSERT_TRUE(read.status.ok()) << read.status;
  ASSERT_EQ(read.results.size(), 9u);  // 3 x (ImageInfo, Detection, Summary)
  EXPECT_EQ(ItemKeys(read.results), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(read.results[1].detect().detection().box().x_min(), 100);
  EXPECT_TRUE(read.results[8].detect().has_summary());
  EXPECT_EQ(batches_.downloads(), std::vector<std::string>{"files/responses1"});
}

TEST_F(BatchReaderTest, StartAfterKeyResumesWithTheNextItem) {
  PutJob("BATCH_STATE_SUCCEEDED");
  batches_.SetResponses(ResponsesFile({"a", "b", "c", "d"}), 100);
  Read read;
  ReadAll(read, "b");
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(ItemKeys(read.results), (std::vector<std::string>{"c", "d"}));
  Read none;
  ReadAll(none, "zzz");
  EXPECT_TRUE(none.status.ok());
  EXPECT_TRUE(none.results.empty());
}

TEST_F(BatchReaderTest, ReaderWaitsForItsConsumerBeforeAskingForMore) {
  PutJob("BATCH_STATE_SUCCEEDED");
  const std::string file = ResponsesFile({"a", "b", "c"});
  batches_.SetResponses(file, 64);
  std::vector<absl::AnyInvocable<void()>> held;
  absl::Mutex mu;
  bool finished = false;
  absl::Status status;
  v1::ReadBatchResultsRequest request;
  request.set_name("batches/b1");
  auto started = StartReadBatchResults(
      Context(), request, absl::InfiniteFuture(),
      BatchResultsCallbacks{
          .on_result =
              [&](v1::BatchResult, absl::AnyInvocable<void()> next) {
                absl::MutexLock lock(&mu);
                held.push_back(std::move(next));
              },
          .on_done =
              [&](absl::Status s) {
                absl::MutexLock lock(&mu);
                status = s;
                finished = true;
              },
      });
  ASSERT_TRUE(started.ok());
  auto one_held = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return held.size() == 1; };
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&one_held), absl::Seconds(10)));
  }
  // The first result is out and not taken: nothing more is read from Gemini than the pieces
  // holding the first line (one piece at a time), and no second result is sent.
  batches_.Drain();
  const int first_line_pieces = static_cast<int>(file.find('\n') / 64) + 1;
  EXPECT_LE(batches_.pieces_sent(), first_line_pieces);
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(held.size(), 1u);
  }
  // Taking results one by one drains the file.
  size_t taken = 0;
  while (true) {
    absl::AnyInvocable<void()> next;
    {
      absl::MutexLock lock(&mu);
      auto more = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return held.size() > taken || finished;
      };
      ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&more), absl::Seconds(10)));
      if (held.size() > taken) {
        next = std::move(held[taken++]);
      } else {
        break;
      }
    }
    next();
  }
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(taken, 9u);
}

TEST_F(BatchReaderTest, CancellingWhileTheConsumerHoldsEndsTheRead) {
  PutJob("BATCH_STATE_SUCCEEDED");
  batches_.SetResponses(ResponsesFile({"a", "b"}), 16);
  absl::Notification first, done;
  absl::Status status;
  absl::AnyInvocable<void()> kept;
  v1::ReadBatchResultsRequest request;
  request.set_name("batches/b1");
  auto started = StartReadBatchResults(
      Context(), request, absl::InfiniteFuture(),
      BatchResultsCallbacks{
          .on_result =
              [&](v1::BatchResult, absl::AnyInvocable<void()> next) {
                kept = std::move(next);
                first.Notify();
              },
          .on_done =
              [&](absl::Status s) {
                status = s;
                done.Notify();
              },
      });
  ASSERT_TRUE(started.ok());
  ASSERT_TRUE(first.WaitForNotificationWithTimeout(absl::Seconds(10)));
  (*started)->Cancel();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kCancelled));
  kept();  // late: harmless
  batches_.Drain();
}

TEST_F(BatchReaderTest, InlineResponsesAreReadToo) {
  gemini::BatchJob job;
  job.name = "batches/b1";
  job.display_name = EncodeBatchDisplayName("", v1::BATCH_TASK_DETECT, "");
  job.model = "models/gemini-3-flash-preview";
  job.state = "BATCH_STATE_SUCCEEDED";
  for (const char* k : {"x", "y"}) {
    gemini::BatchResponseLine& line = job.inlined_responses.emplace_back();
    BatchItemKey key;
    key.task = v1::BATCH_TASK_DETECT;
    key.max_objects = 25;
    key.caller_key = k;
    line.key = EncodeBatchItemKey(key);
    line.response = Answer(R"([{"box_2d":[250,250,750,500],"label":"red"}])");
  }
  batches_.PutJob(job);
  Read read;
  ReadAll(read, "x");
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(ItemKeys(read.results), std::vector<std::string>{"y"});
  // Unknown size: normalized boxes only, as online for a foreign file.
  EXPECT_TRUE(read.results[0].detect().image_info().size_unknown());
  EXPECT_FALSE(read.results[1].detect().detection().has_box());
  EXPECT_TRUE(batches_.downloads().empty());
}

TEST_F(BatchReaderTest, OwnershipHidesOtherCallersJobs) {
  const std::string alice = OwnerTagOf("alice");
  PutJob("BATCH_STATE_SUCCEEDED", alice);
  batches_.SetResponses(ResponsesFile({"a"}), 100);
  Read bob;
  ReadAll(bob, "", OwnerTagOf("bob"));
  EXPECT_THAT(bob.status, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(batches_.downloads().empty());
  Read own;
  ReadAll(own, "", alice);
  EXPECT_TRUE(own.status.ok()) << own.status;

  absl::Notification got;
  absl::StatusOr<v1::BatchJob> job;
  v1::GetBatchRequest get;
  get.set_name("batches/b1");
  ASSERT_TRUE(StartGetBatch(Context(OwnerTagOf("bob")), get, absl::InfiniteFuture(),
                            [&](absl::StatusOr<v1::BatchJob> j) {
                              job = std::move(j);
                              got.Notify();
                            })
                  .ok());
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(job.status(), StatusIs(absl::StatusCode::kNotFound));

  absl::Notification deleted;
  absl::Status delete_status;
  v1::DeleteBatchRequest del;
  del.set_name("batches/b1");
  ASSERT_TRUE(StartDeleteBatch(Context(OwnerTagOf("bob")), del, absl::InfiniteFuture(),
                               [&](absl::Status s) {
                                 delete_status = s;
                                 deleted.Notify();
                               })
                  .ok());
  ASSERT_TRUE(deleted.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(delete_status, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(batches_.cancelled_or_deleted().empty());
}

TEST_F(BatchTest, ListBatchesKeepsOnlyTheCallersJobsInPages) {
  const std::string alice = OwnerTagOf("alice");
  for (int i = 0; i < 7; ++i) {
    gemini::BatchJob job;
    job.name = absl::StrCat("batches/j", i);
    job.display_name = EncodeBatchDisplayName(absl::StrCat("job ", i), v1::BATCH_TASK_CAPTION,
                                              i % 2 == 0 ? alice : OwnerTagOf("bob"));
    job.model = "models/gemini-3-flash-preview";
    job.state = "BATCH_STATE_PENDING";
    batches_.PutJob(job);
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListBatchesRequest request;
    request.set_page_size(3);
    request.set_page_token(token);
    absl::Notification got;
    absl::StatusOr<v1::ListBatchesResponse> page;
    ASSERT_TRUE(StartListBatches(Context(alice), request, absl::InfiniteFuture(),
                                 [&](absl::StatusOr<v1::ListBatchesResponse> p) {
                                   page = std::move(p);
                                   got.Notify();
                                 })
                    .ok());
    ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(10)));
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->batches_size(), 3);
    for (const auto& job : page->batches()) {
      seen.push_back(job.name());
      EXPECT_EQ(job.task(), v1::BATCH_TASK_CAPTION);
      EXPECT_EQ(job.model(), "gemini-3-flash-preview");
      EXPECT_EQ(job.state(), v1::BatchJob::STATE_PENDING);
      EXPECT_TRUE(absl::StartsWith(job.display_name(), "job "));
    }
    token = page->next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(seen, (std::vector<std::string>{"batches/j0", "batches/j2", "batches/j4",
                                            "batches/j6"}));
}

TEST_F(BatchTest, CreateWritesOneLinePerItemUploadsItAndCreatesTheJob) {
  options_.upload_idle_timeout = absl::ZeroDuration();
  BatchCreateContext context{.files = Files(), .options = Options(), .batches = &batches_,
                             .spool_dir = ::testing::TempDir(), .max_items = 10};
  context.files.owner_tag = OwnerTagOf("alice");
  std::shared_ptr<BatchCreateTask> task;
  absl::Mutex mu;
  int reads = 0;
  absl::Notification done;
  absl::StatusOr<v1::BatchJob> job;
  task = MakeBatchCreate(context, absl::InfiniteFuture(),
                         BatchCreateCallbacks{
                             .read =
                                 [&] {
                                   absl::MutexLock lock(&mu);
                                   ++reads;
                                 },
                             .done =
                                 [&](absl::StatusOr<v1::BatchJob> j) {
                                   job = std::move(j);
                                   done.Notify();
                                 },
                         });
  auto await_reads = [&](int n) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return reads >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  };
  task->Begin();
  ASSERT_TRUE(await_reads(1));
  v1::CreateBatchRequest header;
  header.mutable_header()->set_task(v1::BATCH_TASK_DETECT);
  header.mutable_header()->set_display_name("nightly");
  task->OnMessage(header);
  ASSERT_TRUE(await_reads(2));
  std::vector<BatchItemRequest> expected;
  for (int i = 0; i < 3; ++i) {
    v1::CreateBatchRequest item;
    *item.mutable_item() = Item(absl::StrCat("img-", i));
    auto built = Build(header.header(), item.item());
    ASSERT_TRUE(built.ok());
    expected.push_back(*std::move(built));
    task->OnMessage(item);
    ASSERT_TRUE(await_reads(3 + i));
  }
  task->OnHalfClose();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->name(), "batches/job1");
  EXPECT_EQ(job->display_name(), "nightly");
  EXPECT_EQ(job->task(), v1::BATCH_TASK_DETECT);

  const auto created = batches_.created();
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0].first, "gemini-3-flash-preview");
  const auto uploaded = files_.uploaded();
  ASSERT_EQ(uploaded.count(created[0].second.input_file), 1u);
  const std::string& file = uploaded.at(created[0].second.input_file);
  // The file id carries the owner tag (file isolation), and the job's display name too.
  EXPECT_EQ(DecodeFileId(created[0].second.input_file).owner_tag, OwnerTagOf("alice"));
  EXPECT_EQ(DecodeBatchDisplayName(created[0].second.display_name).owner_tag,
            OwnerTagOf("alice"));
  EXPECT_GT(file.size(), 256u);  // more than one upload chunk of the fake's granularity
  std::vector<std::string> lines = absl::StrSplit(file, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  for (size_t i = 0; i < lines.size(); ++i) {
    auto line = gemini::EncodeBatchRequestLine(expected[i].line_key, expected[i].request);
    ASSERT_TRUE(line.ok());
    EXPECT_EQ(lines[i], *line) << i;
  }
}

TEST_F(BatchTest, CreateRefusesRepeatedKeysAndTooManyItems) {
  options_.upload_idle_timeout = absl::ZeroDuration();
  for (const bool repeat : {true, false}) {
    BatchCreateContext context{.files = Files(), .options = Options(), .batches = &batches_,
                               .spool_dir = ::testing::TempDir(), .max_items = repeat ? 2 : 1};
    absl::Notification done;
    absl::StatusOr<v1::BatchJob> job;
    absl::Mutex mu;
    int reads = 0;
    auto task = MakeBatchCreate(context, absl::InfiniteFuture(),
                                BatchCreateCallbacks{
                                    .read =
                                        [&] {
                                          absl::MutexLock lock(&mu);
                                          ++reads;
                                        },
                                    .done =
                                        [&](absl::StatusOr<v1::BatchJob> j) {
                                          job = std::move(j);
                                          done.Notify();
                                        },
                                });
    task->Begin();
    v1::CreateBatchRequest header;
    header.mutable_header()->set_task(v1::BATCH_TASK_CAPTION);
    task->OnMessage(header);
    v1::CreateBatchRequest item;
    *item.mutable_item() = Item("same");
    task->OnMessage(item);
    {
      absl::MutexLock lock(&mu);
      auto third = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return reads >= 3; };
      ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&third), absl::Seconds(10)));
    }
    if (!repeat) item.mutable_item()->set_key("other");
    task->OnMessage(item);
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_THAT(job.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                       ::testing::HasSubstr(repeat ? "already used"
                                                                   : "at most 1")));
  }
  EXPECT_TRUE(batches_.created().empty());
}

}  // namespace
}  // namespace vision_gateway::vision
