// File isolation (issue #11) through the whole stack: two callers with bearer tokens, the real
// server and the emulator. Caller B can neither get, list, use (Caption, Detect, Segment,
// CountTokens) nor delete caller A's file, and gets exactly the answer a missing file gets;
// dedupe (Upload with sha256, the transparent inline→file switch) never hands one caller's file
// to another; files without an owner tag are nobody's while authentication is on.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/gemini/sha256.h"
#include "service/vision/file_id.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kAliceToken[] = "alice-files-token-0123456789";
constexpr char kBobToken[] = "bob-files-token-0123456789ab";

const Rgb kWhite{255, 255, 255};

// A scene with one coloured rectangle; `shade` makes the bytes (and the hash) differ.
std::string ScenePng(int shade = 20) {
  return MakePng(320, 240, kWhite, Rgb{220, static_cast<uint8_t>(shade), 20}, 60, 50, 200, 160);
}

std::string ReasonOf(const grpc::Status& status) {
  google::rpc::Status rich;
  if (!rich.ParseFromString(status.error_details())) return "";
  for (const auto& any : rich.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  return context;
}

v1::Image FileImage(const std::string& name) {
  v1::Image image;
  image.set_file(name);
  return image;
}

// A file put straight into Gemini (the emulator), not through the gateway: no owner tag.
std::string UploadOutsideTheGateway(gemini::FilesStub& gemini, const std::string& bytes) {
  gemini::CallOptions options;
  options.deadline = absl::Now() + absl::Seconds(20);
  absl::Notification started;
  std::string url;
  gemini::StartUploadRequest request;
  request.size_bytes = static_cast<int64_t>(bytes.size());
  request.mime_type = "image/png";
  gemini.StartUpload(request, options, [&](absl::StatusOr<gemini::UploadSession> s) {
    if (s.ok()) url = s->upload_url;
    started.Notify();
  });
  started.WaitForNotification();
  absl::Notification finished;
  std::string name;
  gemini.UploadChunk(url, 0, bytes, true, options, [&](absl::StatusOr<gemini::UploadStatus> s) {
    if (s.ok() && s->file) name = s->file->name;
    finished.Notify();
  });
  finished.WaitForNotification();
  return name;
}

class FileIsolationTest : public GatewayTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    const std::string path =
        absl::StrCat(::testing::TempDir(), "/", getpid(), "_", ++counter_, "_file_tokens");
    std::ofstream(path, std::ios::trunc)
        << "alice " << kAliceToken << "\nbob " << kBobToken << "\n";
    server::AuthOptions auth;
    auth.tokens_file = path;
    options.auth = auth;
    options.vision.max_inline_request_bytes = max_inline_request_bytes_;
  }

  struct Uploaded {
    grpc::Status status;
    v1::File file;
  };

  Uploaded Upload(const std::string& token, const std::string& bytes, bool with_sha) {
    auto context = As(token);
    Uploaded result;
    auto writer = stub_->Upload(context.get(), &result.file);
    v1::UploadRequest header;
    header.mutable_header()->set_size_bytes(static_cast<int64_t>(bytes.size()));
    if (with_sha) header.mutable_header()->set_sha256(gemini::Sha256::HexOf(bytes));
    bool ok = writer->Write(header);
    v1::UploadRequest chunk;
    chunk.set_chunk(bytes);
    if (ok) writer->Write(chunk);
    writer->WritesDone();
    result.status = writer->Finish();
    return result;
  }

  grpc::Status GetFile(const std::string& token, const std::string& name, v1::File* file) {
    v1::GetFileRequest request;
    request.set_name(name);
    return stub_->GetFile(As(token).get(), request, file);
  }

  grpc::Status DeleteFile(const std::string& token, const std::string& name) {
    v1::DeleteFileRequest request;
    request.set_name(name);
    google::protobuf::Empty empty;
    return stub_->DeleteFile(As(token).get(), request, &empty);
  }

  // Every file the caller sees, paging with `page_size`.
  std::vector<std::string> ListAll(const std::string& token, int page_size = 0) {
    std::vector<std::string> names;
    std::string page_token;
    for (int pages = 0; pages < 100; ++pages) {
      v1::ListFilesRequest request;
      request.set_page_size(page_size);
      request.set_page_token(page_token);
      v1::ListFilesResponse response;
      grpc::Status status = stub_->ListFiles(As(token).get(), request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      if (page_size > 0) {
        EXPECT_LE(response.files_size(), page_size);
      }
      for (const v1::File& file : response.files()) names.push_back(file.name());
      page_token = response.next_page_token();
      if (page_token.empty()) break;
    }
    return names;
  }

  grpc::Status Caption(const std::string& token, v1::CaptionRequest request,
                       std::string* text = nullptr) {
    auto context = As(token);
    auto reader = stub_->Caption(context.get(), request);
    v1::CaptionResponse response;
    while (reader->Read(&response)) {
      if (text != nullptr) *text += response.text();
    }
    return reader->Finish();
  }

  grpc::Status CaptionFile(const std::string& token, const std::string& name) {
    v1::CaptionRequest request;
    *request.add_images() = FileImage(name);
    return Caption(token, request);
  }

  grpc::Status DetectFile(const std::string& token, const std::string& name, int* objects) {
    v1::DetectRequest request;
    *request.mutable_image() = FileImage(name);
    auto context = As(token);
    auto reader = stub_->Detect(context.get(), request);
    v1::DetectResponse response;
    *objects = 0;
    while (reader->Read(&response)) *objects += response.has_detection() ? 1 : 0;
    return reader->Finish();
  }

  grpc::Status SegmentFile(const std::string& token, const std::string& name, int* objects) {
    v1::SegmentRequest request;
    *request.mutable_image() = FileImage(name);
    auto context = As(token);
    auto reader = stub_->Segment(context.get(), request);
    v1::SegmentResponse response;
    *objects = 0;
    while (reader->Read(&response)) *objects += response.has_mask() ? 1 : 0;
    return reader->Finish();
  }

  grpc::Status CountTokensFile(const std::string& token, const std::string& name) {
    v1::CountTokensRequest request;
    *request.add_images() = FileImage(name);
    v1::CountTokensResponse response;
    return stub_->CountTokens(As(token).get(), request, &response);
  }

  // Requests Gemini saw for models (generate/count), as opposed to Files API calls.
  int ModelRequests() {
    int n = 0;
    for (const auto& r : emulator_->Requests()) {
      if (absl::StrContains(r.target, "/models/")) ++n;
    }
    return n;
  }

  // Requests Gemini saw that name `name` ("files/<id>") in the path.
  int RequestsFor(const std::string& name) {
    int n = 0;
    for (const auto& r : emulator_->Requests()) {
      if (absl::StrContains(r.target, name)) ++n;
    }
    return n;
  }

  int64_t max_inline_request_bytes_ = int64_t{20} << 20;
  static inline int counter_ = 0;
};

TEST_F(FileIsolationTest, AnotherCallersFileCannotBeGotUsedOrDeleted) {
  const Uploaded alices = Upload(kAliceToken, ScenePng(), /*with_sha=*/false);
  ASSERT_TRUE(alices.status.ok()) << alices.status.error_message();
  const std::string name = alices.file.name();
  EXPECT_EQ(vision::DecodeFileId(name).owner_tag, vision::OwnerTagOf("alice"));
  emulator_->ClearRequests();

  // What bob gets for a file that does not exist at all...
  const std::string missing =
      absl::StrCat("files/", vision::NewFileId(320, 240, vision::OwnerTagOf("bob")));
  v1::File file;
  const grpc::Status absent = GetFile(kBobToken, missing, &file);
  ASSERT_EQ(absent.error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_EQ(ReasonOf(absent), "FILE_NOT_FOUND");
  // ...is what he gets for alice's: same code, reason and message (but for the name).
  auto same_as_absent = [&](const grpc::Status& status, const std::string& what) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << what;
    EXPECT_EQ(ReasonOf(status), "FILE_NOT_FOUND") << what;
    EXPECT_EQ(absl::StrReplaceAll(status.error_message(), {{name, "NAME"}}),
              absl::StrReplaceAll(absent.error_message(), {{missing, "NAME"}}))
        << what;
  };
  same_as_absent(GetFile(kBobToken, name, &file), "GetFile");
  same_as_absent(
      GetFile(kBobToken, absl::StrCat("https://generativelanguage.googleapis.com/v1beta/", name), &file),
      "GetFile by URI");
  same_as_absent(CaptionFile(kBobToken, name), "Caption");
  int objects = 0;
  same_as_absent(DetectFile(kBobToken, name, &objects), "Detect");
  EXPECT_EQ(objects, 0);
  same_as_absent(SegmentFile(kBobToken, name, &objects), "Segment");
  EXPECT_EQ(objects, 0);
  same_as_absent(CountTokensFile(kBobToken, name), "CountTokens");
  same_as_absent(DeleteFile(kBobToken, name), "DeleteFile");
  // None of that reached Gemini: not the file, not a model.
  EXPECT_EQ(RequestsFor(name), 0);
  EXPECT_EQ(ModelRequests(), 0);
  EXPECT_EQ(emulator_->FileCount(), 1);

  // Bob's list does not show it; alice's does.
  EXPECT_THAT(ListAll(kBobToken), IsEmpty());
  EXPECT_EQ(ListAll(kAliceToken), std::vector<std::string>{name});

  // Alice can do all of it.
  ASSERT_TRUE(GetFile(kAliceToken, name, &file).ok());
  EXPECT_EQ(file.name(), name);
  std::string text;
  v1::CaptionRequest caption;
  *caption.add_images() = FileImage(name);
  ASSERT_TRUE(Caption(kAliceToken, caption, &text).ok());
  EXPECT_THAT(text, HasSubstr("red"));
  grpc::Status detect = DetectFile(kAliceToken, name, &objects);
  ASSERT_TRUE(detect.ok()) << detect.error_message();
  EXPECT_EQ(objects, 1);
  grpc::Status segment = SegmentFile(kAliceToken, name, &objects);
  ASSERT_TRUE(segment.ok()) << segment.error_message();
  EXPECT_EQ(objects, 1);
  ASSERT_TRUE(CountTokensFile(kAliceToken, name).ok());
  ASSERT_TRUE(DeleteFile(kAliceToken, name).ok());
  EXPECT_EQ(emulator_->FileCount(), 0);
}

TEST_F(FileIsolationTest, ListFilesPagesThroughOnlyTheCallersFiles) {
  std::set<std::string> alices, bobs;
  for (int i = 0; i < 4; ++i) {
    // Interleaved, so that Gemini's pages mix both callers' files.
    const Uploaded a = Upload(kAliceToken, ScenePng(10 + i), false);
    ASSERT_TRUE(a.status.ok()) << a.status.error_message();
    alices.insert(a.file.name());
    const Uploaded b = Upload(kBobToken, ScenePng(100 + i), false);
    ASSERT_TRUE(b.status.ok()) << b.status.error_message();
    bobs.insert(b.file.name());
  }
  const std::string untagged = UploadOutsideTheGateway(*gemini_.files, ScenePng(200));
  ASSERT_FALSE(untagged.empty());
  for (const int page_size : {1, 3, 0, 100}) {
    const std::vector<std::string> seen = ListAll(kAliceToken, page_size);
    EXPECT_EQ(seen.size(), alices.size()) << "page_size " << page_size;
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), alices) << page_size;
    const std::vector<std::string> bob_seen = ListAll(kBobToken, page_size);
    EXPECT_EQ(std::set<std::string>(bob_seen.begin(), bob_seen.end()), bobs) << page_size;
  }
  // A page token from Gemini itself is not accepted while filtering.
  v1::ListFilesRequest request;
  request.set_page_token("b2Zmc2V0OjI");  // the emulator's own token for offset 2
  v1::ListFilesResponse response;
  EXPECT_EQ(stub_->ListFiles(As(kAliceToken).get(), request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(FileIsolationTest, UntaggedFilesAreNobodysWhileAuthenticationIsOn) {
  const std::string untagged = UploadOutsideTheGateway(*gemini_.files, ScenePng());
  ASSERT_FALSE(untagged.empty());
  EXPECT_TRUE(vision::DecodeFileId(untagged).owner_tag.empty());
  for (const char* token : {kAliceToken, kBobToken}) {
    v1::File file;
    EXPECT_EQ(GetFile(token, untagged, &file).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(CaptionFile(token, untagged).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(DeleteFile(token, untagged).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(ListAll(token), IsEmpty());
  }
  EXPECT_EQ(emulator_->FileCount(), 1);
}

TEST_F(FileIsolationTest, UploadDedupeNeverReturnsAnotherCallersFile) {
  const std::string png = ScenePng();
  const Uploaded alices = Upload(kAliceToken, png, /*with_sha=*/true);
  ASSERT_TRUE(alices.status.ok()) << alices.status.error_message();
  // Alice's own second upload is a dedupe hit.
  const Uploaded again = Upload(kAliceToken, png, true);
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.file.name(), alices.file.name());
  EXPECT_EQ(emulator_->FileCount(), 1);
  // Bob's upload of the same bytes gets a file of his own.
  const Uploaded bobs = Upload(kBobToken, png, true);
  ASSERT_TRUE(bobs.status.ok()) << bobs.status.error_message();
  EXPECT_NE(bobs.file.name(), alices.file.name());
  EXPECT_EQ(vision::DecodeFileId(bobs.file.name()).owner_tag, vision::OwnerTagOf("bob"));
  EXPECT_EQ(emulator_->FileCount(), 2);
  // And his second is a hit on his own file.
  const Uploaded bobs_again = Upload(kBobToken, png, true);
  ASSERT_TRUE(bobs_again.status.ok());
  EXPECT_EQ(bobs_again.file.name(), bobs.file.name());
  EXPECT_EQ(emulator_->FileCount(), 2);
}

class InlineSwitchIsolationTest : public FileIsolationTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    max_inline_request_bytes_ = 64 * 1024;
    FileIsolationTest::ConfigureServer(options);
  }
};

TEST_F(InlineSwitchIsolationTest, TransparentUploadsCarryTheCallersTagAndDedupePerCaller) {
  const std::string big = *Encode(NoisePixels(400, 400, 3), ".png");
  ASSERT_GT(big.size(), 64u * 1024);
  v1::CaptionRequest request;
  request.add_images()->set_content(big);
  ASSERT_TRUE(Caption(kAliceToken, request).ok());
  ASSERT_EQ(emulator_->FileCount(), 1);
  const std::vector<std::string> alices = ListAll(kAliceToken);
  ASSERT_EQ(alices.size(), 1u);
  EXPECT_EQ(vision::DecodeFileId(alices[0]).owner_tag, vision::OwnerTagOf("alice"));
  EXPECT_THAT(ListAll(kBobToken), IsEmpty());

  // Alice again: her file is reused.
  ASSERT_TRUE(Caption(kAliceToken, request).ok());
  EXPECT_EQ(emulator_->FileCount(), 1);
  // Bob with the same bytes: a file of his own, never alice's.
  emulator_->ClearRequests();
  ASSERT_TRUE(Caption(kBobToken, request).ok());
  EXPECT_EQ(emulator_->FileCount(), 2);
  const std::vector<std::string> bobs = ListAll(kBobToken);
  ASSERT_EQ(bobs.size(), 1u);
  EXPECT_EQ(vision::DecodeFileId(bobs[0]).owner_tag, vision::OwnerTagOf("bob"));
  for (const auto& r : emulator_->Requests()) {
    if (absl::StrContains(r.target, "/models/")) {
      EXPECT_FALSE(absl::StrContains(r.body, alices[0])) << "bob's call used alice's file";
      EXPECT_TRUE(absl::StrContains(r.body, bobs[0]));
    }
  }
}

// Without authentication, behaviour stays as documented: every file is everyone's.
class NoAuthFilesTest : public GatewayTest {};

TEST_F(NoAuthFilesTest, EveryFileIsVisibleWithoutAuthentication) {
  const std::string untagged = UploadOutsideTheGateway(*gemini_.files, ScenePng());
  ASSERT_FALSE(untagged.empty());
  v1::GetFileRequest get;
  get.set_name(untagged);
  v1::File file;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(stub_->GetFile(&context, get, &file).ok());
  v1::ListFilesRequest list;
  v1::ListFilesResponse listed;
  grpc::ClientContext list_context;
  list_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(stub_->ListFiles(&list_context, list, &listed).ok());
  ASSERT_EQ(listed.files_size(), 1);
  EXPECT_EQ(listed.files(0).name(), untagged);
}

}  // namespace
}  // namespace vision_gateway::testing
