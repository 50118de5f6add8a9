// Upload, the Files RPCs and files in tasks, through the whole stack against the emulator.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "emulator/emulator.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/gemini/sha256.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/leak_check.h"
#include "tests/integration/log_capture.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;
using ::testing::HasSubstr;

const Rgb kWhite{255, 255, 255};
const Rgb kRed{220, 20, 20};

constexpr size_t kMessageBytes = 1 << 20;

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(30)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(timeout));
  return context;
}

// The scene: a red rectangle on white, 640x480.
std::string ScenePng() { return MakePng(640, 480, kWhite, kRed, 100, 120, 300, 360); }

// A PNG bigger than `min_bytes` (noise does not compress).
std::string BigPng(size_t min_bytes) {
  int side = 512;
  while (static_cast<size_t>(side) * side * 3 < min_bytes + (1 << 20)) side += 256;
  return *Encode(NoisePixels(side, side, 3), ".png");
}

std::string ErrorReason(const grpc::Status& status) {
  google::rpc::Status rich;
  if (!rich.ParseFromString(status.error_details())) return "";
  for (const auto& any : rich.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

class UploadTest : public GatewayTest {
 protected:
  struct UploadResult {
    grpc::Status status;
    v1::File file;
  };

  // Streams `bytes` after `header` in kMessageBytes messages; `extra` more bytes are appended.
  UploadResult Upload(const std::string& bytes, v1::UploadHeader header,
                      const std::string& extra = "") {
    auto context = Context();
    UploadResult result;
    auto writer = stub_->Upload(context.get(), &result.file);
    v1::UploadRequest first;
    *first.mutable_header() = header;
    bool ok = writer->Write(first);
    const std::string all = bytes + extra;
    for (size_t at = 0; ok && at < all.size(); at += kMessageBytes) {
      v1::UploadRequest chunk;
      chunk.set_chunk(all.substr(at, kMessageBytes));
      ok = writer->Write(chunk);
    }
    writer->WritesDone();
    result.status = writer->Finish();
    ExpectClean("Upload", result.status, *context);
    return result;
  }

  // The upload fault cases' errors go through the leak checker (leak_check.h).
  void ExpectClean(const std::string& what, const grpc::Status& status,
                   const grpc::ClientContext& context) {
    if (status.ok()) return;
    ExpectNoLeaks(what, status, TrailersOf(context),
                  LeakCheck{.secrets = {kEmulatorKey},
                            .upstream_ports = {emulator_->port()},
                            .literals = {"123456"}});
  }

  UploadResult Upload(const std::string& bytes, bool with_sha = false) {
    v1::UploadHeader header;
    header.set_size_bytes(static_cast<int64_t>(bytes.size()));
    header.set_display_name("test upload");
    if (with_sha) header.set_sha256(gemini::Sha256::HexOf(bytes));
    return Upload(bytes, header);
  }

  int RequestsTo(const std::string& needle, const std::string& command = "") {
    int n = 0;
    for (const auto& r : emulator_->Requests()) {
      if (absl::StrContains(r.target, needle) &&
          (command.empty() || absl::StrContains(r.Header("x-goog-upload-command"), command))) {
        ++n;
      }
    }
    return n;
  }

  std::vector<v1::DetectResponse> Detect(v1::Image image, grpc::Status* status) {
    v1::DetectRequest request;
    *request.mutable_image() = std::move(image);
    auto context = Context();
    auto reader = stub_->Detect(context.get(), request);
    std::vector<v1::DetectResponse> out;
    v1::DetectResponse response;
    while (reader->Read(&response)) out.push_back(response);
    *status = reader->Finish();
    ExpectClean("Detect", *status, *context);
    return out;
  }

  grpc::Status Caption(v1::CaptionRequest request, std::string* text = nullptr) {
    auto context = Context();
    auto reader = stub_->Caption(context.get(), request);
    v1::CaptionResponse response;
    while (reader->Read(&response)) {
      if (text != nullptr) *text += response.text();
    }
    grpc::Status status = reader->Finish();
    ExpectClean("Caption", status, *context);
    return status;
  }

  static v1::Image FileImage(const std::string& name) {
    v1::Image image;
    image.set_file(name);
    return image;
  }
};

TEST_F(UploadTest, UploadThenDetectOnTheFileGivesTheSameBoxesAsInline) {
  const std::string png = ScenePng();
  UploadResult uploaded = Upload(png);
  ASSERT_TRUE(uploaded.status.ok()) << uploaded.status.error_message();
  EXPECT_THAT(uploaded.file.name(), ::testing::StartsWith("files/g1-"));
  EXPECT_EQ(uploaded.file.width(), 640);
  EXPECT_EQ(uploaded.file.height(), 480);
  EXPECT_EQ(uploaded.file.size_bytes(), static_cast<int64_t>(png.size()));
  EXPECT_EQ(uploaded.file.sha256(), gemini::Sha256::HexOf(png));
  EXPECT_EQ(uploaded.file.mime_type(), "image/png");
  EXPECT_EQ(uploaded.file.state(), v1::File::STATE_ACTIVE);

  grpc::Status inline_status, file_status;
  v1::Image inline_image;
  inline_image.set_content(png);
  auto inline_results = Detect(inline_image, &inline_status);
  auto file_results = Detect(FileImage(uploaded.file.name()), &file_status);
  ASSERT_TRUE(inline_status.ok()) << inline_status.error_message();
  ASSERT_TRUE(file_status.ok()) << file_status.error_message();
  ASSERT_EQ(inline_results.size(), file_results.size());
  ASSERT_GE(file_results.size(), 3u);  // info, >= 1 detection, summary
  EXPECT_EQ(file_results[0].image_info().width(), 640);
  EXPECT_FALSE(file_results[0].image_info().size_unknown());
  for (size_t i = 1; i + 1 < file_results.size(); ++i) {
    EXPECT_EQ(file_results[i].detection().box().DebugString(),
              inline_results[i].detection().box().DebugString());
    EXPECT_EQ(file_results[i].detection().label(), inline_results[i].detection().label());
  }
  // The full Gemini URI of the file works too.
  auto by_uri = Detect(FileImage(uploaded.file.uri()), &file_status);
  EXPECT_TRUE(file_status.ok()) << file_status.error_message();
  EXPECT_EQ(by_uri.size(), file_results.size());
}

TEST_F(UploadTest, LargeUploadGoesUpInGranularityChunksAndFilesRpcsSeeIt) {
  const std::string png = BigPng(20 << 20);
  ASSERT_GT(png.size(), size_t{16} << 20);
  UploadResult uploaded = Upload(png, /*with_sha=*/true);
  ASSERT_TRUE(uploaded.status.ok()) << uploaded.status.error_message();
  EXPECT_EQ(uploaded.file.sha256(), gemini::Sha256::HexOf(png));
  EXPECT_EQ(uploaded.file.size_bytes(), static_cast<int64_t>(png.size()));
  // Two full 8 MiB chunks, then the rest with finalize.
  EXPECT_EQ(RequestsTo("upload_id=", "upload"), 3);
  for (const auto& r : emulator_->Requests()) {
    if (r.Header("x-goog-upload-command") == "upload") {
      EXPECT_EQ(r.body_size, size_t{8} << 20);
    }
  }

  v1::GetFileRequest get;
  get.set_name(uploaded.file.name());
  v1::File got;
  auto context = Context();
  ASSERT_TRUE(stub_->GetFile(context.get(), get, &got).ok());
  EXPECT_EQ(got.sha256(), uploaded.file.sha256());
  EXPECT_EQ(got.width(), uploaded.file.width());
  EXPECT_TRUE(got.has_create_time());
  EXPECT_TRUE(got.has_expire_time());
  EXPECT_NEAR(got.expire_time().seconds() - got.create_time().seconds(), 48 * 3600, 2);

  v1::ListFilesRequest list;
  list.set_page_size(1);
  v1::ListFilesResponse page;
  context = Context();
  ASSERT_TRUE(stub_->ListFiles(context.get(), list, &page).ok());
  ASSERT_EQ(page.files_size(), 1);
  EXPECT_EQ(page.files(0).name(), uploaded.file.name());
  list.set_page_size(101);
  context = Context();
  EXPECT_EQ(stub_->ListFiles(context.get(), list, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::DeleteFileRequest del;
  del.set_name(uploaded.file.name());
  google::protobuf::Empty empty;
  context = Context();
  ASSERT_TRUE(stub_->DeleteFile(context.get(), del, &empty).ok());
  context = Context();
  grpc::Status gone = stub_->GetFile(context.get(), get, &got);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(gone.error_message(), HasSubstr("48 hours"));
  EXPECT_EQ(ErrorReason(gone), "FILE_NOT_FOUND");
}

TEST_F(UploadTest, ExifRotatedUploadIsStoredUpright) {
  Pixels pixels = MakePixels(480, 640, 3);  // stored portrait; orientation 6 shows it landscape
  FillRect(pixels, kWhite, 0, 0, 480, 640);
  FillRect(pixels, kRed, 100, 100, 300, 400);
  const std::optional<std::string> jpeg = Encode(pixels, ".jpg", 6);
  ASSERT_TRUE(jpeg.has_value());
  UploadResult uploaded = Upload(*jpeg);
  ASSERT_TRUE(uploaded.status.ok()) << uploaded.status.error_message();
  EXPECT_EQ(uploaded.file.width(), 640);
  EXPECT_EQ(uploaded.file.height(), 480);

  grpc::Status inline_status, file_status;
  v1::Image inline_image;
  inline_image.set_content(*jpeg);
  auto inline_results = Detect(inline_image, &inline_status);
  auto file_results = Detect(FileImage(uploaded.file.name()), &file_status);
  ASSERT_TRUE(inline_status.ok() && file_status.ok()) << file_status.error_message();
  ASSERT_EQ(inline_results.size(), file_results.size());
  for (size_t i = 1; i + 1 < file_results.size(); ++i) {
    const auto& a = file_results[i].detection().box();
    const auto& b = inline_results[i].detection().box();
    EXPECT_NEAR(a.x_min(), b.x_min(), 2);
    EXPECT_NEAR(a.y_min(), b.y_min(), 2);
    EXPECT_NEAR(a.x_max(), b.x_max(), 2);
    EXPECT_NEAR(a.y_max(), b.y_max(), 2);
  }
}

TEST_F(UploadTest, RotatedUploadIsFoundAgainByTheClientsHash) {
  Pixels pixels = MakePixels(48, 64, 3);
  FillRect(pixels, kWhite, 0, 0, 48, 64);
  FillRect(pixels, kRed, 10, 10, 30, 40);
  const std::optional<std::string> jpeg = Encode(pixels, ".jpg", 6);
  ASSERT_TRUE(jpeg.has_value());
  const std::string source_sha = gemini::Sha256::HexOf(*jpeg);
  UploadResult first = Upload(*jpeg, /*with_sha=*/true);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  // Stored upright (re-encoded): sha256 is of the stored bytes, source_sha256 the client's.
  EXPECT_EQ(first.file.source_sha256(), source_sha);
  EXPECT_NE(first.file.sha256(), source_sha);
  EXPECT_EQ(first.file.sha256().size(), 64u);
  EXPECT_EQ(first.file.display_name(), "test upload");

  // GetFile shows the same, the tag hidden from display_name.
  v1::GetFileRequest get;
  get.set_name(first.file.name());
  v1::File got;
  auto context = Context();
  ASSERT_TRUE(stub_->GetFile(context.get(), get, &got).ok());
  EXPECT_EQ(got.display_name(), "test upload");
  EXPECT_EQ(got.source_sha256(), source_sha);
  EXPECT_EQ(got.sha256(), first.file.sha256());

  // The same original bytes again: a dedupe hit by the client's hash, nothing uploaded.
  emulator_->ClearRequests();
  UploadResult second = Upload(*jpeg, /*with_sha=*/true);
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_EQ(second.file.name(), first.file.name());
  EXPECT_EQ(RequestsTo("/upload/"), 0);
  EXPECT_EQ(emulator_->FileCount(), 1);
}

TEST_F(UploadTest, ContradictingMimeTypeIsReportedInTheFile) {
  const std::string png = ScenePng();
  v1::UploadHeader header;
  header.set_size_bytes(static_cast<int64_t>(png.size()));
  header.set_mime_type("image/webp");
  UploadResult uploaded = Upload(png, header);
  ASSERT_TRUE(uploaded.status.ok()) << uploaded.status.error_message();
  EXPECT_EQ(uploaded.file.mime_type(), "image/png");
  EXPECT_EQ(uploaded.file.declared_mime_type(), "image/webp");
}

TEST_F(UploadTest, SizeMismatchEitherWayNeverFinalizes) {
  const std::string png = BigPng(9 << 20);
  v1::UploadHeader header;
  header.set_size_bytes(static_cast<int64_t>(png.size()) + 10);
  UploadResult fewer = Upload(png, header);
  EXPECT_EQ(fewer.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(fewer.status.error_message(), HasSubstr("size_bytes"));

  header.set_size_bytes(static_cast<int64_t>(png.size()));
  UploadResult more = Upload(png, header, "x");
  EXPECT_EQ(more.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(more.status.error_message(), HasSubstr("more bytes"));

  EXPECT_TRUE(emulator_->WaitForOpenUploads(0, absl::Seconds(10)).ok());
  EXPECT_EQ(emulator_->FileCount(), 0);
  EXPECT_EQ(RequestsTo("upload_id=", "finalize"), 0);
}

TEST_F(UploadTest, HashMismatchIsDataLossAndCancelsTheSession) {
  const std::string png = BigPng(9 << 20);
  v1::UploadHeader header;
  header.set_size_bytes(static_cast<int64_t>(png.size()));
  header.set_sha256(gemini::Sha256::HexOf("something else"));
  UploadResult result = Upload(png, header);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(ErrorReason(result.status), "SHA256_MISMATCH");
  EXPECT_TRUE(emulator_->WaitForOpenUploads(0, absl::Seconds(10)).ok());
  EXPECT_EQ(emulator_->FileCount(), 0);
  EXPECT_EQ(RequestsTo("upload_id=", "finalize"), 0);
  EXPECT_EQ(RequestsTo("upload_id=", "cancel"), 1);
}

TEST_F(UploadTest, HeaderRulesAreInvalidArgumentBeforeAnyUpstreamCall) {
  const std::string png = ScenePng();
  v1::UploadHeader header;
  EXPECT_EQ(Upload(png, header).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  header.set_size_bytes(int64_t{3} << 30);
  EXPECT_EQ(Upload(png, header).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  header.set_size_bytes(static_cast<int64_t>(png.size()));
  header.set_sha256("xyz");
  EXPECT_EQ(Upload(png, header).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Not an image Gemini accepts: GIF bytes, even with an image mime_type.
  v1::UploadHeader gif;
  const std::string gif_bytes = "GIF89a" + std::string(100, '\0');
  gif.set_size_bytes(static_cast<int64_t>(gif_bytes.size()));
  gif.set_mime_type("image/png");
  UploadResult not_image = Upload(gif_bytes, gif);
  EXPECT_EQ(not_image.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(not_image.status.error_message(), HasSubstr("image/png"));
  // Chunks before the header.
  auto context = Context();
  v1::File file;
  auto writer = stub_->Upload(context.get(), &file);
  v1::UploadRequest chunk;
  chunk.set_chunk("abc");
  writer->Write(chunk);
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("header"));
  EXPECT_EQ(RequestsTo("/upload/"), 0);
}

TEST_F(UploadTest, CancelMidStreamCancelsTheUpstreamSession) {
  const std::string png = BigPng(20 << 20);
  auto context = Context();
  v1::File file;
  auto writer = stub_->Upload(context.get(), &file);
  v1::UploadRequest first;
  first.mutable_header()->set_size_bytes(static_cast<int64_t>(png.size()));
  ASSERT_TRUE(writer->Write(first));
  // 12 MiB: one chunk reaches Gemini, the rest waits.
  for (size_t at = 0; at < (size_t{12} << 20); at += kMessageBytes) {
    v1::UploadRequest chunk;
    chunk.set_chunk(png.substr(at, kMessageBytes));
    ASSERT_TRUE(writer->Write(chunk));
  }
  ASSERT_TRUE(emulator_->WaitForRequests(2, absl::Seconds(10)).ok());  // start + first chunk
  ASSERT_EQ(emulator_->OpenUploads(), 1);
  context->TryCancel();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(emulator_->WaitForOpenUploads(0, absl::Seconds(10)).ok());
  EXPECT_EQ(emulator_->FileCount(), 0);
}

TEST_F(UploadTest, ChunkFailureIsResumedFromWhatGeminiHolds) {
  const std::string png = BigPng(24 << 20);
  // The first chunk is lost; the second arrives but its reply is lost; the final is reset.
  emulator_->InjectUploadFault(
      {.status = 503, .keep_bytes = false, .drop_connection = false, .message = ""});
  emulator_->InjectUploadFault(
      {.status = 503, .keep_bytes = true, .drop_connection = false, .message = ""});
  emulator_->InjectUploadFault(
      {.status = 503, .keep_bytes = false, .drop_connection = true, .message = ""});
  UploadResult uploaded = Upload(png, /*with_sha=*/true);
  ASSERT_TRUE(uploaded.status.ok()) << uploaded.status.error_message();
  EXPECT_EQ(uploaded.file.sha256(), gemini::Sha256::HexOf(png));
  EXPECT_EQ(uploaded.file.size_bytes(), static_cast<int64_t>(png.size()));
  EXPECT_GE(RequestsTo("upload_id=", "query"), 2);
  EXPECT_EQ(emulator_->FileCount(), 1);
}

TEST_F(UploadTest, ChunkFailureNamingHostProjectAndKeyReachesTheCallerClean) {
  // A chunk refused for good, with what must never reach a caller in the reply (Upload's
  // helper puts the caller's view through the leak checker).
  emulator_->InjectUploadFault(
      {.status = 400,
       .keep_bytes = false,
       .drop_connection = false,
       .message = absl::StrCat("Upload rejected by 127.0.0.1:", emulator_->port(),
                               " (localhost) for consumer projects/123456, key ", kEmulatorKey,
                               ": SSL routines::wrong version number")});
  UploadResult uploaded = Upload(ScenePng());
  EXPECT_FALSE(uploaded.status.ok());
  EXPECT_EQ(emulator_->FileCount(), 0);
}

TEST_F(UploadTest, DedupeHitReturnsTheExistingFileWithoutUploading) {
  const std::string png = ScenePng();
  UploadResult first = Upload(png, /*with_sha=*/true);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  emulator_->ClearRequests();
  // The second upload is answered from what the gateway knows of Gemini's files.
  UploadResult second = Upload(png, /*with_sha=*/true);
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_EQ(second.file.name(), first.file.name());
  EXPECT_EQ(RequestsTo("/upload/"), 0);
  EXPECT_EQ(emulator_->FileCount(), 1);

  // Another replica (a fresh server, no cache) finds it in Gemini's file list.
  server::ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  auto replica = server::VisionServer::Start(options, gemini_);
  ASSERT_TRUE(replica.ok()) << replica.status();
  auto replica_stub = v1::VisionService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*replica)->port()), grpc::InsecureChannelCredentials()));
  std::swap(stub_, replica_stub);
  UploadResult third = Upload(png, /*with_sha=*/true);
  std::swap(stub_, replica_stub);
  (*replica)->Shutdown(absl::Seconds(1));
  ASSERT_TRUE(third.status.ok()) << third.status.error_message();
  EXPECT_EQ(third.file.name(), first.file.name());
  EXPECT_EQ(RequestsTo("/upload/"), 0);
  EXPECT_GE(RequestsTo("/v1beta/files?pageSize=100"), 1);
}

TEST_F(UploadTest, ProcessingThenActiveIsWaitedFor) {
  auto config = emulator_->config();
  config.file_processing = std::chrono::milliseconds(400);
  emulator_->SetConfig(config);
  UploadResult uploaded = Upload(ScenePng());
  ASSERT_TRUE(uploaded.status.ok());
  EXPECT_EQ(uploaded.file.state(), v1::File::STATE_PROCESSING);
  grpc::Status status;
  auto results = Detect(FileImage(uploaded.file.name()), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_GE(RequestsTo("/v1beta/files/g1-"), 2);  // polled until ACTIVE
}

TEST_F(UploadTest, FileStillProcessingAtTheDeadlineIsDeadlineExceeded) {
  auto config = emulator_->config();
  config.file_processing = std::chrono::milliseconds(60000);
  emulator_->SetConfig(config);
  UploadResult uploaded = Upload(ScenePng());
  ASSERT_TRUE(uploaded.status.ok()) << uploaded.status.error_message();
  ASSERT_EQ(uploaded.file.state(), v1::File::STATE_PROCESSING);
  v1::CaptionRequest request;
  *request.add_images() = FileImage(uploaded.file.name());
  auto context = Context(absl::Seconds(2));
  auto reader = stub_->Caption(context.get(), request);
  v1::CaptionResponse response;
  while (reader->Read(&response)) {
  }
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_GE(RequestsTo("/v1beta/files/g1-"), 2);  // polled meanwhile
  EXPECT_EQ(RequestsTo("generateContent"), 0) << "a PROCESSING file reached the model";
  // The poller is over on the server's side too (no timer holding the call): the permit is back.
  EXPECT_TRUE(WaitForNoActiveCalls(absl::Seconds(5)));
}

TEST_F(UploadTest, FailedFileIsFailedPrecondition) {
  auto config = emulator_->config();
  config.fail_file_processing = true;
  emulator_->SetConfig(config);
  UploadResult uploaded = Upload(ScenePng());
  ASSERT_TRUE(uploaded.status.ok());
  v1::CaptionRequest request;
  *request.add_images() = FileImage(uploaded.file.name());
  grpc::Status status = Caption(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(status), "FILE_FAILED");
}

// The upload faults of the emulator (a lost chunk, a lost reply, a reset) and a file that fails
// processing: at the most verbose log level, no log line carries any 8-character piece of the
// key (the leak proof; the generateContent faults are in telemetry_integration_test.cc).
TEST_F(UploadTest, NoLogLineCarriesTheKeyUnderUploadFaults) {
  LogCapture logs;
  SetMinLogSeverity(LogSeverity::kDebug);
  emulator_->InjectUploadFault({.status = 503, .keep_bytes = false, .drop_connection = false});
  emulator_->InjectUploadFault({.status = 503, .keep_bytes = true, .drop_connection = false});
  emulator_->InjectUploadFault({.status = 500, .keep_bytes = false, .drop_connection = true});
  Upload(ScenePng(), /*with_sha=*/true);  // resumed or failed: either way, logged
  auto config = emulator_->config();
  config.fail_file_processing = true;
  emulator_->SetConfig(config);
  UploadResult failing = Upload(BigPng(1 << 20));
  ASSERT_TRUE(failing.status.ok()) << failing.status.error_message();
  v1::CaptionRequest request;
  *request.add_images() = FileImage(failing.file.name());
  EXPECT_EQ(Caption(request).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // The calls were logged (the scan below is not vacuous).
  EXPECT_EQ(logs.AccessLines("/vision.v1.VisionService/Upload").size(), 2u);
  EXPECT_EQ(logs.AccessLines("/vision.v1.VisionService/Caption").size(), 1u);
  for (const std::string& line : logs.Lines()) {
    EXPECT_EQ(SecretFragmentIn(line, kEmulatorKey), "") << line;
  }
}

TEST_F(UploadTest, ExpiredFileIsNotFoundMentioning48Hours) {
  UploadResult uploaded = Upload(ScenePng());
  ASSERT_TRUE(uploaded.status.ok());
  emulator_->AdvanceClock(absl::Hours(49));
  v1::CaptionRequest request;
  *request.add_images() = FileImage(uploaded.file.name());
  grpc::Status status = Caption(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("48 hours"));
}

TEST_F(UploadTest, OtherUrlsAreNeverForwarded) {
  v1::CaptionRequest request;
  *request.add_images() = FileImage("https://evil.example/v1beta/files/abc");
  EXPECT_EQ(Caption(request).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(emulator_->Requests().empty());
}

TEST_F(UploadTest, CaptionAndCountTokensMixFilesAndInlineImages) {
  UploadResult uploaded = Upload(ScenePng());
  ASSERT_TRUE(uploaded.status.ok());
  v1::CaptionRequest request;
  *request.add_images() = FileImage(uploaded.file.name());
  request.add_images()->set_content(ScenePng());
  std::string text;
  grpc::Status status = Caption(request, &text);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(text, HasSubstr("red"));

  v1::CountTokensRequest count;
  *count.add_images() = FileImage(uploaded.file.name());
  v1::CountTokensResponse tokens;
  auto context = Context();
  ASSERT_TRUE(stub_->CountTokens(context.get(), count, &tokens).ok());
  EXPECT_GT(tokens.total_tokens(), 0);
}

TEST_F(UploadTest, DetectOnAFileOfUnknownSizeGivesNormalizedBoxesOnly) {
  // Uploaded straight to Gemini (the emulator), not through the gateway: a Gemini-chosen id.
  const std::string png = ScenePng();
  auto http_upload = [&]() -> std::string {
    auto& gemini = *gemini_.files;
    absl::Notification started;
    std::string url;
    gemini::StartUploadRequest request;
    request.size_bytes = static_cast<int64_t>(png.size());
    request.mime_type = "image/png";
    gemini::CallOptions options;
    options.deadline = absl::Now() + absl::Seconds(10);
    gemini.StartUpload(request, options,
                       [&](absl::StatusOr<gemini::UploadSession> s) {
                         if (s.ok()) url = s->upload_url;
                         started.Notify();
                       });
    started.WaitForNotification();
    absl::Notification finished;
    std::string name;
    gemini.UploadChunk(url, 0, png, true, options,
                       [&](absl::StatusOr<gemini::UploadStatus> s) {
                         if (s.ok() && s->file) name = s->file->name;
                         finished.Notify();
                       });
    finished.WaitForNotification();
    return name;
  };
  const std::string name = http_upload();
  ASSERT_FALSE(name.empty());
  grpc::Status status;
  auto results = Detect(FileImage(name), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_GE(results.size(), 3u);
  EXPECT_TRUE(results[0].image_info().size_unknown());
  EXPECT_EQ(results[0].image_info().width(), 0);
  const v1::Detection& d = results[1].detection();
  EXPECT_FALSE(d.has_box());
  EXPECT_TRUE(d.has_normalized_box());
  EXPECT_GT(d.normalized_box().x_max(), d.normalized_box().x_min());
}

class InlineSwitchTest : public UploadTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    options.vision.max_inline_request_bytes = 64 * 1024;
  }
};

TEST_F(InlineSwitchTest, BigInlineImagesGoThroughTheFilesApiOnceAndGiveTheSameResults) {
  const std::string big = BigPng(200 * 1024);
  v1::CaptionRequest request;
  request.add_images()->set_content(big);
  request.add_images()->set_content(ScenePng());  // small: stays inline
  std::string first_text, second_text;
  ASSERT_TRUE(Caption(request, &first_text).ok());
  EXPECT_EQ(emulator_->FileCount(), 1);
  EXPECT_EQ(RequestsTo("/upload/v1beta/files", "start"), 1);
  ASSERT_TRUE(Caption(request, &second_text).ok());
  EXPECT_EQ(first_text, second_text);
  EXPECT_EQ(emulator_->FileCount(), 1);  // identical bytes reuse the file through the hash
  EXPECT_EQ(RequestsTo("/upload/v1beta/files", "start"), 1);
  int file_parts = 0;
  for (const auto& r : emulator_->Requests()) {
    if (absl::StrContains(r.target, "GenerateContent") && absl::StrContains(r.body, "fileData")) {
      ++file_parts;
      EXPECT_TRUE(absl::StrContains(r.body, "inlineData"));  // the small one
    }
  }
  EXPECT_EQ(file_parts, 2);

  grpc::Status status;
  v1::Image image;
  image.set_content(big);
  auto results = Detect(image, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(emulator_->FileCount(), 1);  // Detect reused it too
}

// Issue #17: a hostile caller opens an Upload, sends the header and then nothing, without a
// deadline of its own. Before --upload_idle_timeout_s it held the server's only call slot (and
// its caller slot) for as long as it liked.
class UploadIdleTest : public UploadTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    options.vision.upload_idle_timeout = absl::Milliseconds(500);
    options.limits.max_concurrent_calls = 1;
  }
};

TEST_F(UploadIdleTest, AStalledUploadIsCutOffAndGivesItsSlotBack) {
  const std::string bytes = BigPng(3 << 20);
  for (const size_t sent : {size_t{0}, size_t{1} << 20}) {  // header only; stalled mid-chunk
    auto context = Context(absl::Seconds(30));  // far longer than the idle bound
    v1::File file;
    const absl::Time start = absl::Now();
    auto writer = stub_->Upload(context.get(), &file);
    v1::UploadRequest header;
    header.mutable_header()->set_size_bytes(static_cast<int64_t>(bytes.size()));
    ASSERT_TRUE(writer->Write(header));
    if (sent > 0) {
      v1::UploadRequest chunk;
      chunk.set_chunk(bytes.substr(0, sent));
      ASSERT_TRUE(writer->Write(chunk));
    }
    // ...and nothing more: the gateway ends the call.
    const grpc::Status status = writer->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << sent;
    EXPECT_EQ(ErrorReason(status), "UPLOAD_IDLE") << status.error_message();
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    ASSERT_TRUE(emulator_->WaitForOpenUploads(0, absl::Seconds(10)).ok())
        << "the upstream session was cancelled";
    // The only call slot is free again: an upload goes through.
    EXPECT_TRUE(Upload(ScenePng()).status.ok()) << sent;
  }
  EXPECT_EQ(emulator_->FileCount(), 2);
}

// Issue #17: a caller cannot make another image's request resolve to its file. Before, an upload
// named "anything|vg-src-sha256=<SHA-256 of Y>" was accepted, and a later Caption of the inline
// image Y (big enough to go through the Files API) was answered about that upload's bytes.
TEST_F(InlineSwitchTest, ADisplayNameCannotPoisonWhichFileAnImageResolvesTo) {
  const std::string y = BigPng(200 * 1024);
  const std::string y_hex = gemini::Sha256::HexOf(y);
  const std::string x = ScenePng();
  v1::UploadHeader header;
  header.set_size_bytes(static_cast<int64_t>(x.size()));
  header.set_display_name("anything|vg-src-sha256=" + y_hex);
  UploadResult planted = Upload(x, header);
  EXPECT_EQ(planted.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(planted.status.error_message(), HasSubstr("|vg-"));
  EXPECT_EQ(emulator_->FileCount(), 0);

  v1::CaptionRequest request;
  request.add_images()->set_content(y);
  ASSERT_TRUE(Caption(request).ok());
  // The file the request referenced holds Y.
  std::vector<std::string> referenced;
  for (const auto& r : emulator_->Requests()) {
    if (!absl::StrContains(r.target, "GenerateContent")) continue;
    const std::size_t at = r.body.find("/files/");
    ASSERT_NE(at, std::string::npos) << r.body.substr(0, 300);
    const std::size_t end = r.body.find('"', at);
    referenced.push_back("files/" + r.body.substr(at + 7, end - at - 7));
  }
  ASSERT_EQ(referenced.size(), 1u);
  v1::GetFileRequest get;
  get.set_name(referenced[0]);
  v1::File file;
  auto context = Context();
  ASSERT_TRUE(stub_->GetFile(context.get(), get, &file).ok());
  EXPECT_EQ(file.sha256(), y_hex);
  EXPECT_EQ(file.size_bytes(), static_cast<int64_t>(y.size()));
}

}  // namespace
}  // namespace vision_gateway::testing
