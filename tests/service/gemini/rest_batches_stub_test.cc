// The REST BatchesStub against the emulator (loopback, port 0): create inline and from a file,
// get until SUCCEEDED, list paging, cancel, delete, and a paced download of the responses file.
#include "service/gemini/rest_batches_stub.h"

#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "emulator/emulator.h"
#include "emulator/gemini_wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/gemini/batch_codec.h"
#include "service/gemini/gemini_client.h"
#include "service/http/http_client.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::vision_gateway::testing::IsOk;

constexpr char kKey[] = "stub-key-secret";
constexpr char kModel[] = "gemini-3-flash-preview";

GenerateContentRequest Request(std::string text) {
  GenerateContentRequest request;
  Content content;
  content.role = "user";
  Part part;
  part.text = std::move(text);
  content.parts.push_back(part);
  request.contents.push_back(content);
  return request;
}

class RestBatchesStubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emulator::EmulatorOptions options;
    options.api_key = kKey;
    // An hour of processing: the tests move the emulator's clock rather than wait.
    options.config.batch_processing = std::chrono::hours(1);
    auto started = emulator::Emulator::Start(options);
    ASSERT_THAT(started, IsOk());
    emulator_ = *std::move(started);
    auto http = http::MakeHttpClient({});
    ASSERT_THAT(http, IsOk());
    http_ = *http;
    GeminiOptions gemini;
    gemini.base_url = emulator_->base_url();
    gemini.api_key = ApiKey(kKey);
    auto stub = MakeRestBatchesStub(gemini, http_);
    ASSERT_THAT(stub, IsOk());
    stub_ = *std::move(stub);
    auto client = MakeGeminiClient(gemini, http_);
    ASSERT_THAT(client, IsOk());
    client_ = *std::move(client);
  }

  CallOptions Deadline() { return CallOptions{.deadline = absl::Now() + absl::Seconds(20)}; }

  absl::StatusOr<BatchJob> Create(CreateBatchRequest request, std::string model = kModel) {
    std::promise<absl::StatusOr<BatchJob>> result;
    stub_->CreateBatch(model, std::move(request), Deadline(),
                       [&](absl::StatusOr<BatchJob> job) { result.set_value(std::move(job)); });
    return result.get_future().get();
  }
  absl::StatusOr<BatchJob> Get(const std::string& name) {
    std::promise<absl::StatusOr<BatchJob>> result;
    stub_->GetBatch(name, Deadline(),
                    [&](absl::StatusOr<BatchJob> job) { result.set_value(std::move(job)); });
    return result.get_future().get();
  }
  absl::StatusOr<ListBatchesResponse> List(int size, const std::string& token) {
    std::promise<absl::StatusOr<ListBatchesResponse>> result;
    stub_->ListBatches(size, token, Deadline(), [&](absl::StatusOr<ListBatchesResponse> r) {
      result.set_value(std::move(r));
    });
    return result.get_future().get();
  }
  absl::Status Cancel(const std::string& name) {
    std::promise<absl::Status> result;
    stub_->CancelBatch(name, Deadline(), [&](absl::Status s) { result.set_value(std::move(s)); });
    return result.get_future().get();
  }
  absl::Status Delete(const std::string& name) {
    std::promise<absl::Status> result;
    stub_->DeleteBatch(name, Deadline(), [&](absl::Status s) { result.set_value(std::move(s)); });
    return result.get_future().get();
  }

  // Uploads `bytes` with the REST files stub; returns the file's name.
  std::string Upload(const std::string& bytes) {
    std::promise<absl::StatusOr<UploadSession>> session;
    StartUploadRequest start;
    start.mime_type = "application/jsonl";
    start.size_bytes = static_cast<int64_t>(bytes.size());
    client_->StartUpload(start, Deadline(), [&](absl::StatusOr<UploadSession> s) {
      session.set_value(std::move(s));
    });
    absl::StatusOr<UploadSession> opened = session.get_future().get();
    EXPECT_THAT(opened, IsOk());
    if (!opened.ok()) return "";
    std::promise<absl::StatusOr<UploadStatus>> status;
    client_->UploadChunk(opened->upload_url, 0, ChunkBytes(bytes), true, Deadline(),
                         [&](absl::StatusOr<UploadStatus> s) { status.set_value(std::move(s)); });
    absl::StatusOr<UploadStatus> done = status.get_future().get();
    EXPECT_THAT(done, IsOk());
    return done.ok() && done->file.has_value() ? done->file->name : "";
  }

  std::unique_ptr<emulator::Emulator> emulator_;
  std::shared_ptr<http::HttpClient> http_;
  std::unique_ptr<BatchesStub> stub_;
  std::unique_ptr<GeminiClient> client_;
};

TEST_F(RestBatchesStubTest, InlineBatchRunsToSucceededWithKeysRoundTripped) {
  CreateBatchRequest request;
  request.display_name = "inline";
  request.inlined_requests.push_back({.request = Request("one"), .key = "k/1"});
  request.inlined_requests.push_back({.request = Request("two"), .key = "k/2"});
  emulator_->EnqueueForBatchKey("k/2", emulator::ScriptedText("scripted two"));
  absl::StatusOr<BatchJob> job = Create(std::move(request));
  ASSERT_THAT(job, IsOk());
  EXPECT_THAT(job->name, StartsWith("batches/"));
  EXPECT_EQ(job->state, "BATCH_STATE_PENDING");
  EXPECT_EQ(job->model, absl::StrCat("models/", kModel));
  EXPECT_EQ(job->stats.request_count, 2);
  EXPECT_NE(job->create_time, absl::InfinitePast());

  // The key never travels in a URL or a log; it is sent as the header.
  const std::vector<emulator::RecordedRequest> sent = emulator_->Requests();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent.back().Header("x-goog-api-key"), kKey);
  EXPECT_EQ(sent.back().target.find(kKey), std::string::npos);

  emulator_->AdvanceClock(absl::Minutes(31));
  EXPECT_EQ(Get(job->name)->state, "BATCH_STATE_RUNNING");
  emulator_->AdvanceClock(absl::Minutes(30));
  absl::StatusOr<BatchJob> done = Get(job->name);
  ASSERT_THAT(done, IsOk());
  EXPECT_EQ(done->state, "BATCH_STATE_SUCCEEDED");
  EXPECT_NE(done->end_time, absl::InfinitePast());
  EXPECT_EQ(done->stats.successful_request_count, 2);
  ASSERT_EQ(done->inlined_responses.size(), 2u);
  EXPECT_EQ(done->inlined_responses[0].key, "k/1");
  EXPECT_EQ(done->inlined_responses[1].key, "k/2");
  ASSERT_TRUE(done->inlined_responses[1].response.has_value());
  EXPECT_EQ(done->inlined_responses[1].response->candidates[0].content.parts[0].text,
            "scripted two");
}

TEST_F(RestBatchesStubTest, FileBatchAndAPacedDownloadOfItsResponses) {
  std::string input;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<std::string> line =
        EncodeBatchRequestLine(absl::StrCat("item-", i), Request(std::string(2000, 'w')));
    ASSERT_THAT(line, IsOk());
    absl::StrAppend(&input, *line, "\n");
  }
  const std::string file = Upload(input);
  ASSERT_THAT(file, StartsWith("files/"));
  emulator_->EnqueueForBatchKey(
      "item-7", emulator::ScriptedError(429, "Resource has been exhausted."));
  absl::StatusOr<BatchJob> job =
      Create(CreateBatchRequest{.display_name = "file", .input_file = file});
  ASSERT_THAT(job, IsOk());
  EXPECT_EQ(job->input_file, file);
  emulator_->AdvanceClock(absl::Hours(1));
  absl::StatusOr<BatchJob> done = Get(job->name);
  ASSERT_THAT(done, IsOk());
  ASSERT_EQ(done->state, "BATCH_STATE_SUCCEEDED");
  EXPECT_EQ(done->stats.failed_request_count, 1);
  ASSERT_THAT(done->responses_file, StartsWith("files/batch-"));

  // The reader takes one piece at a time, asking for the next from another thread.
  struct Reader {
    absl::Mutex mu;
    std::string bytes;
    int pieces = 0;
    bool in_piece = false;
    bool overlapped = false;
    absl::Notification done;
    absl::Status status;
  } reader;
  std::vector<std::thread> threads;
  DownloadObserver observer;
  observer.on_data = [&](std::string_view piece, absl::AnyInvocable<void()> more) {
    absl::MutexLock lock(&reader.mu);
    reader.overlapped = reader.overlapped || reader.in_piece;
    reader.in_piece = true;
    reader.bytes.append(piece);
    ++reader.pieces;
    threads.emplace_back([&reader, more = std::move(more)]() mutable {
      {
        absl::MutexLock lock(&reader.mu);
        reader.in_piece = false;
      }
      more();
    });
  };
  observer.on_done = [&](absl::Status status) {
    reader.status = std::move(status);
    reader.done.Notify();
  };
  stub_->DownloadFile(done->responses_file, Deadline(), std::move(observer));
  ASSERT_TRUE(reader.done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  {
    absl::MutexLock lock(&reader.mu);
    for (auto& t : threads) t.join();
  }
  ASSERT_THAT(reader.status, IsOk());
  EXPECT_FALSE(reader.overlapped);
  EXPECT_GT(reader.pieces, 1);
  std::vector<std::string> lines = absl::StrSplit(reader.bytes, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<BatchResponseLine> line = DecodeBatchResponseLine(lines[i]);
    ASSERT_THAT(line, IsOk());
    EXPECT_EQ(line->key, absl::StrCat("item-", i));
    if (i == 7) {
      EXPECT_EQ(line->error.code(), absl::StatusCode::kResourceExhausted);
      EXPECT_EQ(GetOutcome(line->error), reasons::kUpstreamRateLimited);
    } else {
      EXPECT_TRUE(line->response.has_value()) << lines[i].substr(0, 200);
    }
  }
}

TEST_F(RestBatchesStubTest, ListPagesCancelAndDelete) {
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) {
    CreateBatchRequest request;
    request.display_name = absl::StrCat("job ", i);
    request.inlined_requests.push_back({.request = Request("x")});
    absl::StatusOr<BatchJob> job = Create(std::move(request));
    ASSERT_THAT(job, IsOk());
    names.push_back(job->name);
  }
  absl::StatusOr<ListBatchesResponse> page = List(2, "");
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->batches.size(), 2u);
  EXPECT_EQ(page->batches[0].name, names[2]);
  ASSERT_FALSE(page->next_page_token.empty());
  absl::StatusOr<ListBatchesResponse> last = List(2, page->next_page_token);
  ASSERT_THAT(last, IsOk());
  ASSERT_EQ(last->batches.size(), 1u);
  EXPECT_EQ(last->batches[0].name, names[0]);
  EXPECT_TRUE(last->next_page_token.empty());

  EXPECT_THAT(Cancel(names[1]), IsOk());
  EXPECT_EQ(Get(names[1])->state, "BATCH_STATE_CANCELLED");
  EXPECT_THAT(Delete(names[0]), IsOk());
  absl::StatusOr<BatchJob> gone = Get(names[0]);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetOutcome(gone.status()), reasons::kUpstreamNotFound);

  emulator_->AdvanceClock(absl::Hours(2));
  const absl::Status late = Cancel(names[2]);
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(RestBatchesStubTest, ErrorsAndBadArguments) {
  CreateBatchRequest request;
  request.display_name = "x";
  request.inlined_requests.push_back({.request = Request("x")});
  absl::StatusOr<BatchJob> retired = Create(request, "gemini-2.5-flash");
  EXPECT_EQ(retired.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(retired.status().message(), HasSubstr("batchGenerateContent"));
  EXPECT_EQ(Create(request, "bad/model").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get("batches/NOPE").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(List(-1, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(List(10, "a&b").status().code(), absl::StatusCode::kInvalidArgument);

  // A wrong key: mapped, and never echoed.
  emulator_->SetApiKey("another-key");
  absl::StatusOr<BatchJob> denied = Get("batches/abc");
  EXPECT_FALSE(denied.ok());
  EXPECT_EQ(std::string(denied.status().ToString()).find(kKey), std::string::npos);
  emulator_->SetApiKey(kKey);

  absl::Notification done;
  absl::Status download;
  DownloadObserver observer;
  observer.on_data = [](std::string_view, absl::AnyInvocable<void()> more) { more(); };
  observer.on_done = [&](absl::Status s) {
    download = std::move(s);
    done.Notify();
  };
  stub_->DownloadFile("files/missing", Deadline(), std::move(observer));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(download.code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace vision_gateway::gemini
