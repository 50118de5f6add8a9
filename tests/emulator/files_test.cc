// Files API of the emulator: resumable uploads, files.get/list/delete, fileData in prompts.
#include <memory>
#include <string>
#include <utility>

#include <boost/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "emulator/emulator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/emulator/test_http.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::emulator {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::vision_gateway::emulator::testing::HttpResult;
using ::vision_gateway::emulator::testing::MakeShapesImage;
using ::vision_gateway::emulator::testing::SendHttp;
using ::vision_gateway::testing::IsOk;

constexpr char kKey[] = "files-key";
constexpr int64_t kChunk = int64_t{8} << 20;

json::value Parse(std::string_view text) {
  json::error_code ec;
  json::value value = json::parse(json::string_view(text.data(), text.size()), ec);
  EXPECT_FALSE(ec) << text.substr(0, 300);
  return value;
}

std::string Str(const json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : "";
}

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmulatorOptions options;
    options.api_key = kKey;
    absl::StatusOr<std::unique_ptr<Emulator>> started = Emulator::Start(options);
    ASSERT_THAT(started, IsOk());
    emulator_ = *std::move(started);
  }

  absl::StatusOr<HttpResult> Call(std::string_view method, std::string_view target,
                                  HeaderList headers = {}, std::string_view body = {}) {
    headers.emplace_back("x-goog-api-key", kKey);
    return SendHttp(emulator_->port(), method, target, headers, body);
  }

  // Starts an upload; returns the path+query of the upload URL.
  std::string Start(int64_t size, std::string_view mime, std::string_view json_body,
                    const std::string& version = "v1beta") {
    absl::StatusOr<HttpResult> started =
        Call("POST", absl::StrCat("/upload/", version, "/files"),
             {{"X-Goog-Upload-Protocol", "resumable"},
              {"X-Goog-Upload-Command", "start"},
              {"X-Goog-Upload-Header-Content-Length", absl::StrCat(size)},
              {"X-Goog-Upload-Header-Content-Type", std::string(mime)},
              {"Content-Type", "application/json"}},
             json_body);
    EXPECT_THAT(started, IsOk());
    if (!started.ok()) return "";
    EXPECT_EQ(started->status, 200) << started->body;
    EXPECT_EQ(started->Header("x-goog-upload-status"), "active");
    EXPECT_EQ(started->Header("x-goog-upload-chunk-granularity"), "8388608");
    const std::string url = started->Header("x-goog-upload-url");
    const std::string origin = emulator_->base_url();
    EXPECT_THAT(url, StartsWith(absl::StrCat(origin, "/upload/", version, "/files?upload_id=")));
    EXPECT_THAT(url, HasSubstr("&upload_protocol=resumable"));
    return url.substr(origin.size());
  }

  absl::StatusOr<HttpResult> Chunk(const std::string& target, std::string_view command,
                                   int64_t offset, std::string_view bytes) {
    return Call("POST", target,
                {{"X-Goog-Upload-Command", std::string(command)},
                 {"X-Goog-Upload-Offset", absl::StrCat(offset)}},
                bytes);
  }

  // Uploads `bytes` in one shot and returns the File object.
  json::value Upload(std::string_view bytes, std::string_view mime, std::string_view json_body = {}) {
    const std::string target = Start(static_cast<int64_t>(bytes.size()), mime, json_body);
    absl::StatusOr<HttpResult> final_reply = Chunk(target, "upload, finalize", 0, bytes);
    EXPECT_THAT(final_reply, IsOk());
    if (!final_reply.ok()) return json::value();
    EXPECT_EQ(final_reply->status, 200) << final_reply->body;
    EXPECT_EQ(final_reply->Header("x-goog-upload-status"), "final");
    return Parse(final_reply->body).at("file");
  }

  std::unique_ptr<Emulator> emulator_;
};

TEST_F(FilesTest, SingleShotUploadReturnsTheWrappedFileWithHexSha256Quirk) {
  const json::value file = Upload("abc", "text/plain", R"({"file": {"display_name": "Three"}})");
  EXPECT_THAT(Str(file.at("name")), StartsWith("files/"));
  EXPECT_EQ(Str(file.at("name")).size(), 6u + 12u);
  EXPECT_EQ(Str(file.at("displayName")), "Three");
  EXPECT_EQ(Str(file.at("mimeType")), "text/plain");
  EXPECT_EQ(Str(file.at("sizeBytes")), "3");  // int64 as a string
  EXPECT_EQ(Str(file.at("state")), "ACTIVE");
  EXPECT_EQ(Str(file.at("source")), "UPLOADED");
  EXPECT_EQ(Str(file.at("uri")),
            absl::StrCat("https://generativelanguage.googleapis.com/v1beta/", Str(file.at("name"))));
  std::string hex;
  ASSERT_TRUE(absl::Base64Unescape(Str(file.at("sha256Hash")), &hex));
  EXPECT_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Str(file.at("createTime")).size(), 27u);      // 2025-02-14T22:33:33.377817Z
  EXPECT_EQ(Str(file.at("expirationTime")).size(), 30u);  // nanoseconds
}

TEST_F(FilesTest, MultiChunkUploadChecksGranularityAndOffsets) {
  const std::string data(static_cast<size_t>(kChunk) + 1000, 'z');
  const std::string target = Start(static_cast<int64_t>(data.size()), "application/octet-stream", "");

  absl::StatusOr<HttpResult> unaligned = Chunk(target, "upload", 0, data.substr(0, 821333));
  ASSERT_THAT(unaligned, IsOk());
  EXPECT_EQ(unaligned->status, 400);
  EXPECT_EQ(unaligned->body,
            "The client sent 821333 bytes, which is not a multiple of the 8388608 byte chunk "
            "granularity.");

  absl::StatusOr<HttpResult> first = Chunk(target, "upload", 0, data.substr(0, kChunk));
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->Header("x-goog-upload-status"), "active");

  absl::StatusOr<HttpResult> wrong_offset = Chunk(target, "upload, finalize", 5, data.substr(kChunk));
  ASSERT_THAT(wrong_offset, IsOk());
  EXPECT_EQ(wrong_offset->status, 400);

  absl::StatusOr<HttpResult> last = Chunk(target, "upload, finalize", kChunk, data.substr(kChunk));
  ASSERT_THAT(last, IsOk());
  EXPECT_EQ(last->status, 200) << last->body;
  EXPECT_EQ(last->Header("x-goog-upload-status"), "final");
  EXPECT_EQ(Str(Parse(last->body).at("file").at("sizeBytes")), absl::StrCat(data.size()));
}

TEST_F(FilesTest, GetListAndDelete) {
  const std::string first = Str(Upload("one", "text/plain").at("name"));
  const std::string second = Str(Upload("two", "text/plain").at("name"));

  absl::StatusOr<HttpResult> got = Call("GET", absl::StrCat("/v1beta/", first));
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(Str(Parse(got->body).at("name")), first);  // bare File, not wrapped

  absl::StatusOr<HttpResult> page1 = Call("GET", "/v1beta/files?pageSize=1");
  ASSERT_THAT(page1, IsOk());
  const json::value list1 = Parse(page1->body);
  ASSERT_EQ(list1.at("files").as_array().size(), 1u);
  EXPECT_EQ(Str(list1.at("files").at(0).at("name")), second);  // newest first
  const std::string token = Str(list1.at("nextPageToken"));
  ASSERT_FALSE(token.empty());
  absl::StatusOr<HttpResult> page2 =
      Call("GET", absl::StrCat("/v1beta/files?pageSize=1&pageToken=", token));
  ASSERT_THAT(page2, IsOk());
  const json::value list2 = Parse(page2->body);
  EXPECT_EQ(Str(list2.at("files").at(0).at("name")), first);
  EXPECT_FALSE(list2.as_object().contains("nextPageToken"));

  absl::StatusOr<HttpResult> deleted = Call("DELETE", absl::StrCat("/v1beta/", first));
  ASSERT_THAT(deleted, IsOk());
  EXPECT_EQ(deleted->status, 200);
  absl::StatusOr<HttpResult> gone = Call("GET", absl::StrCat("/v1/", first));
  ASSERT_THAT(gone, IsOk());
  EXPECT_EQ(gone->status, 403);
  EXPECT_EQ(Str(Parse(gone->body).at("error").at("status")), "PERMISSION_DENIED");
}

TEST_F(FilesTest, FileDataPartsAreAnalysedLikeInlineImages) {
  const std::string png = MakeShapesImage().png;
  const json::value file = Upload(png, "image/png");
  const std::string body = absl::StrCat(
      R"({"contents": [{"parts": [{"file_data": {"mime_type": "image/png", "file_uri": ")",
      Str(file.at("uri")), R"("}}, {"text": "Describe."}]}]})");
  absl::StatusOr<HttpResult> result =
      Call("POST", "/v1beta/models/gemini-3-flash-preview:generateContent", {}, body);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->status, 200) << result->body;
  EXPECT_THAT(result->body,
              HasSubstr("A 320x240 image showing a red shape and a blue shape on a light background."));

  const std::string missing = R"({"contents": [{"parts": [{"fileData": {"fileUri": "files/nosuchfile"}}]}]})";
  absl::StatusOr<HttpResult> denied =
      Call("POST", "/v1beta/models/gemini-3-flash-preview:generateContent", {}, missing);
  ASSERT_THAT(denied, IsOk());
  EXPECT_EQ(denied->status, 403);
}

TEST_F(FilesTest, ProcessingFilesCannotBeUsedYet) {
  EmulatorConfig config = emulator_->config();
  config.file_processing = std::chrono::hours(1);
  emulator_->SetConfig(config);
  const json::value file = Upload(MakeShapesImage().png, "image/png");
  EXPECT_EQ(Str(file.at("state")), "PROCESSING");
  const std::string body = absl::StrCat(R"({"contents": [{"parts": [{"fileData": {"fileUri": ")",
                                        Str(file.at("uri")), R"("}}]}]})");
  absl::StatusOr<HttpResult> result =
      Call("POST", "/v1beta/models/gemini-3-flash-preview:generateContent", {}, body);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->status, 400);
  const json::value error = Parse(result->body);
  EXPECT_EQ(Str(error.at("error").at("status")), "FAILED_PRECONDITION");
  EXPECT_THAT(Str(error.at("error").at("message")), HasSubstr("is not in an ACTIVE state"));
}

TEST_F(FilesTest, UploadRouteIsServedUnderV1AndNeedsAKey) {
  const std::string target = Start(2, "text/plain", "", "v1");
  absl::StatusOr<HttpResult> final_reply = Chunk(target, "upload, finalize", 0, "hi");
  ASSERT_THAT(final_reply, IsOk());
  EXPECT_EQ(final_reply->status, 200);
  absl::StatusOr<HttpResult> anonymous = SendHttp(emulator_->port(), "GET", "/v1beta/files");
  ASSERT_THAT(anonymous, IsOk());
  EXPECT_EQ(anonymous->status, 400);
  EXPECT_THAT(anonymous->body, HasSubstr("API_KEY_INVALID"));
}

}  // namespace
}  // namespace vision_gateway::emulator
