// Upload over a fake Gemini client and a manual timer: header rules, streaming in granularity-
// sized chunks sent while they fill (one message held while a full chunk is in flight), size and
// hash checks that never finalize, cancel, resume after a transient chunk failure, dedupe (by the
// stored hash and by the source hash of a file stored upright), the mime_type contradiction
// report, EXIF rotation, and the call's telemetry record on every upstream call. Also the Files helpers the upload uses
// (hash cache, polling a PROCESSING file, ToV1File) and ResumableUpload on its own.
#include "service/vision/upload_task.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/common/thread_pool.h"
#include "service/gemini/sha256.h"
#include "service/telemetry/call_record.h"
#include "service/telemetry/telemetry.h"
#include "service/vision/file_id.h"
#include "service/vision/file_service.h"
#include "service/vision/resumable_upload.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/fake_timer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::vision {
namespace {

using ::vision_gateway::testing::FakeGeminiClient;
using ::vision_gateway::testing::FakeTimer;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;
using Call = FakeGeminiClient::Call;

constexpr int64_t kGranularity = 256 * 1024;
constexpr char kUploadUrl[] = "https://generativelanguage.googleapis.com/upload/v1beta/files?x=1";

gemini::UploadStatus Active(int64_t size_received) {
  return gemini::UploadStatus{.status = "active", .size_received = size_received, .file = {}};
}

std::string ReasonOf(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  return GetDetail(status, info) ? info.reason() : "";
}

// A PNG (readable header, 40x30) followed by `size` - its size pseudo-random bytes: uploads are
// stored, not decoded, so this is a valid upload of any size.
std::string PngOfSize(size_t size) {
  std::string bytes = testing::PngHeaderOnly(40, 30);
  uint32_t x = 12345;
  while (bytes.size() < size) {
    x = x * 1103515245u + 12345u;
    bytes.push_back(static_cast<char>(x >> 24));
  }
  bytes.resize(size);
  return bytes;
}

class UploadTaskTest : public ::testing::Test {
 protected:
  // The runtime the test's calls share, made with options_ as they are at the first call.
  const std::shared_ptr<const FilesRuntime>& Runtime() {
    if (runtime_ == nullptr) {
      runtime_ = std::make_shared<const FilesRuntime>(gemini_, timer_, options_, &cpu_, nullptr);
    }
    return runtime_;
  }
  Semaphore& Filling() { return Runtime()->filling_upload_chunks(); }
  FilesContext Context() { return FilesContext{.runtime = Runtime(), .record = record_}; }

  // Starts an upload; reads the task asks for are counted in reads_.
  void Start() {
    task_ = MakeUpload(Context(), timer_->Now() + absl::Minutes(10),
                       UploadCallbacks{.read = [this] { ++reads_; },
                                       .done = [this](absl::StatusOr<v1::File> r) {
                                         result_ = std::move(r);
                                         finished_.store(true);
                                       }});
    task_->Begin();
  }

  void Header(int64_t size, const std::string& sha256 = "", const std::string& mime = "",
              const std::string& display_name = "") {
    ASSERT_GT(reads_, 0) << "the task did not ask for the header";
    --reads_;
    v1::UploadRequest m;
    m.mutable_header()->set_size_bytes(size);
    m.mutable_header()->set_sha256(sha256);
    m.mutable_header()->set_mime_type(mime);
    m.mutable_header()->set_display_name(display_name);
    task_->OnMessage(std::move(m));
  }

  void Chunk(std::string bytes) {
    ASSERT_GT(reads_, 0) << "a message was sent without a read";
    --reads_;
    v1::UploadRequest m;
    m.set_chunk(std::move(bytes));
    task_->OnMessage(std::move(m));
  }

  void HalfClose() {
    ASSERT_GT(reads_, 0);
    --reads_;
    task_->OnHalfClose();
  }

  // Starts an upload of `bytes` (more than kSniffBytes) and feeds the sniffed first bytes: the
  // session opens and they go out as the first chunk (whole granules of kGranularity).
  void StartWithFirstChunkInFlight(const std::string& bytes) {
    Start();
    Header(static_cast<int64_t>(bytes.size()));
    Chunk(bytes.substr(0, kSniffBytes));
    AnswerUpstream();
    ASSERT_EQ(CallsOf("UploadChunk").size(), 1u);
  }

  // An upload of four chunks and 5 bytes whose second chunk is being sent while it fills, with
  // 100 KiB of it received: its request, its buffer; `permits` counts the filling permit.
  void StartFillingSecondChunk(std::shared_ptr<Call>& filling,
                               std::shared_ptr<GrowingBuffer>& buffer) {
    const std::string bytes = PngOfSize(4 * kGranularity + 5);
    StartWithFirstChunkInFlight(bytes);
    AnswerUpstream();
    Chunk(bytes.substr(kSniffBytes, 100 * 1024));
    filling = CallsOf("UploadChunk")[1];
    buffer = filling->chunk.data;
    ASSERT_NE(buffer, nullptr);
    EXPECT_EQ(Filling().in_use(), 1);
  }

  std::vector<std::shared_ptr<Call>> CallsOf(const std::string& method) {
    std::vector<std::shared_ptr<Call>> out;
    for (auto& call : gemini_->calls()) {
      if (call->method == method) out.push_back(call);
    }
    return out;
  }

  // Answers the upstream calls not answered yet, in order: a session, chunk acknowledgements
  // (the final one with a File), empty file lists. Returns how many were answered.
  int AnswerUpstream() {
    int answered = 0;
    std::vector<std::shared_ptr<Call>> calls = gemini_->calls();
    for (size_t i = answered_; i < calls.size(); ++i, ++answered_) {
      Call& call = *calls[i];
      // A chunk still filling is answered once all its bytes are there (as Gemini would).
      if (!call.cancelled.HasBeenNotified() && !call.chunk_complete()) break;
      ++answered;
      if (call.cancelled.HasBeenNotified()) continue;
      if (call.method == "StartUpload") {
        call.session_done(
            gemini::UploadSession{.upload_url = kUploadUrl, .chunk_granularity = kGranularity});
      } else if (call.method == "UploadChunk") {
        call.ReleaseChunk();  // sent, as the HTTP layer lets go of it before the answer
        const int64_t end = call.offset + static_cast<int64_t>(call.bytes().size());
        if (call.finalize) {
          call.upload_done(gemini::UploadStatus{.status = "final", .size_received = end,
                                                .file = StoredFile(call)});
        } else {
          call.upload_done(Active(end));
        }
      } else if (call.method == "ListFiles") {
        call.list_done(gemini::ListFilesResponse{});
      } else if (call.method == "CancelUpload") {
        call.status_done(absl::OkStatus());
      }
    }
    return answered;
  }

  // What Gemini would store after the final chunk: everything sent so far.
  gemini::File StoredFile(const Call& final_chunk) {
    std::string all;
    for (auto& c : CallsOf("UploadChunk")) {
      if (c->cancelled.HasBeenNotified()) continue;
      all.resize(static_cast<size_t>(c->offset));
      all += c->bytes();
      if (c.get() == &final_chunk) break;
    }
    const auto starts = CallsOf("StartUpload");
    gemini::File file;
    file.name = starts.back()->start_request.name;
    file.display_name = starts.back()->start_request.display_name;
    file.mime_type = starts.back()->start_request.mime_type;
    file.size_bytes = static_cast<int64_t>(all.size());
    file.sha256_hash = gemini::Sha256HashFromHex(gemini::Sha256::HexOf(all));
    file.state = "ACTIVE";
    stored_ = all;
    return file;
  }

  // Feeds `bytes` in `message_size` messages whenever the task reads, answers upstream calls as
  // they come, and checks that while a full chunk is in flight at most one more message is read.
  void Feed(const std::string& bytes, size_t message_size) {
    size_t fed = 0;
    bool half_closed = false;
    for (int steps = 0; !finished_.load() && steps < 100000; ++steps) {
      if (reads_ > 0 && fed < bytes.size()) {
        const size_t n = std::min(message_size, bytes.size() - fed);
        // Messages read while the newest chunk is full and still unanswered.
        const auto chunks = CallsOf("UploadChunk");
        if (!chunks.empty() && answered_ < gemini_->calls().size() &&
            chunks.back()->chunk_complete()) {
          ++read_while_sending_;
        }
        max_read_while_sending_ = std::max(max_read_while_sending_, read_while_sending_);
        Chunk(bytes.substr(fed, n));
        fed += n;
        continue;
      }
      if (reads_ > 0 && fed == bytes.size() && !half_closed) {
        half_closed = true;
        HalfClose();
        continue;
      }
      read_while_sending_ = 0;
      if (AnswerUpstream() == 0) {
        // Work on the CPU pool (EXIF rotation) may still be under way.
        if (!gemini_->WaitForCalls(gemini_->calls().size() + 1, absl::Seconds(10))) break;
      }
    }
  }

  // Calls a test left open hold the task, which holds this shared fake.
  ~UploadTaskTest() override { gemini_->ReleaseCallbacks(); }

  std::shared_ptr<FakeGeminiClient> gemini_ = std::make_shared<FakeGeminiClient>();
  std::shared_ptr<FakeTimer> timer_ = std::make_shared<FakeTimer>();
  ThreadPool cpu_{1, 8};
  VisionOptions options_;
  std::shared_ptr<telemetry::CallRecord> record_ =
      std::make_shared<telemetry::CallRecord>(telemetry::NoTelemetry(), "req-1", "");

  std::shared_ptr<const FilesRuntime> runtime_;  // Runtime()
  std::shared_ptr<UploadTask> task_;
  int reads_ = 0;
  size_t answered_ = 0;
  int read_while_sending_ = 0;
  int max_read_while_sending_ = 0;
  std::string stored_;
  std::atomic<bool> finished_{false};
  std::optional<absl::StatusOr<v1::File>> result_;
};

TEST_F(UploadTaskTest, StreamsGranularityChunksHoldingOneMessageWhileAFullChunkIsInFlight) {
  const std::string bytes = PngOfSize(4 * kGranularity + 1000);
  Start();
  Header(static_cast<int64_t>(bytes.size()), "", "", "cat.png");
  Feed(bytes, 100 * 1024);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  EXPECT_TRUE(stored_ == bytes);
  EXPECT_EQ((*result_)->sha256(), gemini::Sha256::HexOf(bytes));
  EXPECT_EQ((*result_)->size_bytes(), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ((*result_)->display_name(), "cat.png");
  EXPECT_EQ((*result_)->width(), 40);
  EXPECT_EQ((*result_)->height(), 30);
  EXPECT_EQ((*result_)->declared_mime_type(), "");

  // The sniffed first 512 KiB go first (two granules of this small granularity), then one
  // granule at a time, then the last 1000 bytes with "finalize".
  const auto chunks = CallsOf("UploadChunk");
  ASSERT_EQ(chunks.size(), 4u);
  int64_t offset = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i]->offset, offset);
    EXPECT_EQ(chunks[i]->finalize, i == 3);
    if (i < 3) {
      EXPECT_EQ(chunks[i]->bytes().size() % kGranularity, 0u);
    }
    offset += static_cast<int64_t>(chunks[i]->bytes().size());
  }
  EXPECT_EQ(chunks[0]->bytes().size(), static_cast<size_t>(kSniffBytes));
  EXPECT_EQ(chunks[1]->bytes().size(), static_cast<size_t>(kGranularity));
  EXPECT_EQ(chunks[3]->bytes().size(), 1000u);
  EXPECT_LE(max_read_while_sending_, 1) << "more than one message read while a full chunk was in flight";
  // Once Gemini confirmed a chunk (and the request let go of it), its buffer holds the next one:
  // one resident buffer per upload, not a fresh allocation (page faults) per chunk.
  for (size_t i = 1; i < chunks.size(); ++i) {
    EXPECT_EQ(static_cast<const void*>(chunks[i]->buffer()), chunks[0]->buffer()) << "chunk " << i;
  }
  EXPECT_TRUE(CallsOf("CancelUpload").empty());
  const auto starts = CallsOf("StartUpload");
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0]->start_request.mime_type, "image/png");
  EXPECT_EQ(starts[0]->start_request.size_bytes, static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(DecodeFileId(starts[0]->start_request.name).width, 40);
}

TEST_F(UploadTaskTest, EveryUpstreamCallCarriesTheCallsTelemetryRecord) {
  const std::string bytes = PngOfSize(kGranularity + 10);
  Start();
  Header(static_cast<int64_t>(bytes.size()), gemini::Sha256::HexOf(bytes));
  Feed(bytes, 64 * 1024);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  ASSERT_FALSE(CallsOf("ListFiles").empty());  // the dedupe lookup
  for (const auto& call : gemini_->calls()) {
    EXPECT_EQ(call->options.record, record_) << call->method;
  }
}

TEST_F(UploadTaskTest, AMessageExactlyFillingTheChunkAndExactSizeFinalizeOnce) {
  const std::string bytes = PngOfSize(4 * kGranularity);
  Start();
  Header(static_cast<int64_t>(bytes.size()));
  Feed(bytes, kGranularity);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  const auto chunks = CallsOf("UploadChunk");
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_FALSE(chunks[0]->finalize);
  EXPECT_FALSE(chunks[1]->finalize);
  EXPECT_TRUE(chunks[2]->finalize);  // the last chunk keeps its bytes for "finalize"
  EXPECT_EQ(chunks[2]->bytes().size(), static_cast<size_t>(kGranularity));
  EXPECT_TRUE(stored_ == bytes);
}

TEST_F(UploadTaskTest, HeaderMissingOrNotFirstIsRefusedBeforeAnyUpstreamCall) {
  Start();
  Chunk("\x89PNG");
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(gemini_->calls().empty());
}

TEST_F(UploadTaskTest, HalfCloseWithoutHeaderIsRefused) {
  Start();
  HalfClose();
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(gemini_->calls().empty());
}

TEST_F(UploadTaskTest, BadHeadersAreRefusedBeforeAnyUpstreamCall) {
  options_.max_upload_bytes = 1000;
  struct Case {
    int64_t size;
    std::string sha256;
    std::string display_name;
  };
  const std::vector<Case> cases = {
      {0, "", ""},
      {-5, "", ""},
      {1001, "", ""},                                   // over --max_upload_mb
      {10, "abc", ""},                                  // not a SHA-256
      {10, std::string(64, 'g'), ""},                   // not hex
      {10, "", std::string(kMaxDisplayNameBytes + 1, 'n')},
      // The gateway's tags (issue #17): a caller's name may not carry one, old or new format.
      {10, "", "anything|vg-src-sha256=" + std::string(64, 'a')},
      {10, "", "x|vg-src=" + std::string(64, 'a') + ".10." + std::string(32, 'b')},
  };
  for (const Case& c : cases) {
    task_.reset();
    result_.reset();
    finished_.store(false);
    reads_ = 0;
    Start();
    Header(c.size, c.sha256, "", c.display_name);
    ASSERT_TRUE(result_.has_value()) << c.size;
    EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument)) << c.size << c.sha256;
  }
  EXPECT_TRUE(gemini_->calls().empty());
}

TEST_F(UploadTaskTest, TheLimitNeverExceedsGeminisPerFileLimit) {
  options_.max_upload_bytes = kMaxGeminiFileBytes * 2;
  Start();
  Header(kMaxGeminiFileBytes + 1);
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(UploadTaskTest, AHeaderAfterTheFirstMessageIsRefusedAndTheSessionCancelled) {
  const std::string bytes = PngOfSize(kGranularity * 2);
  Start();
  Header(static_cast<int64_t>(bytes.size()));
  Chunk(bytes.substr(0, kSniffBytes));
  AnswerUpstream();  // the session opens
  ASSERT_GT(reads_, 0);
  Header(10);
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(CallsOf("CancelUpload").size(), 1u);
}

TEST_F(UploadTaskTest, NotAnImageIsRefusedNamingTheDeclaredType) {
  Start();
  Header(100, "", "image/png");
  Chunk(std::string(100, 'x'));
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument,
                                 ::testing::HasSubstr("image/png")));
  EXPECT_TRUE(CallsOf("StartUpload").empty());
}

TEST_F(UploadTaskTest, MoreBytesThanDeclaredFailsAndNeverFinalizes) {
  const std::string bytes = PngOfSize(3 * kGranularity);
  Start();
  Header(static_cast<int64_t>(bytes.size()) - 1);
  Feed(bytes, 100 * 1024);
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument,
                                 ::testing::HasSubstr("more bytes")));
  for (const auto& chunk : CallsOf("UploadChunk")) EXPECT_FALSE(chunk->finalize);
  ASSERT_EQ(CallsOf("CancelUpload").size(), 1u);
  EXPECT_EQ(CallsOf("CancelUpload")[0]->upload_url, kUploadUrl);
}

TEST_F(UploadTaskTest, FewerBytesAtHalfCloseFailsAndNeverFinalizes) {
  const std::string bytes = PngOfSize(3 * kGranularity);
  Start();
  Header(static_cast<int64_t>(bytes.size()) + 1);
  Feed(bytes, 100 * 1024);
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument,
                                 ::testing::HasSubstr("ended after")));
  for (const auto& chunk : CallsOf("UploadChunk")) EXPECT_FALSE(chunk->finalize);
  EXPECT_EQ(CallsOf("CancelUpload").size(), 1u);
}

TEST_F(UploadTaskTest, HashMismatchIsDataLossAndNeverFinalizes) {
  const std::string bytes = PngOfSize(2 * kGranularity + 7);
  std::string other = bytes;
  other.back() ^= 1;
  Start();
  Header(static_cast<int64_t>(bytes.size()), gemini::Sha256::HexOf(other));
  Feed(bytes, 100 * 1024);
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(ReasonOf(result_->status()), "SHA256_MISMATCH");
  for (const auto& chunk : CallsOf("UploadChunk")) EXPECT_FALSE(chunk->finalize);
  EXPECT_EQ(CallsOf("CancelUpload").size(), 1u);
}

TEST_F(UploadTaskTest, CancelMidStreamCancelsTheChunkInFlightAndTheSession) {
  const std::string bytes = PngOfSize(4 * kGranularity);
  StartWithFirstChunkInFlight(bytes);
  task_->Cancel();
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(CallsOf("UploadChunk")[0]->cancelled.HasBeenNotified());
  ASSERT_EQ(CallsOf("CancelUpload").size(), 1u);
  EXPECT_EQ(CallsOf("CancelUpload")[0]->upload_url, kUploadUrl);
  for (const auto& chunk : CallsOf("UploadChunk")) EXPECT_FALSE(chunk->finalize);
  // Nothing more happens after the end, whatever arrives.
  task_->OnHalfClose();
  EXPECT_EQ(CallsOf("UploadChunk").size(), 1u);
}

TEST_F(UploadTaskTest, CancelBeforeTheSessionOpensCancelsItWhenItOpens) {
  const std::string bytes = PngOfSize(kSniffBytes + 100);
  Start();
  Header(static_cast<int64_t>(bytes.size()));
  Chunk(bytes.substr(0, kSniffBytes));
  ASSERT_EQ(CallsOf("StartUpload").size(), 1u);
  task_->Cancel();
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kCancelled));
  // The start runs to its end (only its answer names the session), then the session is
  // cancelled at once and nothing is sent.
  EXPECT_TRUE(CallsOf("CancelUpload").empty());
  CallsOf("StartUpload")[0]->session_done(
      gemini::UploadSession{.upload_url = kUploadUrl, .chunk_granularity = kGranularity});
  ASSERT_EQ(CallsOf("CancelUpload").size(), 1u);
  EXPECT_EQ(CallsOf("CancelUpload")[0]->upload_url, kUploadUrl);
  EXPECT_TRUE(CallsOf("UploadChunk").empty());
}

TEST_F(UploadTaskTest, TransientChunkFailureResumesFromWhatGeminiHolds) {
  const std::string bytes = PngOfSize(3 * kGranularity + 5);
  StartWithFirstChunkInFlight(bytes);
  // The first chunk fails with a reset: Gemini is asked what it holds after a backoff.
  auto first = CallsOf("UploadChunk")[0];
  answered_ = gemini_->calls().size();
  first->upload_done(WithOutcome(absl::UnavailableError("connection reset"),
                                 reasons::kUpstreamUnreachable));
  EXPECT_TRUE(CallsOf("QueryUpload").empty());  // waits first
  ASSERT_TRUE(timer_->NextDue().has_value());
  timer_->Advance(absl::Seconds(5));
  ASSERT_EQ(CallsOf("QueryUpload").size(), 1u);
  // Gemini holds 1000 bytes of the chunk: the rest of it is sent from there.
  answered_ = gemini_->calls().size();
  CallsOf("QueryUpload")[0]->upload_done(
      Active(1000));
  const auto chunks = CallsOf("UploadChunk");
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[1]->offset, 1000);
  EXPECT_TRUE(chunks[1]->bytes() == bytes.substr(1000, kSniffBytes - 1000));
  // The rest streams normally; Gemini ends up with every byte once.
  Feed(bytes.substr(kSniffBytes), 64 * 1024);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  EXPECT_TRUE(stored_ == bytes);
  EXPECT_EQ((*result_)->sha256(), gemini::Sha256::HexOf(bytes));
}

// A non-final chunk's request goes out as soon as the chunk starts, and the client's bytes go
// into it as they come (receiving and sending overlap); once it is full, one more message is
// held and no read is asked for until Gemini confirms the chunk.
TEST_F(UploadTaskTest, AChunkIsSentWhileItFillsAndHoldsOneMessageOnceFull) {
  const std::string bytes = PngOfSize(4 * kGranularity + 5);
  StartWithFirstChunkInFlight(bytes);
  AnswerUpstream();  // the first chunk (the sniffed bytes) is confirmed
  auto chunks = CallsOf("UploadChunk");
  ASSERT_EQ(chunks.size(), 2u) << "the next chunk starts before any of its bytes arrived";
  EXPECT_EQ(chunks[1]->offset, kSniffBytes);
  EXPECT_EQ(chunks[1]->chunk.size(), static_cast<size_t>(kGranularity));
  EXPECT_FALSE(chunks[1]->finalize);
  EXPECT_EQ(chunks[1]->bytes(), "");

  const size_t piece = 100 * 1024;
  ASSERT_EQ(reads_, 1);
  Chunk(bytes.substr(kSniffBytes, piece));
  EXPECT_TRUE(chunks[1]->bytes() == bytes.substr(kSniffBytes, piece)) << "sent as it came";
  EXPECT_EQ(reads_, 1) << "room in the chunk: the next message is asked for";
  Chunk(bytes.substr(kSniffBytes + piece, piece));
  Chunk(bytes.substr(kSniffBytes + 2 * piece, piece));  // fills the chunk; the rest is held
  EXPECT_TRUE(chunks[1]->chunk_complete());
  EXPECT_TRUE(chunks[1]->bytes() == bytes.substr(kSniffBytes, kGranularity));
  EXPECT_EQ(reads_, 0) << "a full chunk in flight and a message held: no more reads";
  EXPECT_EQ(CallsOf("UploadChunk").size(), 2u);

  AnswerUpstream();  // confirmed: the held bytes start the next chunk
  chunks = CallsOf("UploadChunk");
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2]->offset, kSniffBytes + kGranularity);
  EXPECT_TRUE(chunks[2]->bytes() == bytes.substr(kSniffBytes + kGranularity,
                                                 3 * piece - kGranularity));
  EXPECT_EQ(reads_, 1);
  Feed(bytes.substr(kSniffBytes + 3 * piece), 64 * 1024);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  EXPECT_TRUE(stored_ == bytes);
}

// Chunks sent while they fill hold an upstream connection each, so they are bounded service-wide
// (max_filling_upload_chunks): without a permit a chunk is assembled whole, then sent; a chunk
// with one gives it back once it is full.
TEST_F(UploadTaskTest, WithoutAFillingPermitAChunkIsAssembledBeforeItIsSent) {
  const std::string bytes = PngOfSize(4 * kGranularity + 5);
  options_.max_filling_upload_chunks = 1;
  Semaphore::Permit other = Filling().TryAcquire(1);  // another upload's chunk fills
  StartWithFirstChunkInFlight(bytes);  // complete at once: sent without a permit
  AnswerUpstream();
  const size_t piece = 100 * 1024;
  Chunk(bytes.substr(kSniffBytes, piece));
  Chunk(bytes.substr(kSniffBytes + piece, piece));
  EXPECT_EQ(CallsOf("UploadChunk").size(), 1u) << "no permit: the chunk is not sent yet";
  EXPECT_EQ(reads_, 1);
  Chunk(bytes.substr(kSniffBytes + 2 * piece, piece));  // full: sent; the rest is held
  auto chunks = CallsOf("UploadChunk");
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_TRUE(chunks[1]->chunk_complete());
  EXPECT_TRUE(chunks[1]->bytes() == bytes.substr(kSniffBytes, kGranularity));
  EXPECT_EQ(reads_, 0);
  EXPECT_EQ(Filling().in_use(), 1);

  other.Release();  // the other chunk is full now
  AnswerUpstream();
  chunks = CallsOf("UploadChunk");
  ASSERT_EQ(chunks.size(), 3u) << "with a permit the next chunk goes out at once";
  EXPECT_FALSE(chunks[2]->chunk_complete());
  EXPECT_EQ(Filling().in_use(), 1);
  Feed(bytes.substr(kSniffBytes + 3 * piece), 64 * 1024);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  EXPECT_TRUE(stored_ == bytes);
  EXPECT_EQ(Filling().in_use(), 0);
}

// A chunk that fails while it is still filling resumes like any other: from what Gemini holds,
// with the same buffer, which goes on filling as the client sends.
TEST_F(UploadTaskTest, AChunkFailingWhileItFillsResumesFromGeminisCount) {
  const std::string bytes = PngOfSize(4 * kGranularity + 5);
  StartWithFirstChunkInFlight(bytes);
  AnswerUpstream();
  Chunk(bytes.substr(kSniffBytes, 100 * 1024));
  auto filling = CallsOf("UploadChunk")[1];
  ASSERT_FALSE(filling->chunk_complete());
  answered_ = gemini_->calls().size();
  filling->upload_done(
      WithOutcome(absl::UnavailableError("connection reset"), reasons::kUpstreamUnreachable));
  timer_->Advance(absl::Seconds(5));
  ASSERT_EQ(CallsOf("QueryUpload").size(), 1u);
  answered_ = gemini_->calls().size();
  CallsOf("QueryUpload")[0]->upload_done(Active(kSniffBytes + 40 * 1024));
  const auto chunks = CallsOf("UploadChunk");
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2]->offset, kSniffBytes + 40 * 1024);
  EXPECT_EQ(chunks[2]->chunk.size(), static_cast<size_t>(kGranularity - 40 * 1024));
  EXPECT_TRUE(chunks[2]->bytes() == bytes.substr(kSniffBytes + 40 * 1024, 60 * 1024));
  EXPECT_FALSE(chunks[2]->chunk_complete());
  Feed(bytes.substr(kSniffBytes + 100 * 1024), 64 * 1024);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  EXPECT_TRUE(stored_ == bytes);
  EXPECT_EQ((*result_)->sha256(), gemini::Sha256::HexOf(bytes));
}

// A failure while a chunk fills abandons its buffer, so that the request sending it ends at once
// instead of waiting for bytes that will never come; the session is cancelled.
TEST_F(UploadTaskTest, AnUploadEndingWhileAChunkFillsAbandonsTheChunk) {
  std::shared_ptr<Call> filling;
  std::shared_ptr<GrowingBuffer> buffer;
  ASSERT_NO_FATAL_FAILURE(StartFillingSecondChunk(filling, buffer));
  HalfClose();  // fewer bytes than size_bytes
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Filling().in_use(), 0) << "the filling permit is given back";
  EXPECT_TRUE(buffer->abandoned());
  EXPECT_TRUE(filling->cancelled.HasBeenNotified());
  EXPECT_EQ(CallsOf("CancelUpload").size(), 1u);
  for (const auto& chunk : CallsOf("UploadChunk")) EXPECT_FALSE(chunk->finalize);
}

// Issue #17: a caller that sends nothing holds no slot for ever. (Before --upload_idle_timeout_s
// these uploads waited as long as their callers did: without a deadline, for ever.)
TEST_F(UploadTaskTest, ACallerSendingNothingIsCutOffAfterTheIdleTimeout) {
  options_.upload_idle_timeout = absl::Seconds(60);
  // Not even a header.
  Start();
  timer_->Advance(absl::Seconds(59));
  EXPECT_FALSE(result_.has_value());
  timer_->Advance(absl::Seconds(1));
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                 ::testing::HasSubstr("--upload_idle_timeout_s")));
  EXPECT_EQ(ReasonOf(result_->status()), reasons::kUploadIdle);
  EXPECT_TRUE(gemini_->calls().empty());

  // A header, then nothing.
  result_.reset();
  reads_ = 0;
  Start();
  Header(4 * kGranularity);
  timer_->Advance(absl::Seconds(60));
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(gemini_->calls().empty());
  EXPECT_FALSE(timer_->NextDue().has_value());
}

TEST_F(UploadTaskTest, ACallerStallingMidChunkGivesBackTheBufferPermitAndSession) {
  options_.upload_idle_timeout = absl::Seconds(60);
  std::shared_ptr<Call> filling;
  std::shared_ptr<GrowingBuffer> buffer;
  ASSERT_NO_FATAL_FAILURE(StartFillingSecondChunk(filling, buffer));
  timer_->Advance(absl::Seconds(60));  // the caller stalls with the chunk half full
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(ReasonOf(result_->status()), reasons::kUploadIdle);
  EXPECT_EQ(Filling().in_use(), 0) << "the filling permit is given back";
  EXPECT_TRUE(buffer->abandoned()) << "the request sending the chunk ends (its connection too)";
  EXPECT_TRUE(filling->cancelled.HasBeenNotified());
  EXPECT_EQ(CallsOf("CancelUpload").size(), 1u);
  for (const auto& chunk : CallsOf("UploadChunk")) EXPECT_FALSE(chunk->finalize);
}

// A slow caller that keeps sending (64 KiB every 30 s here, far below one chunk per minute) is
// not idle, and time the gateway spends waiting for Gemini is never the caller's.
TEST_F(UploadTaskTest, ASlowSteadyUploaderIsNotIdle) {
  options_.upload_idle_timeout = absl::Seconds(60);
  const std::string bytes = PngOfSize(kSniffBytes + 2 * kGranularity + 7);
  Start();
  Header(static_cast<int64_t>(bytes.size()));
  size_t fed = 0;
  while (!result_.has_value()) {
    if (reads_ > 0 && fed < bytes.size()) {
      timer_->Advance(absl::Seconds(30));
      const size_t n = std::min<size_t>(64 * 1024, bytes.size() - fed);
      Chunk(bytes.substr(fed, n));
      fed += n;
    } else if (reads_ > 0) {
      HalfClose();
    } else {
      timer_->Advance(absl::Seconds(120));  // Gemini takes its time answering
      ASSERT_GT(AnswerUpstream(), 0) << "stuck";
    }
  }
  EXPECT_GT(timer_->Now() - absl::FromUnixSeconds(1'700'000'000), absl::Minutes(10));
  ASSERT_THAT(*result_, IsOk());
  EXPECT_TRUE(stored_ == bytes);
}

TEST_F(UploadTaskTest, NonTransientChunkFailureEndsTheUploadWithoutResuming) {
  const std::string bytes = PngOfSize(3 * kGranularity);
  StartWithFirstChunkInFlight(bytes);
  CallsOf("UploadChunk")[0]->upload_done(WithOutcome(
      absl::InvalidArgumentError("Gemini: bad chunk"), reasons::kUpstreamInvalidArgument));
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(CallsOf("QueryUpload").empty());
  EXPECT_FALSE(timer_->NextDue().has_value());
  EXPECT_EQ(CallsOf("CancelUpload").size(), 1u);
}

TEST_F(UploadTaskTest, ResumesAreBounded) {
  const std::string bytes = PngOfSize(3 * kGranularity);
  StartWithFirstChunkInFlight(bytes);
  for (int attempt = 0; attempt <= kMaxResumes && !result_.has_value(); ++attempt) {
    CallsOf("UploadChunk").back()->upload_done(
        WithOutcome(absl::UnavailableError("503"), reasons::kUpstreamUnavailable));
    if (result_.has_value()) break;
    timer_->Advance(absl::Seconds(5));
    CallsOf("QueryUpload").back()->upload_done(
        Active(0));
  }
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kUnavailable,
                                 ::testing::HasSubstr("resumes")));
  EXPECT_EQ(CallsOf("QueryUpload").size(), static_cast<size_t>(kMaxResumes));
  for (const auto& chunk : CallsOf("UploadChunk")) EXPECT_FALSE(chunk->finalize);
}

TEST_F(UploadTaskTest, DedupeHitReturnsTheExistingFileWithoutUploading) {
  const std::string bytes = PngOfSize(1000);
  const std::string hex = gemini::Sha256::HexOf(bytes);
  Start();
  Header(static_cast<int64_t>(bytes.size()), hex);
  auto list = CallsOf("ListFiles");
  ASSERT_EQ(list.size(), 1u);
  gemini::File existing;
  existing.name = "files/existing1";
  existing.size_bytes = 1000;
  existing.state = "ACTIVE";
  existing.sha256_hash = gemini::Sha256HashFromHex(hex);
  list[0]->list_done(gemini::ListFilesResponse{.files = {existing}, .next_page_token = ""});
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  EXPECT_EQ((*result_)->name(), "files/existing1");
  EXPECT_EQ((*result_)->sha256(), hex);
  EXPECT_EQ(reads_, 0);  // nothing more was read
  EXPECT_TRUE(CallsOf("StartUpload").empty());

  // A second upload of the same bytes is answered from the cache (no list call).
  task_.reset();
  result_.reset();
  finished_.store(false);
  Start();
  Header(static_cast<int64_t>(bytes.size()), hex);
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ((*result_)->name(), "files/existing1");
  EXPECT_EQ(CallsOf("ListFiles").size(), 1u);
}

TEST_F(UploadTaskTest, DedupeMissUploadsAndCachesTheNewFile) {
  const std::string bytes = PngOfSize(1000);
  const std::string hex = gemini::Sha256::HexOf(bytes);
  Start();
  Header(static_cast<int64_t>(bytes.size()), hex);
  Feed(bytes, 400);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  std::optional<gemini::File> cached = Runtime()->hashes().Find("", hex);
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->name, (*result_)->name());
}

TEST_F(UploadTaskTest, ContradictingMimeTypeIsReportedAndTheSniffedTypeWins) {
  const std::string bytes = PngOfSize(1000);
  Start();
  Header(static_cast<int64_t>(bytes.size()), "", "IMAGE/JPEG");
  Feed(bytes, 400);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  EXPECT_EQ((*result_)->declared_mime_type(), "image/jpeg");
  EXPECT_EQ((*result_)->mime_type(), "image/png");
  EXPECT_EQ(CallsOf("StartUpload")[0]->start_request.mime_type, "image/png");
}

TEST_F(UploadTaskTest, AgreeingMimeTypeIsNotReported) {
  const std::string bytes = PngOfSize(1000);
  Start();
  Header(static_cast<int64_t>(bytes.size()), "", "image/png");
  Feed(bytes, 400);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  EXPECT_EQ((*result_)->declared_mime_type(), "");
}

TEST_F(UploadTaskTest, RotatedImageIsStoredUprightKeepingTheClientsHashForDedupe) {
  testing::Pixels pixels = testing::MakePixels(60, 20, 3, 200);
  testing::FillRect(pixels, {255, 0, 0}, 0, 0, 10, 20);
  std::optional<std::string> jpeg = testing::Encode(pixels, ".jpg", /*orientation=*/6);
  ASSERT_TRUE(jpeg.has_value());
  const std::string source_hex = gemini::Sha256::HexOf(*jpeg);
  Start();
  Header(static_cast<int64_t>(jpeg->size()), source_hex, "", "photo");
  // The dedupe lookup misses.
  ASSERT_EQ(AnswerUpstream(), 1);
  Feed(*jpeg, 1000);
  ASSERT_TRUE(result_.has_value());
  ASSERT_THAT(*result_, IsOk());
  // Upright: 20x60, re-encoded; the File says which hash is which.
  EXPECT_EQ((*result_)->width(), 20);
  EXPECT_EQ((*result_)->height(), 60);
  EXPECT_FALSE(stored_ == *jpeg);
  EXPECT_EQ((*result_)->sha256(), gemini::Sha256::HexOf(stored_));
  EXPECT_EQ((*result_)->source_sha256(), source_hex);
  EXPECT_EQ((*result_)->display_name(), "photo");
  const auto starts = CallsOf("StartUpload");
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0]->start_request.display_name,
            TagDisplayName("photo", starts[0]->start_request.name, source_hex,
                           static_cast<int64_t>(jpeg->size()), options_.file_tag_key));

  // Another replica (an empty cache) finds it by the client's hash in Gemini's list, although
  // the stored size differs from the header's.
  FilesContext other{
      .runtime = std::make_shared<const FilesRuntime>(gemini_, timer_, options_, &cpu_, nullptr),
      .record = record_};
  gemini::File listed;
  listed.name = starts[0]->start_request.name;
  listed.display_name = starts[0]->start_request.display_name;
  listed.size_bytes = static_cast<int64_t>(stored_.size());
  listed.state = "ACTIVE";
  listed.sha256_hash = gemini::Sha256HashFromHex(gemini::Sha256::HexOf(stored_));
  std::optional<absl::StatusOr<v1::File>> again;
  int reads = 0;
  auto task = MakeUpload(other, timer_->Now() + absl::Minutes(1),
                         UploadCallbacks{.read = [&reads] { ++reads; },
                                         .done = [&again](absl::StatusOr<v1::File> r) {
                                           again = std::move(r);
                                         }});
  task->Begin();
  v1::UploadRequest header;
  header.mutable_header()->set_size_bytes(static_cast<int64_t>(jpeg->size()));
  header.mutable_header()->set_sha256(source_hex);
  task->OnMessage(std::move(header));
  auto lists = CallsOf("ListFiles");
  lists.back()->list_done(gemini::ListFilesResponse{.files = {listed}, .next_page_token = ""});
  ASSERT_TRUE(again.has_value());
  ASSERT_THAT(*again, IsOk());
  EXPECT_EQ((*again)->name(), listed.name);
  EXPECT_EQ((*again)->source_sha256(), source_hex);
  EXPECT_EQ((*again)->display_name(), "photo");
}

TEST_F(UploadTaskTest, RotatedImageOverTheReorientLimitIsRefused) {
  options_.max_reorient_upload_bytes = 100;
  testing::Pixels pixels = testing::MakePixels(60, 20, 3, 200);
  std::optional<std::string> jpeg = testing::Encode(pixels, ".jpg", /*orientation=*/6);
  ASSERT_TRUE(jpeg.has_value());
  Start();
  Header(static_cast<int64_t>(jpeg->size()));
  Chunk(*jpeg);
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument,
                                 ::testing::HasSubstr("orientation")));
  EXPECT_TRUE(CallsOf("StartUpload").empty());
}

// --- ResumableUpload on its own ---

TEST(ResumableUploadTest, FailureClassificationIsTheRetryPolicysPlusALostReply) {
  EXPECT_TRUE(IsResumableUploadFailure(
      WithOutcome(absl::ResourceExhaustedError("429"), reasons::kUpstreamRateLimited)));
  EXPECT_TRUE(IsResumableUploadFailure(
      WithOutcome(absl::InternalError("500"), reasons::kUpstreamInternal)));
  EXPECT_TRUE(IsResumableUploadFailure(
      WithOutcome(absl::UnavailableError("reset"), reasons::kUpstreamUnreachable)));
  EXPECT_TRUE(IsResumableUploadFailure(
      WithOutcome(absl::UnavailableError("lost"), reasons::kUpstreamConnectionLost)));
  EXPECT_FALSE(IsResumableUploadFailure(
      WithOutcome(absl::UnavailableError("tls"), reasons::kUpstreamTls)));
  EXPECT_FALSE(IsResumableUploadFailure(
      WithOutcome(absl::InvalidArgumentError("400"), reasons::kUpstreamInvalidArgument)));
  EXPECT_FALSE(IsResumableUploadFailure(absl::CancelledError("cancelled")));
  EXPECT_FALSE(IsResumableUploadFailure(absl::OkStatus()));
}

TEST(ResumableUploadTest, ALostFinalizeReplyIsRecoveredByReadingTheFileBack) {
  auto gemini = std::make_shared<FakeGeminiClient>();
  auto timer = std::make_shared<FakeTimer>();
  auto upload =
      std::make_shared<ResumableUpload>(*gemini, *timer, timer->Now() + absl::Minutes(1));
  absl::Status started = absl::UnknownError("not yet");
  upload->Start(gemini::StartUploadRequest{.size_bytes = 5, .mime_type = "image/png",
                                           .display_name = "", .name = "files/g1-x"},
                [&](absl::Status s) { started = s; });
  gemini->calls()[0]->session_done(gemini::UploadSession{.upload_url = kUploadUrl});
  ASSERT_THAT(started, IsOk());
  std::optional<absl::StatusOr<gemini::File>> result;
  upload->Send(GrowingBuffer::Of("hello"), true,
               [&](absl::StatusOr<gemini::File> f) { result = std::move(f); });
  gemini->calls()[1]->upload_done(
      WithOutcome(absl::UnavailableError("lost"), reasons::kUpstreamConnectionLost));
  timer->Advance(absl::Seconds(5));
  // The session is gone (Gemini finalized it): the file is read back under its name.
  gemini->calls()[2]->upload_done(
      WithOutcome(absl::NotFoundError("no session"), reasons::kUpstreamNotFound));
  ASSERT_EQ(gemini->calls()[3]->method, "GetFile");
  EXPECT_EQ(gemini->calls()[3]->name, "files/g1-x");
  gemini::File file;
  file.name = "files/g1-x";
  file.size_bytes = 5;
  gemini->calls()[3]->file_done(file);
  ASSERT_TRUE(result.has_value());
  ASSERT_THAT(*result, IsOk());
  EXPECT_EQ((*result)->name, "files/g1-x");
  // Finalized: aborting now does not cancel anything at Gemini.
  upload->Abort();
  EXPECT_EQ(gemini->calls().size(), 4u);
}

TEST(ResumableUploadTest, ShortAcknowledgementResendsTheRestFromTheSameBuffer) {
  auto gemini = std::make_shared<FakeGeminiClient>();
  auto timer = std::make_shared<FakeTimer>();
  auto upload =
      std::make_shared<ResumableUpload>(*gemini, *timer, timer->Now() + absl::Minutes(1));
  upload->Start(gemini::StartUploadRequest{.size_bytes = 20, .mime_type = "image/png",
                                           .display_name = "", .name = ""},
                [](absl::Status) {});
  gemini->calls()[0]->session_done(
      gemini::UploadSession{.upload_url = kUploadUrl, .chunk_granularity = 10});
  std::optional<absl::StatusOr<gemini::File>> result;
  upload->Send(GrowingBuffer::Of("0123456789"), false,
               [&](absl::StatusOr<gemini::File> f) { result = std::move(f); });
  gemini->calls()[1]->upload_done(Active(4));
  timer->Advance(absl::Seconds(5));
  gemini->calls()[2]->upload_done(Active(4));
  ASSERT_EQ(gemini->calls()[3]->method, "UploadChunk");
  EXPECT_EQ(gemini->calls()[3]->offset, 4);
  EXPECT_EQ(gemini->calls()[3]->bytes(), "456789");
  gemini->calls()[3]->upload_done(Active(10));
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(*result, IsOk());
  EXPECT_EQ(upload->offset(), 10);
}

// Issue #17: the resume waits run on the one retry loop, which honours Gemini's RetryInfo (the
// upload's own backoff did not: it asked again after 50 ms whatever Gemini said).
// A one-chunk upload whose chunk is on its way to Gemini (calls()[1], answered by the test);
// `result` gets the upload's end.
std::shared_ptr<ResumableUpload> SendOneChunk(FakeGeminiClient& gemini, FakeTimer& timer,
                                              absl::Time deadline, absl::Duration max_retry_delay,
                                              std::optional<absl::StatusOr<gemini::File>>& result) {
  auto upload = std::make_shared<ResumableUpload>(gemini, timer, deadline, nullptr, nullptr,
                                                  max_retry_delay);
  upload->Start(gemini::StartUploadRequest{.size_bytes = 5, .mime_type = "image/png",
                                           .display_name = "", .name = ""},
                [](absl::Status) {});
  gemini.calls()[0]->session_done(gemini::UploadSession{.upload_url = kUploadUrl});
  upload->Send(GrowingBuffer::Of("hello"), true,
               [&result](absl::StatusOr<gemini::File> f) { result = std::move(f); });
  return upload;
}

TEST(ResumableUploadTest, AResumeWaitsAtLeastTheDelayGeminiAskedFor) {
  auto gemini = std::make_shared<FakeGeminiClient>();
  auto timer = std::make_shared<FakeTimer>();
  std::optional<absl::StatusOr<gemini::File>> result;
  auto upload = SendOneChunk(*gemini, *timer, timer->Now() + absl::Minutes(1),
                             absl::InfiniteDuration(), result);
  gemini->calls()[1]->upload_done(WithRetryInfo(
      WithOutcome(absl::ResourceExhaustedError("quota"), reasons::kUpstreamRateLimited),
      absl::Seconds(3)));
  timer->Advance(absl::Milliseconds(2999));
  EXPECT_EQ(gemini->calls().size(), 2u) << "asked again before the delay Gemini asked for";
  timer->Advance(absl::Milliseconds(1));
  ASSERT_EQ(gemini->calls().size(), 3u);
  EXPECT_EQ(gemini->calls()[2]->method, "QueryUpload");
  upload->Abort();
}

// --max_retry_delay_s reaches the resume too: a wait longer than the bound is not taken, the
// upload fails at once with Gemini's RetryInfo (the caller decides).
TEST(ResumableUploadTest, AResumeLongerThanTheMaxRetryDelayFailsAtOnce) {
  auto gemini = std::make_shared<FakeGeminiClient>();
  auto timer = std::make_shared<FakeTimer>();
  std::optional<absl::StatusOr<gemini::File>> result;
  auto upload =
      SendOneChunk(*gemini, *timer, absl::InfiniteFuture(), absl::Seconds(60), result);
  gemini->calls()[1]->upload_done(WithRetryInfo(
      WithOutcome(absl::ResourceExhaustedError("quota"), reasons::kUpstreamRateLimited),
      absl::Hours(1)));
  ASSERT_TRUE(result.has_value()) << "waited for the hour Gemini asked for";
  EXPECT_EQ(result->status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(gemini->calls().size(), 2u);
  upload->Abort();
}

// --- Files helpers ---

TEST(FileHashCacheTest, EntriesExpireAfterTheTtlOnTheInjectedClock) {
  FakeTimer timer;
  FileHashCache cache(absl::Seconds(30), timer);
  gemini::File file;
  file.name = "files/a";
  cache.Put("", "hash", file);
  ASSERT_TRUE(cache.Find("", "hash").has_value());
  timer.Advance(absl::Seconds(29));
  EXPECT_TRUE(cache.Find("", "hash").has_value());
  timer.Advance(absl::Seconds(1));
  EXPECT_FALSE(cache.Find("", "hash").has_value());
  // A zero TTL disables the cache.
  FileHashCache off(absl::ZeroDuration(), timer);
  off.Put("", "hash", file);
  EXPECT_FALSE(off.Find("", "hash").has_value());
  // Forget drops a deleted file.
  cache.Put("", "hash", file);
  cache.Forget("files/a");
  EXPECT_FALSE(cache.Find("", "hash").has_value());
}

// Files helpers on a fake client and a manual clock.
class AwaitActiveFileTest : public ::testing::Test {
 protected:
  ~AwaitActiveFileTest() override { gemini->ReleaseCallbacks(); }

  std::shared_ptr<FakeGeminiClient> gemini = std::make_shared<FakeGeminiClient>();
  std::shared_ptr<FakeTimer> timer = std::make_shared<FakeTimer>();
  VisionOptions options;
  FilesContext context{
      .runtime = std::make_shared<const FilesRuntime>(gemini, timer, options, nullptr, nullptr)};

  // Starts waiting for `name`; the result lands in `out`.
  void Await(const std::string& name, std::optional<absl::StatusOr<gemini::File>>& out) {
    AwaitActiveFile(context, name, timer->Now() + absl::Minutes(1), std::make_shared<StagedCall>(),
                    [&out](absl::StatusOr<gemini::File> f) { out = std::move(f); });
  }

  static gemini::File FileIn(const std::string& name, const std::string& state) {
    gemini::File file;
    file.name = name;
    file.state = state;
    return file;
  }
};

TEST_F(AwaitActiveFileTest, PollsAProcessingFileWithBackoffUntilActive) {
  std::optional<absl::StatusOr<gemini::File>> result;
  Await("files/p", result);
  gemini->calls()[0]->file_done(FileIn("files/p", "PROCESSING"));
  EXPECT_FALSE(result.has_value());
  EXPECT_EQ(gemini->calls().size(), 1u);  // waits before asking again
  timer->Advance(absl::Seconds(2));
  ASSERT_EQ(gemini->calls().size(), 2u);
  gemini->calls()[1]->file_done(FileIn("files/p", "ACTIVE"));
  ASSERT_TRUE(result.has_value());
  ASSERT_THAT(*result, IsOk());
  EXPECT_EQ((*result)->state, "ACTIVE");
}

TEST_F(AwaitActiveFileTest, FailedAndMissingFilesMapToCallerErrors) {
  std::optional<absl::StatusOr<gemini::File>> failed;
  Await("files/f", failed);
  gemini->calls()[0]->file_done(FileIn("files/f", "FAILED"));
  ASSERT_TRUE(failed.has_value());
  EXPECT_THAT(*failed, StatusIs(absl::StatusCode::kFailedPrecondition));

  std::optional<absl::StatusOr<gemini::File>> missing;
  Await("files/m", missing);
  gemini->calls()[1]->file_done(
      WithOutcome(absl::NotFoundError("gone"), reasons::kUpstreamNotFound));
  ASSERT_TRUE(missing.has_value());
  EXPECT_THAT(*missing, StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("48")));
}

TEST(ToV1FileTest, HidesTheSourceHashTagFromTheDisplayName) {
  const std::string key = RandomFileTagKey();
  gemini::File file;
  file.name = "files/x";
  file.display_name = TagDisplayName("holiday", file.name, std::string(64, 'a'), 99, key);
  v1::File out = ToV1File(file, key);
  EXPECT_EQ(out.display_name(), "holiday");
  EXPECT_EQ(out.source_sha256(), std::string(64, 'a'));
  // Under another key (another deployment, a rotated Gemini key): hidden, not trusted.
  out = ToV1File(file, RandomFileTagKey());
  EXPECT_EQ(out.display_name(), "holiday");
  EXPECT_EQ(out.source_sha256(), "");
  file.display_name = "plain|vg-src-sha256=nothex";
  out = ToV1File(file, key);
  EXPECT_EQ(out.display_name(), "plain|vg-src-sha256=nothex");
  EXPECT_EQ(out.source_sha256(), "");
}

// --- Detached upstream calls (requests that outlive their upload) ---

TEST(DetachedCallsTest, CancelAndWaitCancelsRunningCallsAndWaitsForTheirEnd) {
  FakeGeminiClient gemini;
  DetachedCalls detached;
  const uint64_t id = detached.Begin();
  ASSERT_NE(id, 0u);
  auto call = gemini.CancelUpload("u", gemini::CallOptions{},
                                  [&](absl::Status status) {
                                    EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
                                    detached.End(id);
                                  });
  detached.Attach(id, call);
  // Begun before the close, attached after it (its start was under way when CancelAndWait ran).
  const uint64_t late_id = detached.Begin();
  ASSERT_NE(late_id, 0u);
  EXPECT_EQ(detached.InFlight(), 2);
  int left = -1;
  std::thread shutdown([&] { left = detached.CancelAndWait(absl::Seconds(5)); });
  // The fake answers a cancel at once (on the cancelling thread).
  ASSERT_TRUE(gemini.calls()[0]->cancelled.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(detached.Begin(), 0u);  // closed: nothing new starts
  auto late = gemini.CancelUpload("late", gemini::CallOptions{},
                                  [&](absl::Status) { detached.End(late_id); });
  detached.Attach(late_id, late);
  // Cancelled within Attach, not left running.
  EXPECT_TRUE(gemini.calls()[1]->cancelled.HasBeenNotified());
  shutdown.join();
  EXPECT_EQ(left, 0);
  EXPECT_EQ(detached.InFlight(), 0);
}

TEST(DetachedCallsTest, CancelAndWaitWaitsForACancelCompletedLaterOnAnotherThread) {
  FakeGeminiClient gemini;
  gemini.DeferCancelCompletion();
  DetachedCalls detached;
  std::thread::id ended_on;
  ASSERT_TRUE(DetachedCalls::Run(&detached, [&](DetachedCalls::Ender end) {
    return gemini.CancelUpload("u", gemini::CallOptions{}, [&, end](absl::Status status) {
      EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
      ended_on = std::this_thread::get_id();
      end();
    });
  }));
  int left = -1;
  absl::Notification returned;
  std::thread::id shutdown_on;
  std::thread shutdown([&] {
    shutdown_on = std::this_thread::get_id();
    left = detached.CancelAndWait(absl::Seconds(10));
    returned.Notify();
  });
  ASSERT_TRUE(gemini.calls()[0]->cancelled.WaitForNotificationWithTimeout(absl::Seconds(5)));
  // Cancelled but not completed: the call is still in flight and the wait goes on.
  EXPECT_EQ(detached.InFlight(), 1);
  EXPECT_FALSE(returned.HasBeenNotified());
  EXPECT_EQ(gemini.CompleteCancelledCalls(), 1);
  shutdown.join();
  EXPECT_EQ(left, 0);
  EXPECT_EQ(detached.InFlight(), 0);
  EXPECT_NE(ended_on, std::thread::id());
  EXPECT_NE(ended_on, shutdown_on);  // not inside Cancel()
  EXPECT_NE(ended_on, std::this_thread::get_id());
}

// --max_call_duration_s: a call's time limit cancels it once, after marking it expired, and a call
// that ended before its limit leaves no timer behind.
TEST(DetachedCallsTest, ATimeLimitMarksTheCallExpiredThenCancelsIt) {
  FakeTimer timer;
  DetachedCalls calls(&timer);
  const absl::Status limit = absl::DeadlineExceededError("ran too long");
  auto expiry = std::make_shared<CallExpiry>(timer.Now() + absl::Hours(1), limit);
  bool fired_when_cancelled = false;
  int cancels = 0;
  const uint64_t id = calls.Begin();
  calls.Attach(id, [&] {
    fired_when_cancelled = expiry->fired.load();
    ++cancels;
  }, expiry);
  auto other = std::make_shared<CallExpiry>(timer.Now() + absl::Minutes(30), limit);
  int other_cancels = 0;
  const uint64_t ended = calls.Begin();
  calls.Attach(ended, [&] { ++other_cancels; }, other);
  calls.End(ended);  // finished before its limit: its timer is gone

  timer.Advance(absl::Minutes(59));
  EXPECT_EQ(cancels, 0);
  EXPECT_TRUE(expiry->Apply(absl::CancelledError("c")).code() == absl::StatusCode::kCancelled);
  timer.Advance(absl::Minutes(2));
  EXPECT_EQ(cancels, 1);
  EXPECT_TRUE(fired_when_cancelled);
  EXPECT_EQ(other_cancels, 0);
  EXPECT_FALSE(other->fired.load());
  // The owner reports the limit instead of the cancellation; a success stays a success.
  EXPECT_EQ(expiry->Apply(absl::CancelledError("c")), limit);
  EXPECT_TRUE(expiry->Apply(absl::OkStatus()).ok());
  calls.End(id);
  EXPECT_EQ(calls.InFlight(), 0);
}

TEST(DetachedCallsTest, CallsEndingNormallyLeaveNothingAndAWaitIsBounded) {
  DetachedCalls detached;
  const uint64_t done = detached.Begin();
  detached.End(done);  // ended before it was attached (a synchronous answer)
  detached.Attach(done, std::make_shared<FakeGeminiClient::Call>());
  EXPECT_EQ(detached.InFlight(), 0);
  // A call that never calls back: the wait gives up after its bound and says so.
  const uint64_t stuck = detached.Begin();
  ASSERT_NE(stuck, 0u);
  EXPECT_EQ(detached.CancelAndWait(absl::Milliseconds(20)), 1);
  detached.End(stuck);
  EXPECT_EQ(detached.InFlight(), 0);
}

// The session request runs on when its upload is aborted (so that a session it opens can be
// cancelled); at shutdown the service's DetachedCalls cancels it and waits for its callback, so
// the callback never runs after the service (timer, client) is gone.
TEST(ResumableUploadTest, AbortedSessionRequestIsEndedByTheServicesDetachedCalls) {
  auto gemini = std::make_shared<FakeGeminiClient>();
  auto timer = std::make_shared<FakeTimer>();
  DetachedCalls detached;
  auto upload = std::make_shared<ResumableUpload>(*gemini, *timer, timer->Now() + absl::Minutes(1),
                                                  nullptr, &detached);
  std::optional<absl::Status> started;
  upload->Start(gemini::StartUploadRequest{.size_bytes = 5, .mime_type = "image/png",
                                           .display_name = "", .name = "files/g1-x"},
                [&](absl::Status s) { started = s; });
  upload->Abort();
  ASSERT_EQ(gemini->calls().size(), 1u);
  EXPECT_FALSE(gemini->calls()[0]->cancelled.HasBeenNotified()) << "Abort leaves it running";
  EXPECT_EQ(detached.InFlight(), 1);
  EXPECT_EQ(detached.CancelAndWait(absl::Seconds(5)), 0);
  EXPECT_TRUE(gemini->calls()[0]->cancelled.HasBeenNotified());
  ASSERT_TRUE(started.has_value());
  EXPECT_EQ(started->code(), absl::StatusCode::kCancelled);
  // No cancel of a session that never opened, and nothing left running.
  EXPECT_EQ(gemini->calls().size(), 1u);
  EXPECT_EQ(detached.InFlight(), 0);
}

// A session that opens after its upload was aborted is cancelled at Gemini, and that cancel is
// detached work too.
TEST(ResumableUploadTest, SessionOpenedAfterAbortIsCancelledAsDetachedWork) {
  auto gemini = std::make_shared<FakeGeminiClient>();
  auto timer = std::make_shared<FakeTimer>();
  DetachedCalls detached;
  auto upload = std::make_shared<ResumableUpload>(*gemini, *timer, timer->Now() + absl::Minutes(1),
                                                  nullptr, &detached);
  upload->Start(gemini::StartUploadRequest{.size_bytes = 5, .mime_type = "image/png",
                                           .display_name = "", .name = "files/g1-x"},
                [](absl::Status) {});
  upload->Abort();
  gemini->calls()[0]->session_done(gemini::UploadSession{.upload_url = kUploadUrl});
  ASSERT_EQ(gemini->calls().size(), 2u);
  EXPECT_EQ(gemini->calls()[1]->method, "CancelUpload");
  EXPECT_EQ(gemini->calls()[1]->upload_url, kUploadUrl);
  EXPECT_EQ(detached.InFlight(), 1);  // the cancel; the session request has ended
  gemini->calls()[1]->status_done(absl::OkStatus());
  EXPECT_EQ(detached.InFlight(), 0);
}

}  // namespace
}  // namespace vision_gateway::vision
