// Batch jobs (#20) through the whole stack: the real server, the REST batches stub under the
// instrumented decorator, the emulator's Batch API. Every RPC; the job's state machine on the
// emulator's clock; exact typed results (Detect boxes in pixels of the upright image, drawn
// shapes checked against the truth); per-item failures as statuses with the other items intact
// and one log line per read; ownership between two authenticated callers; resuming a results
// read; a restart between create and results; the spool's bound against a hostile caller; the
// upstream attempt metrics of batch calls.
#include <grpcpp/grpcpp.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "emulator/gemini_wire.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/vision/batch_key.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/log_capture.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;
namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAliceToken[] = "alice-batch-token-0123456789";
constexpr char kBobToken[] = "bob-batch-token-0123456789abc";

const Rgb kWhite{255, 255, 255};
const Rgb kRed{220, 20, 20};

// A drawn rectangle, [x0, x1) x [y0, y1) in pixels of the upright image.
struct Rect {
  int x0, y0, x1, y1;
};

// One item to send and the truth to check its results against.
struct Item {
  std::string key;
  std::string image;
  int width = 0;  // upright
  int height = 0;
  std::string mime_type = "image/png";
  Rect red{};
};

Item RedRectItem(std::string key, int width, int height, Rect red) {
  return Item{.key = std::move(key),
              .image = MakePng(width, height, kWhite, kRed, red.x0, red.y0, red.x1, red.y1),
              .width = width,
              .height = height,
              .red = red};
}

// An upright width x height scene with a red rectangle, stored rotated as a JPEG whose EXIF
// orientation 6 (rotate 90° clockwise to display) shows it upright.
Item RotatedJpegItem(std::string key, int width, int height, Rect red) {
  Pixels upright = MakePixels(width, height, 3);
  FillRect(upright, kWhite, 0, 0, width, height);
  FillRect(upright, kRed, red.x0, red.y0, red.x1, red.y1);
  Pixels stored = MakePixels(height, width, 3);
  for (int ys = 0; ys < stored.height; ++ys) {
    for (int xs = 0; xs < stored.width; ++xs) {
      // Displayed (x, y) = (stored height - 1 - ys, xs).
      for (int b = 0; b < 3; ++b) stored.at(xs, ys, b) = upright.at(stored.height - 1 - ys, xs, b);
    }
  }
  std::optional<std::string> jpeg = Encode(stored, ".jpg", 6);
  EXPECT_TRUE(jpeg.has_value());
  return Item{.key = std::move(key),
              .image = jpeg.value_or(""),
              .width = width,
              .height = height,
              .mime_type = "image/jpeg",
              .red = red};
}

int Tolerance(int size) { return (size + 999) / 1000 + 1; }

std::string ReasonOf(const google::rpc::Status& status) {
  for (const auto& any : status.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

std::string ReasonOf(const grpc::Status& status) {
  google::rpc::Status rich;
  if (!rich.ParseFromString(status.error_details())) return "";
  return ReasonOf(rich);
}

std::string ReasonOf(const v1::BatchItemStatus& status) {
  google::rpc::Status rich;
  rich.ParseFromString(status.SerializeAsString());  // the same shape (vision.proto)
  return ReasonOf(rich);
}

class BatchTest : public GatewayTest {
 protected:
  BatchTest() {
    std::string dir = absl::StrCat(::testing::TempDir(), "/vg-batch-spool-XXXXXX");
    spool_dir_ = mkdtemp(dir.data()) != nullptr ? dir : ::testing::TempDir();
  }
  ~BatchTest() override { std::filesystem::remove_all(spool_dir_); }

  void SetUp() override {
    StackOptions stack;
    stack.batches = true;
    StartStackWith(stack);
  }

  void ConfigureServer(server::ServerOptions& options) override {
    options.vision.batch_spool_dir = spool_dir_;
    options.vision.batch_spool_max_bytes = spool_max_bytes_;
    if (!auth_) return;
    const std::string path =
        absl::StrCat(::testing::TempDir(), "/", getpid(), "_batch_tokens_", ++token_files_);
    std::ofstream(path, std::ios::trunc)
        << "alice " << kAliceToken << "\nbob " << kBobToken << "\n";
    server::AuthOptions auth;
    auth.tokens_file = path;
    options.auth = auth;
  }

  // Jobs created from now on take `processing` (PENDING for its first half, RUNNING for the
  // second) on the emulator's clock.
  void SetProcessing(absl::Duration processing) {
    emulator::EmulatorConfig config = emulator_->config();
    config.batch_processing = absl::ToChronoMilliseconds(processing);
    emulator_->SetConfig(config);
  }

  static std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (!token.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
    return context;
  }

  struct Created {
    grpc::Status status;
    v1::BatchJob job;
  };

  Created Create(const std::vector<Item>& items, const std::string& token = "",
                 v1::BatchTask task = v1::BATCH_TASK_DETECT) {
    auto context = As(token);
    Created created;
    auto writer = stub_->CreateBatch(context.get(), &created.job);
    v1::CreateBatchRequest header;
    header.mutable_header()->set_task(task);
    header.mutable_header()->set_display_name("nightly");
    bool ok = writer->Write(header);
    for (const Item& item : items) {
      if (!ok) break;
      v1::CreateBatchRequest message;
      message.mutable_item()->set_key(item.key);
      message.mutable_item()->mutable_image()->set_content(item.image);
      ok = writer->Write(message);
    }
    writer->WritesDone();
    created.status = writer->Finish();
    return created;
  }

  grpc::Status Get(const std::string& name, v1::BatchJob* job, const std::string& token = "") {
    v1::GetBatchRequest request;
    request.set_name(name);
    return stub_->GetBatch(As(token).get(), request, job);
  }

  v1::BatchJob::State StateOf(const std::string& name, const std::string& token = "") {
    v1::BatchJob job;
    const grpc::Status status = Get(name, &job, token);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job.state();
  }

  // Every job the caller sees (all pages).
  std::vector<std::string> ListAll(const std::string& token = "") {
    std::vector<std::string> names;
    v1::ListBatchesRequest request;
    request.set_page_size(2);
    for (int page = 0; page < 100; ++page) {
      v1::ListBatchesResponse response;
      const grpc::Status status = stub_->ListBatches(As(token).get(), request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      for (const v1::BatchJob& job : response.batches()) names.push_back(job.name());
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return names;
  }

  grpc::Status Cancel(const std::string& name, const std::string& token = "") {
    v1::CancelBatchRequest request;
    request.set_name(name);
    google::protobuf::Empty empty;
    return stub_->CancelBatch(As(token).get(), request, &empty);
  }

  grpc::Status Delete(const std::string& name, const std::string& token = "") {
    v1::DeleteBatchRequest request;
    request.set_name(name);
    google::protobuf::Empty empty;
    return stub_->DeleteBatch(As(token).get(), request, &empty);
  }

  struct Results {
    grpc::Status status;
    std::vector<v1::BatchResult> results;
  };

  Results Read(const std::string& name, const std::string& start_after_key = "",
               const std::string& token = "") {
    auto context = As(token);
    v1::ReadBatchResultsRequest request;
    request.set_name(name);
    request.set_start_after_key(start_after_key);
    auto reader = stub_->ReadBatchResults(context.get(), request);
    Results out;
    v1::BatchResult result;
    while (reader->Read(&result)) out.results.push_back(result);
    out.status = reader->Finish();
    return out;
  }

  // Polls GetBatch (a condition, bounded) until the job is in `state`.
  bool WaitForState(const std::string& name, v1::BatchJob::State state,
                    const std::string& token = "") {
    const absl::Time until = absl::Now() + absl::Seconds(30);
    while (absl::Now() < until) {
      v1::BatchJob job;
      if (Get(name, &job, token).ok() && job.state() == state) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  // The results of one Detect item from `at` on, checked against its truth: ImageInfo with the
  // upright size, one "red" detection at the drawn rectangle's pixel box, the Summary. Moves `at`
  // past them.
  static void ExpectDetectItem(const std::vector<v1::BatchResult>& results, size_t& at,
                               const Item& item) {
    SCOPED_TRACE(item.key);
    ASSERT_LE(at + 3, results.size());
    for (size_t i = at; i < at + 3; ++i) EXPECT_EQ(results[i].key(), item.key);
    const v1::ImageInfo& info = results[at].detect().image_info();
    EXPECT_EQ(info.width(), item.width);
    EXPECT_EQ(info.height(), item.height);
    EXPECT_EQ(info.mime_type(), item.mime_type);
    ASSERT_TRUE(results[at + 1].detect().has_detection()) << results[at + 1].DebugString();
    const v1::Detection& red = results[at + 1].detect().detection();
    EXPECT_EQ(red.index(), 0);
    EXPECT_EQ(red.label(), "red");
    EXPECT_NEAR(red.box().x_min(), item.red.x0, Tolerance(item.width));
    EXPECT_NEAR(red.box().x_max(), item.red.x1, Tolerance(item.width));
    EXPECT_NEAR(red.box().y_min(), item.red.y0, Tolerance(item.height));
    EXPECT_NEAR(red.box().y_max(), item.red.y1, Tolerance(item.height));
    ASSERT_TRUE(results[at + 2].detect().has_summary());
    EXPECT_EQ(results[at + 2].detect().summary().count(), 1);
    at += 3;
  }

  // The line key the gateway wrote for each caller key, read from the request file it uploaded
  // (the emulator's recorded upload bodies).
  std::map<std::string, std::string> LineKeys() const {
    std::map<std::string, std::string> keys;
    for (const emulator::RecordedRequest& request : emulator_->Requests()) {
      for (absl::string_view line : absl::StrSplit(request.body, '\n')) {
        if (!absl::StartsWith(line, "{")) continue;
        json::error_code ec;
        json::value value = json::parse(json::string_view(line.data(), line.size()), ec);
        if (ec || !value.is_object()) continue;
        const json::value* key = value.get_object().if_contains("key");
        if (key == nullptr || !key->is_string()) continue;
        const std::string line_key(key->get_string());
        auto decoded = vision::DecodeBatchItemKey(line_key);
        if (decoded.ok()) keys[decoded->caller_key] = line_key;
      }
    }
    return keys;
  }

  double Metric(const std::string& series) const {
    for (absl::string_view line : absl::StrSplit(metrics_->Scrape(), '\n')) {
      if (absl::StartsWith(line, series + " ")) {
        double value = -1;
        if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
      }
    }
    return -1;
  }

  int SpoolFiles() const {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(spool_dir_)) {
      if (absl::StartsWith(entry.path().filename().string(), "vg-batch-")) ++count;
    }
    return count;
  }

  std::string spool_dir_;
  int64_t spool_max_bytes_ = int64_t{4096} << 20;
  bool auth_ = false;
  int token_files_ = 0;
};

// Create → PENDING → RUNNING → SUCCEEDED on the emulator's clock; results before SUCCEEDED are
// FAILED_PRECONDITION naming the state; then get, list, the typed results (exact pixel boxes, the
// rotated JPEG's in its upright frame), cancel of an ended job, delete.
TEST_F(BatchTest, EveryRpcThroughTheStateMachineWithExactPixelBoxes) {
  SetProcessing(absl::Hours(1));
  const std::vector<Item> items = {
      RedRectItem("wide", 320, 240, {60, 50, 200, 160}),
      RotatedJpegItem("upright-portrait", 240, 320, {40, 60, 160, 200}),
      RedRectItem("small", 64, 48, {8, 8, 40, 32}),
  };
  const Created created = Create(items);
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  const v1::BatchJob& job = created.job;
  const std::string name = job.name();
  EXPECT_THAT(name, ::testing::StartsWith("batches/"));
  EXPECT_EQ(job.display_name(), "nightly");
  EXPECT_EQ(job.task(), v1::BATCH_TASK_DETECT);
  EXPECT_EQ(job.model(), "gemini-3-flash-preview");
  EXPECT_EQ(job.state(), v1::BatchJob::STATE_PENDING);
  EXPECT_EQ(job.item_count(), 3);
  EXPECT_GT(job.create_time().seconds(), 0);

  const auto expect_not_ready = [&](const std::string& state) {
    const Results early = Read(name);
    EXPECT_TRUE(early.results.empty());
    EXPECT_EQ(early.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(early.status.error_message(), HasSubstr(state));
    EXPECT_EQ(ReasonOf(early.status), "BATCH_NOT_SUCCEEDED");
  };
  EXPECT_EQ(StateOf(name), v1::BatchJob::STATE_PENDING);
  expect_not_ready("BATCH_STATE_PENDING");
  emulator_->AdvanceClock(absl::Minutes(31));
  EXPECT_EQ(StateOf(name), v1::BatchJob::STATE_RUNNING);
  expect_not_ready("BATCH_STATE_RUNNING");
  emulator_->AdvanceClock(absl::Minutes(30));

  v1::BatchJob done;
  ASSERT_TRUE(Get(name, &done).ok());
  EXPECT_EQ(done.state(), v1::BatchJob::STATE_SUCCEEDED);
  EXPECT_EQ(done.succeeded_count(), 3);
  EXPECT_EQ(done.failed_count(), 0);
  EXPECT_EQ(done.pending_count(), 0);
  EXPECT_GT(done.end_time().seconds(), 0);
  EXPECT_THAT(ListAll(), ::testing::Contains(name));

  const Results read = Read(name);
  ASSERT_TRUE(read.status.ok()) << read.status.error_message();
  ASSERT_EQ(read.results.size(), 9u);
  size_t at = 0;
  for (const Item& item : items) ExpectDetectItem(read.results, at, item);

  // An ended job cannot be cancelled (Gemini's FAILED_PRECONDITION), and stays SUCCEEDED.
  EXPECT_EQ(Cancel(name).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(StateOf(name), v1::BatchJob::STATE_SUCCEEDED);
  ASSERT_TRUE(Delete(name).ok());
  v1::BatchJob gone;
  const grpc::Status missing = Get(name, &gone);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ReasonOf(missing), "BATCH_NOT_FOUND");
  EXPECT_EQ(Read(name).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(ListAll(), Not(::testing::Contains(name)));
}

TEST_F(BatchTest, ACancelledJobStaysCancelledAndHasNoResults) {
  SetProcessing(absl::Hours(1));
  const Created created = Create({RedRectItem("a", 64, 48, {8, 8, 40, 32})});
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  const std::string name = created.job.name();
  ASSERT_TRUE(Cancel(name).ok());
  EXPECT_EQ(StateOf(name), v1::BatchJob::STATE_CANCELLED);
  emulator_->AdvanceClock(absl::Hours(2));
  EXPECT_EQ(StateOf(name), v1::BatchJob::STATE_CANCELLED);
  const Results read = Read(name);
  EXPECT_EQ(read.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(read.status.error_message(), HasSubstr("BATCH_STATE_CANCELLED"));
  EXPECT_TRUE(Cancel(name).ok()) << "cancelling a cancelled job is a no-op";
}

// Items Gemini failed (the emulator's per-key scripted line errors) are one BatchResult each with
// a google.rpc.Status (the error table's code and reason); the items around them are intact, in
// order; the job counts them; the read logs one summary line, not one line per item.
TEST_F(BatchTest, PerItemFailuresAreStatusesAndTheOtherItemsAreIntact) {
  SetProcessing(absl::Hours(1));
  std::vector<Item> items;
  for (int i = 0; i < 8; ++i) {
    items.push_back(RedRectItem(absl::StrCat("item-", i), 64 + 8 * i, 48, {8, 8, 40, 32}));
  }
  const Created created = Create(items);
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  const std::map<std::string, std::string> line_keys = LineKeys();
  ASSERT_EQ(line_keys.size(), items.size());
  // item-1: Gemini's quota (its message reaches the caller); item-3..item-6: Gemini gave up in
  // time (UPSTREAM_TIMEOUT: the caller gets the table's message, the upstream text is hidden).
  emulator_->EnqueueForBatchKey(
      line_keys.at("item-1"),
      emulator::ScriptedError(429, "Resource has been exhausted (e.g. check quota)."));
  for (int i = 3; i <= 6; ++i) {
    emulator_->EnqueueForBatchKey(
        line_keys.at(absl::StrCat("item-", i)),
        emulator::ScriptedError(504, "Deadline expired before operation could complete."));
  }
  emulator_->AdvanceClock(absl::Hours(1));
  v1::BatchJob done;
  ASSERT_TRUE(Get(created.job.name(), &done).ok());
  EXPECT_EQ(done.state(), v1::BatchJob::STATE_SUCCEEDED);
  EXPECT_EQ(done.succeeded_count(), 3);
  EXPECT_EQ(done.failed_count(), 5);

  LogCapture logs;
  const Results read = Read(created.job.name());
  ASSERT_TRUE(read.status.ok()) << read.status.error_message();
  size_t at = 0;
  for (int i = 0; i < 8; ++i) {
    const Item& item = items[i];
    if (i == 1 || (i >= 3 && i <= 6)) {
      ASSERT_LT(at, read.results.size());
      const v1::BatchResult& failed = read.results[at++];
      SCOPED_TRACE(item.key);
      EXPECT_EQ(failed.key(), item.key);
      ASSERT_TRUE(failed.has_error()) << failed.DebugString();
      if (i == 1) {
        EXPECT_EQ(failed.error().code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
        EXPECT_EQ(ReasonOf(failed.error()), "UPSTREAM_RATE_LIMITED");
        EXPECT_THAT(failed.error().message(), HasSubstr("Resource has been exhausted"));
      } else {
        EXPECT_EQ(failed.error().code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
        EXPECT_EQ(ReasonOf(failed.error()), "UPSTREAM_TIMEOUT");
        EXPECT_THAT(failed.error().message(), Not(HasSubstr("Deadline expired")));
      }
      continue;
    }
    ExpectDetectItem(read.results, at, item);
  }
  EXPECT_EQ(at, read.results.size());

  // Metrics count every item; the log has one summary line for the read.
  EXPECT_EQ(Metric("vision_gateway_batch_events_total{event=\"item_failed\","
                   "model=\"gemini-3-flash-preview\",task=\"detect\"}"),
            5);
  int per_item_lines = 0, summaries = 0;
  for (const std::string& line : logs.Lines()) {
    if (absl::StrContains(line, "upstream failure")) ++per_item_lines;
    if (absl::StrContains(line, "items failed")) {
      ++summaries;
      EXPECT_THAT(line, HasSubstr(created.job.name()));
      EXPECT_THAT(line, HasSubstr("5 items failed"));
      EXPECT_THAT(line, HasSubstr("4 with upstream details hidden"));
      EXPECT_THAT(line, HasSubstr("Deadline expired"));
    }
  }
  EXPECT_EQ(per_item_lines, 0);
  EXPECT_EQ(summaries, 1);
}

// A broken results stream resumes with start_after_key: exactly the items after that key, in
// order, identical to the tail of a whole read; after the last key, or an unknown one: nothing.
TEST_F(BatchTest, AResultsReadResumesAfterAKey) {
  SetProcessing(absl::Hours(1));
  std::vector<Item> items;
  for (int i = 0; i < 5; ++i) {
    items.push_back(RedRectItem(absl::StrCat("k", i), 96, 64 + 4 * i, {10, 12, 50 + i, 40}));
  }
  const Created created = Create(items);
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  emulator_->AdvanceClock(absl::Hours(1));
  const Results whole = Read(created.job.name());
  ASSERT_TRUE(whole.status.ok()) << whole.status.error_message();
  ASSERT_EQ(whole.results.size(), 15u);

  const Results resumed = Read(created.job.name(), "k2");
  ASSERT_TRUE(resumed.status.ok()) << resumed.status.error_message();
  ASSERT_EQ(resumed.results.size(), 6u);
  for (size_t i = 0; i < resumed.results.size(); ++i) {
    EXPECT_EQ(resumed.results[i].SerializeAsString(), whole.results[9 + i].SerializeAsString())
        << i;
  }
  size_t at = 0;
  ExpectDetectItem(resumed.results, at, items[3]);
  ExpectDetectItem(resumed.results, at, items[4]);

  const Results after_last = Read(created.job.name(), "k4");
  EXPECT_TRUE(after_last.status.ok());
  EXPECT_TRUE(after_last.results.empty());
  const Results unknown = Read(created.job.name(), "no-such-key");
  EXPECT_TRUE(unknown.status.ok());
  EXPECT_TRUE(unknown.results.empty());
}

// Stateless: a job created through one gateway is read through a fresh one (a restart, or any
// other replica) with the same typed results; the real clock runs the job (a short processing
// time).
TEST_F(BatchTest, AFreshGatewayReadsTheResultsOfAJobCreatedBeforeTheRestart) {
  SetProcessing(absl::Milliseconds(20));
  const std::vector<Item> items = {
      RedRectItem("before", 200, 100, {20, 30, 120, 80}),
      RotatedJpegItem("restart", 160, 240, {30, 40, 110, 180}),
  };
  const Created created = Create(items);
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  const int old_port = server_->port();
  RestartGateway();
  ASSERT_NE(server_, nullptr);
  EXPECT_NE(server_->port(), old_port);
  ASSERT_TRUE(WaitForState(created.job.name(), v1::BatchJob::STATE_SUCCEEDED));
  const Results read = Read(created.job.name());
  ASSERT_TRUE(read.status.ok()) << read.status.error_message();
  ASSERT_EQ(read.results.size(), 6u);
  size_t at = 0;
  for (const Item& item : items) ExpectDetectItem(read.results, at, item);
}

// The batches stub is instrumented as the others are: every exchange with Gemini's Batch API is
// an upstream attempt by operation (create with its model), outcome and latency.
TEST_F(BatchTest, BatchCallsAreCountedAsUpstreamAttempts) {
  SetProcessing(absl::Hours(1));
  const Created created = Create({RedRectItem("a", 64, 48, {8, 8, 40, 32})});
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  const Created other = Create({RedRectItem("b", 64, 48, {8, 8, 40, 32})});
  ASSERT_TRUE(other.status.ok()) << other.status.error_message();
  ASSERT_TRUE(Cancel(other.job.name()).ok());  // a get (ownership), then the cancel
  emulator_->AdvanceClock(absl::Hours(1));
  ASSERT_TRUE(Read(created.job.name()).status.ok());  // a get, then the download
  ASSERT_FALSE(ListAll().empty());
  ASSERT_TRUE(Delete(created.job.name()).ok());  // a get, then the delete
  v1::BatchJob gone;
  ASSERT_EQ(Get(created.job.name(), &gone).error_code(), grpc::StatusCode::NOT_FOUND);

  const auto requests = [&](const std::string& operation, const std::string& model,
                            const std::string& outcome) {
    return Metric(absl::StrCat("vision_gateway_upstream_requests_total{model=\"", model,
                               "\",operation=\"", operation, "\",outcome=\"", outcome, "\"}"));
  };
  EXPECT_EQ(requests("batches.create", "gemini-3-flash-preview", "OK"), 2);
  EXPECT_EQ(requests("batches.get", "none", "OK"), 3);
  EXPECT_EQ(requests("batches.get", "none", "NotFound"), 1);
  EXPECT_EQ(requests("batches.cancel", "none", "OK"), 1);
  EXPECT_EQ(requests("batches.delete", "none", "OK"), 1);
  EXPECT_GE(requests("batches.list", "none", "OK"), 1);
  EXPECT_EQ(requests("files.download", "none", "OK"), 1);
  EXPECT_EQ(Metric("vision_gateway_upstream_request_seconds_count{model=\"gemini-3-flash-preview\","
                   "operation=\"batches.create\"}"),
            2);
  EXPECT_EQ(Metric("vision_gateway_upstream_first_byte_seconds_count{model=\"none\","
                   "operation=\"files.download\"}"),
            1);
}

class BatchOwnershipTest : public BatchTest {
 protected:
  BatchOwnershipTest() { auth_ = true; }
};

// With callers authenticated, Bob can neither get, list, read, cancel nor delete Alice's job, and
// gets exactly the answer a job that does not exist gets; Alice's job is untouched.
TEST_F(BatchOwnershipTest, AnotherCallerCannotSeeOrTouchTheJob) {
  SetProcessing(absl::Hours(1));
  const Created created = Create({RedRectItem("mine", 64, 48, {8, 8, 40, 32})}, kAliceToken);
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  const std::string name = created.job.name();
  const std::string nobody = "batches/nosuch-job";

  v1::BatchJob seen;
  const grpc::Status bob_get = Get(name, &seen, kBobToken);
  EXPECT_EQ(bob_get.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ReasonOf(bob_get), "BATCH_NOT_FOUND");
  const grpc::Status missing = Get(nobody, &seen, kBobToken);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(bob_get.error_message(),
            absl::StrReplaceAll(missing.error_message(), {{nobody, name}}))
      << "Bob must not tell Alice's job from a missing one";

  EXPECT_THAT(ListAll(kBobToken), Not(::testing::Contains(name)));
  EXPECT_THAT(ListAll(kAliceToken), ::testing::Contains(name));
  EXPECT_EQ(Read(name, "", kBobToken).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Cancel(name, kBobToken).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Delete(name, kBobToken).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(StateOf(name, kAliceToken), v1::BatchJob::STATE_PENDING) << "not cancelled";

  emulator_->AdvanceClock(absl::Hours(1));
  const Results bob_read = Read(name, "", kBobToken);
  EXPECT_EQ(bob_read.status.error_code(), grpc::StatusCode::NOT_FOUND)
      << "not FAILED_PRECONDITION or results: the job's existence does not leak";
  EXPECT_TRUE(bob_read.results.empty());
  const Results alice_read = Read(name, "", kAliceToken);
  ASSERT_TRUE(alice_read.status.ok()) << alice_read.status.error_message();
  EXPECT_EQ(alice_read.results.size(), 3u);
  ASSERT_TRUE(Delete(name, kAliceToken).ok());
}

class BatchSpoolTest : public BatchTest {
 protected:
  BatchSpoolTest() { spool_max_bytes_ = 256 << 10; }
};

// --batch_spool_max_mb bounds the request files of every CreateBatch in flight together. A
// hostile caller streaming items without end is refused with RESOURCE_EXHAUSTED once the bound is
// hit, its partial file removed; a caller that was already spooling goes on and creates its job.
TEST_F(BatchSpoolTest, AHostileCallerHitsTheBoundAndAnotherCallerStillSucceeds) {
  SetProcessing(absl::Hours(1));
  // The patient caller: header and one item, then it waits.
  auto patient_context = As("");
  v1::BatchJob patient_job;
  auto patient = stub_->CreateBatch(patient_context.get(), &patient_job);
  v1::CreateBatchRequest header;
  header.mutable_header()->set_task(v1::BATCH_TASK_DETECT);
  ASSERT_TRUE(patient->Write(header));
  const Item first = RedRectItem("p1", 64, 48, {8, 8, 40, 32});
  v1::CreateBatchRequest item;
  item.mutable_item()->set_key(first.key);
  item.mutable_item()->mutable_image()->set_content(first.image);
  ASSERT_TRUE(patient->Write(item));
  // Its spool file exists (polled: the server reads the stream on its own time).
  const absl::Time until = absl::Now() + absl::Seconds(20);
  while (SpoolFiles() < 1 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_EQ(SpoolFiles(), 1);

  // The hostile caller: incompressible images (each line ~30 KB of base64) until refused.
  const std::string noise = *Encode(NoisePixels(80, 80, 3), ".png");
  auto hostile_context = As("");
  v1::BatchJob hostile_job;
  auto hostile = stub_->CreateBatch(hostile_context.get(), &hostile_job);
  int sent = 0;
  bool open = hostile->Write(header);
  while (open && sent < 1000) {
    v1::CreateBatchRequest message;
    message.mutable_item()->set_key(absl::StrCat("h", sent++));
    message.mutable_item()->mutable_image()->set_content(noise);
    open = hostile->Write(message);
  }
  hostile->WritesDone();
  const grpc::Status refused = hostile->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("--batch_spool_max_mb"));
  EXPECT_THAT(refused.error_message(), HasSubstr("batch spool is full"));
  EXPECT_EQ(ReasonOf(refused), "SERVER_OVERLOADED");
  EXPECT_LT(sent, 1000) << "the stream was never refused";
  EXPECT_GE(sent, 3) << "refused before the bound could have been reached";
  EXPECT_EQ(SpoolFiles(), 1) << "the refused caller's partial file is gone; the patient one's stays";

  // The patient caller goes on: its bytes were never at risk, and the refused ones came back.
  const Item second = RedRectItem("p2", 64, 48, {8, 8, 40, 32});
  item.mutable_item()->set_key(second.key);
  item.mutable_item()->mutable_image()->set_content(second.image);
  ASSERT_TRUE(patient->Write(item));
  patient->WritesDone();
  const grpc::Status created = patient->Finish();
  ASSERT_TRUE(created.ok()) << created.error_message();
  EXPECT_EQ(patient_job.item_count(), 2);
  EXPECT_EQ(SpoolFiles(), 0);

  // And the refused bytes are free again: three of the hostile lines fit (they would not, had
  // the refused call kept its reservation).
  std::vector<Item> again;
  for (int i = 0; i < 3; ++i) {
    again.push_back(Item{.key = absl::StrCat("again", i), .image = noise, .width = 80,
                         .height = 80});
  }
  const Created fits = Create(again);
  EXPECT_TRUE(fits.status.ok()) << fits.status.error_message();
}

}  // namespace
}  // namespace vision_gateway::testing
