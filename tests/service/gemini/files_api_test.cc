// The Files API of the REST Gemini client: resumable upload start/chunk/query/cancel,
// files.get/list/delete, the upload-URL origin rule, plain-text upload errors, the File codec.
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/json_codec.h"
#include "service/gemini/sha256.h"
#include "service/gemini/types.h"
#include "tests/service/gemini/fake_http_client.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::vision_gateway::testing::FakeHttpClient;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::ScriptedResponse;
using ::vision_gateway::testing::StatusIs;

constexpr char kApiKey[] = "AIzaSy-files-key-DO-NOT-LEAK-42";
constexpr char kBaseUrl[] = "http://127.0.0.1:8123";
constexpr char kUploadUrl[] =
    "http://127.0.0.1:8123/upload/v1beta/files?upload_id=abc&upload_protocol=resumable";

constexpr char kFileJson[] = R"({
  "name": "files/x27lu0k9zc2k", "displayName": "Sample", "mimeType": "image/png",
  "sizeBytes": "41762063", "createTime": "2025-02-14T22:33:33.377817Z",
  "updateTime": "2025-02-14T22:33:33.377817Z",
  "expirationTime": "2025-02-16T22:33:33.359672295Z",
  "sha256Hash": "MGU3ZmFmZTE5ODRhZWQyNGMxNWJlMDc4OWEzNWU2MGM1YWYwYzczNzNiOWVkOWYyNjMxMzE2NzQwYTRiOWVlNg==",
  "uri": "https://generativelanguage.googleapis.com/v1beta/files/x27lu0k9zc2k",
  "state": "ACTIVE", "source": "UPLOADED"})";

std::string Header(const http::Request& request, std::string_view name) {
  return std::string(http::FindHeader(request.headers, name));
}

class FilesApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http_ = std::make_shared<FakeHttpClient>();
    GeminiOptions options;
    options.base_url = kBaseUrl;
    options.api_key = kApiKey;
    auto client = MakeGeminiClient(options, http_);
    ASSERT_THAT(client, IsOk());
    client_ = *std::move(client);
  }

  template <typename T>
  absl::StatusOr<T> Run(absl::AnyInvocable<void(absl::AnyInvocable<void(absl::StatusOr<T>)>)> start) {
    absl::StatusOr<T> out = absl::UnknownError("not called");
    int calls = 0;
    start([&](absl::StatusOr<T> r) {
      ++calls;
      out = std::move(r);
    });
    http_->RunUntilIdle();
    EXPECT_EQ(calls, 1);
    EXPECT_THAT(std::string(out.status().message()), Not(HasSubstr(kApiKey)));
    return out;
  }

  absl::StatusOr<UploadSession> Start(ScriptedResponse script) {
    http_->Enqueue(std::move(script));
    return Run<UploadSession>([&](auto done) {
      client_->StartUpload(StartUploadRequest{.size_bytes = 1234,
                                              .mime_type = "image/png",
                                              .display_name = "cat \"1\"",
                                              .name = "files/g1-abc"},
                           CallOptions(), std::move(done));
    });
  }

  absl::StatusOr<UploadStatus> Chunk(ScriptedResponse script, const std::string& url = kUploadUrl,
                                     bool finalize = false) {
    http_->Enqueue(std::move(script));
    return Run<UploadStatus>([&](auto done) {
      client_->UploadChunk(url, 8 << 20, std::string("bytes"), finalize, CallOptions(),
                           std::move(done));
    });
  }

  std::shared_ptr<FakeHttpClient> http_;
  std::unique_ptr<GeminiClient> client_;
};

TEST_F(FilesApiTest, StartSendsResumableHeadersAndReadsTheUploadUrl) {
  auto session = Start(ScriptedResponse{
      .headers = {{"X-Goog-Upload-URL", kUploadUrl},
                  {"X-Goog-Upload-Chunk-Granularity", "8388608"}}});
  ASSERT_THAT(session, IsOk());
  EXPECT_EQ(session->upload_url, kUploadUrl);
  EXPECT_EQ(session->chunk_granularity, 8388608);
  ASSERT_EQ(http_->requests().size(), 1u);
  const http::Request& r = http_->requests()[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "http://127.0.0.1:8123/upload/v1beta/files");
  EXPECT_EQ(Header(r, "x-goog-upload-protocol"), "resumable");
  EXPECT_EQ(Header(r, "x-goog-upload-command"), "start");
  EXPECT_EQ(Header(r, "x-goog-upload-header-content-length"), "1234");
  EXPECT_EQ(Header(r, "x-goog-upload-header-content-type"), "image/png");
  EXPECT_EQ(Header(r, "x-goog-api-key"), kApiKey);
  EXPECT_EQ(r.body, R"({"file":{"displayName":"cat \"1\"","name":"files/g1-abc"}})");
}

TEST_F(FilesApiTest, StartRefusesAnUploadUrlOnAnotherOrigin) {
  for (const char* url : {"https://evil.example/upload?x=1", "http://127.0.0.1:8124/upload",
                          "http://127.0.0.1:8123.evil.example/upload", "http://127.0.0.1:8123",
                          "http://127.0.0.1:8123@evil.example/x"}) {
    auto session = Start(ScriptedResponse{.headers = {{"X-Goog-Upload-URL", url}}});
    EXPECT_THAT(session, StatusIs(absl::StatusCode::kInternal, HasSubstr("origin"))) << url;
  }
  auto missing = Start(ScriptedResponse{});
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kInternal, HasSubstr("x-goog-upload-url")));
}

TEST_F(FilesApiTest, ChunkToAForeignUrlIsNeverSent) {
  auto status = Chunk(ScriptedResponse{}, "https://evil.example/upload");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInternal));
  EXPECT_TRUE(http_->requests().empty());  // the key went nowhere
}

TEST_F(FilesApiTest, ChunkSendsOffsetAndCommand) {
  auto status = Chunk(ScriptedResponse{.headers = {{"x-goog-upload-status", "active"},
                                                   {"x-goog-upload-size-received", "8388613"}}});
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(status->status, "active");
  EXPECT_EQ(status->size_received, 8388613);
  EXPECT_FALSE(status->file.has_value());
  const http::Request& r = http_->requests()[0];
  EXPECT_EQ(r.url, kUploadUrl);
  EXPECT_EQ(Header(r, "x-goog-upload-command"), "upload");
  EXPECT_EQ(Header(r, "x-goog-upload-offset"), "8388608");
  ASSERT_NE(r.streamed_body, nullptr);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.streamed_body->View().substr(r.streamed_body_offset), "bytes");
}

TEST_F(FilesApiTest, FinalChunkReturnsTheWrappedFile) {
  auto status = Chunk(ScriptedResponse{.headers = {{"X-Goog-Upload-Status", "final"}},
                                       .body = absl::StrCat("{\"file\": ", kFileJson, "}")},
                      kUploadUrl, /*finalize=*/true);
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(Header(http_->requests()[0], "x-goog-upload-command"), "upload, finalize");
  ASSERT_TRUE(status->file.has_value());
  EXPECT_EQ(status->file->name, "files/x27lu0k9zc2k");
  EXPECT_EQ(status->file->size_bytes, 41762063);
  EXPECT_EQ(status->file->state, "ACTIVE");
}

TEST_F(FilesApiTest, PlainTextUploadErrorsAreMapped) {
  auto status = Chunk(ScriptedResponse{
      .status = 400,
      .headers = {{"Content-Type", "text/plain"}},
      .body = "The client sent 821333 bytes, which is not a multiple of the 8388608 byte chunk "
              "granularity."});
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("granularity")));
  auto unavailable = Chunk(ScriptedResponse{.status = 503, .body = "Service Unavailable"});
  EXPECT_THAT(unavailable, StatusIs(absl::StatusCode::kUnavailable));
  auto no_status = Chunk(ScriptedResponse{});
  EXPECT_THAT(no_status, StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(FilesApiTest, QueryAndCancel) {
  http_->Enqueue(ScriptedResponse{.headers = {{"X-Goog-Upload-Status", "active"},
                                              {"X-Goog-Upload-Size-Received", "16777216"}}});
  auto query = Run<UploadStatus>([&](auto done) {
    client_->QueryUpload(kUploadUrl, CallOptions(), std::move(done));
  });
  ASSERT_THAT(query, IsOk());
  EXPECT_EQ(query->size_received, 16777216);
  EXPECT_EQ(Header(http_->requests()[0], "x-goog-upload-command"), "query");

  http_->Enqueue(ScriptedResponse{.headers = {{"X-Goog-Upload-Status", "cancelled"}}});
  absl::Status cancelled = absl::UnknownError("not called");
  client_->CancelUpload(kUploadUrl, CallOptions(), [&](absl::Status s) { cancelled = s; });
  http_->RunUntilIdle();
  EXPECT_THAT(cancelled, IsOk());
  EXPECT_EQ(Header(http_->requests()[1], "x-goog-upload-command"), "cancel");
}

TEST_F(FilesApiTest, GetListDelete) {
  http_->Enqueue(ScriptedResponse{.body = kFileJson});
  auto file = Run<File>([&](auto done) {
    client_->GetFile("files/x27lu0k9zc2k", CallOptions(), std::move(done));
  });
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ(http_->requests()[0].method, "GET");
  EXPECT_EQ(http_->requests()[0].url, "http://127.0.0.1:8123/v1beta/files/x27lu0k9zc2k");
  EXPECT_EQ(file->display_name, "Sample");
  EXPECT_EQ(HexFromSha256Hash(file->sha256_hash),
            "0e7fafe1984aed24c15be0789a35e60c5af0c7373b9ed9f2631316740a4b9ee6");
  EXPECT_EQ(file->create_time, absl::FromUnixMicros(1739572413377817));

  http_->Enqueue(ScriptedResponse{
      .body = absl::StrCat("{\"files\": [", kFileJson, ",", kFileJson, "], \"nextPageToken\": \"t/1=\"}")});
  auto list = Run<ListFilesResponse>([&](auto done) {
    client_->ListFiles(2, "t/1=", CallOptions(), std::move(done));
  });
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->files.size(), 2u);
  EXPECT_EQ(list->next_page_token, "t/1=");
  EXPECT_EQ(http_->requests()[1].url, "http://127.0.0.1:8123/v1beta/files?pageSize=2&pageToken=t%2F1%3D");

  http_->Enqueue(ScriptedResponse{.body = "{}"});
  absl::Status deleted = absl::UnknownError("not called");
  client_->DeleteFile("files/x27lu0k9zc2k", CallOptions(), [&](absl::Status s) { deleted = s; });
  http_->RunUntilIdle();
  EXPECT_THAT(deleted, IsOk());
  EXPECT_EQ(http_->requests()[2].method, "DELETE");
}

// models.list (issue #22): one page, its URL, and Gemini's fields.
TEST_F(FilesApiTest, ListModelsReadsOnePage) {
  http_->Enqueue(ScriptedResponse{.body = R"({"models": [
    {"name": "models/gemini-3-flash-preview", "version": "3.0", "displayName": "Gemini 3 Flash",
     "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
     "supportedGenerationMethods": ["generateContent", "countTokens"], "temperature": 1,
     "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": true},
    {"name": "models/gemini-embedding-001", "inputTokenLimit": 2048,
     "supportedGenerationMethods": ["embedContent"]}],
    "nextPageToken": "Cg=="})"});
  auto list = Run<ListModelsResponse>([&](auto done) {
    client_->ListModels(1000, "Cg/1", CallOptions(), std::move(done));
  });
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(http_->requests()[0].method, "GET");
  EXPECT_EQ(http_->requests()[0].url,
            "http://127.0.0.1:8123/v1beta/models?pageSize=1000&pageToken=Cg%2F1");
  ASSERT_EQ(list->models.size(), 2u);
  EXPECT_EQ(list->models[0].Id(), "gemini-3-flash-preview");
  EXPECT_EQ(list->models[0].display_name, "Gemini 3 Flash");
  EXPECT_EQ(list->models[0].input_token_limit, 1048576);
  EXPECT_EQ(list->models[0].output_token_limit, 65536);
  EXPECT_TRUE(list->models[0].thinking);
  EXPECT_FALSE(list->models[1].thinking);
  EXPECT_EQ(list->models[1].supported_generation_methods,
            std::vector<std::string>{"embedContent"});
  EXPECT_EQ(list->next_page_token, "Cg==");
  // A page holding more models than any page may hold is not believed.
  std::string huge = R"({"models": [)";
  for (int i = 0; i <= 1000; ++i) absl::StrAppend(&huge, i ? "," : "", R"({"name": "models/m"})");
  huge += "]}";
  http_->Enqueue(ScriptedResponse{.body = huge});
  auto too_many = Run<ListModelsResponse>([&](auto done) {
    client_->ListModels(0, "", CallOptions(), std::move(done));
  });
  EXPECT_FALSE(too_many.ok());
  EXPECT_EQ(http_->requests()[1].url, "http://127.0.0.1:8123/v1beta/models");
}

TEST_F(FilesApiTest, MissingFileIsMappedFrom403And404) {
  http_->Enqueue(ScriptedResponse{
      .status = 403,
      .body = R"({"error": {"code": 403, "message": "You do not have permission to access the File files/x or it may not exist.", "status": "PERMISSION_DENIED"}})"});
  auto file = Run<File>([&](auto done) { client_->GetFile("files/x", CallOptions(), std::move(done)); });
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(FilesApiTest, BadNamesAndTokensNeverReachTheNetwork) {
  for (const char* name : {"files/", "files/ABC", "files/-a", "x/abc", "files/a/b", "files/a?b"}) {
    auto file = Run<File>([&](auto done) { client_->GetFile(name, CallOptions(), std::move(done)); });
    EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument)) << name;
  }
  auto list = Run<ListFilesResponse>([&](auto done) {
    client_->ListFiles(10, "a&b", CallOptions(), std::move(done));
  });
  EXPECT_THAT(list, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(http_->requests().empty());
}

TEST(FileCodecTest, Sha256HashIsBase64OfTheHexText) {
  const std::string hex = Sha256::HexOf("abc");
  EXPECT_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexFromSha256Hash(Sha256HashFromHex(hex)), hex);
  EXPECT_EQ(HexFromSha256Hash("not base64!"), "");
  EXPECT_EQ(HexFromSha256Hash(Sha256HashFromHex("abcd")), "");
  Sha256 streaming;
  streaming.Update("a");
  streaming.Update("");
  streaming.Update("bc");
  EXPECT_EQ(streaming.FinishHex(), hex);
  EXPECT_EQ(streaming.FinishHex(), Sha256::HexOf(""));  // starts over
}

TEST(FileCodecTest, EncodeDecodeRoundTripAndErrors) {
  auto file = DecodeFile(kFileJson);
  ASSERT_THAT(file, IsOk());
  auto again = DecodeFile(EncodeFile(*file));
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->name, file->name);
  EXPECT_EQ(again->size_bytes, file->size_bytes);
  EXPECT_EQ(again->sha256_hash, file->sha256_hash);
  EXPECT_EQ(again->create_time, file->create_time);
  EXPECT_THAT(DecodeFile(R"({"sizeBytes": "-1"})"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(DecodeFile(R"({"createTime": "yesterday"})"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(DecodeWrappedFile(kFileJson), StatusIs(absl::StatusCode::kInternal));
  auto failed = DecodeFile(R"({"name": "files/a", "state": "FAILED", "error": {"code": 3, "message": "bad image"}})");
  ASSERT_THAT(failed, IsOk());
  EXPECT_EQ(failed->error_message, "bad image");
  EXPECT_EQ(FileIdOf("files/abc-1"), "abc-1");
  EXPECT_EQ(FileIdOf("files/abc-"), "");
}

}  // namespace
}  // namespace vision_gateway::gemini
