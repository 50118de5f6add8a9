#include "client/vision_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/cord.h"

namespace vision_gateway::client {
namespace {

// Runs each test in a fresh directory, so relative paths such as files/x.png are the test's.
class ImageFromPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = std::filesystem::current_path();
    dir_ = std::filesystem::temp_directory_path() /
           ("client-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "files");
    std::filesystem::current_path(dir_);
  }
  void TearDown() override {
    std::filesystem::current_path(previous_);
    std::filesystem::remove_all(dir_);
  }
  static void Write(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }

  std::filesystem::path previous_, dir_;
};

TEST_F(ImageFromPathTest, AnExistingLocalFileIsSentEvenUnderFiles) {
  Write("files/x.png", "local bytes");
  for (const char* path : {"files/x.png", "./files/x.png"}) {
    auto image = ImageFromPath(path);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->content(), "local bytes") << path;
  }
}

TEST_F(ImageFromPathTest, FilesWithoutSuchALocalFileIsAGeminiFile) {
  auto image = ImageFromPath("files/abc123");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->file(), "files/abc123");
  const std::string uri = "https://generativelanguage.googleapis.com/v1beta/files/abc123";
  image = ImageFromPath(uri);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->file(), uri);
}

TEST_F(ImageFromPathTest, ADirectoryIsNotALocalImage) {
  std::filesystem::create_directories("files/dir");
  auto image = ImageFromPath("files/dir");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->file(), "files/dir");
}

TEST_F(ImageFromPathTest, AMissingLocalFileIsNotFound) {
  auto image = ImageFromPath("photo.jpg");
  EXPECT_EQ(image.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(image.status().message(), "cannot open photo.jpg");
  EXPECT_FALSE(RpcErrorOf(image.status()).from_rpc);
}

TEST(RpcErrorOfTest, UnpacksTheDetailsAndTheRequestId) {
  google::rpc::Status details;
  google::rpc::ErrorInfo info;
  info.set_reason("UPSTREAM_RATE_LIMITED");
  info.set_domain("vision-gateway");
  details.add_details()->PackFrom(info);
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(15);
  details.add_details()->PackFrom(retry);
  google::rpc::BadRequest bad;
  auto* violation = bad.add_field_violations();
  violation->set_field("images[0]");
  violation->set_description("empty");
  details.add_details()->PackFrom(bad);
  absl::Status status = absl::ResourceExhaustedError("slow down");
  status.SetPayload(kRpcStatusPayload, absl::Cord(details.SerializeAsString()));
  status.SetPayload(kRequestIdPayload, absl::Cord("req-42"));

  RpcError error = RpcErrorOf(status);
  EXPECT_TRUE(error.from_rpc);
  EXPECT_EQ(error.request_id, "req-42");
  ASSERT_TRUE(error.error_info.has_value());
  EXPECT_EQ(error.error_info->reason(), "UPSTREAM_RATE_LIMITED");
  ASSERT_TRUE(error.retry_info.has_value());
  EXPECT_EQ(error.retry_info->retry_delay().seconds(), 15);
  ASSERT_TRUE(error.bad_request.has_value());
  EXPECT_EQ(error.bad_request->field_violations(0).field(), "images[0]");
  EXPECT_FALSE(error.quota_failure.has_value());
}

TEST(RpcErrorOfTest, AnRpcErrorWithoutDetailsIsStillAnRpcError) {
  absl::Status status = absl::UnavailableError("connection refused");
  status.SetPayload(kRpcStatusPayload, absl::Cord(""));
  RpcError error = RpcErrorOf(status);
  EXPECT_TRUE(error.from_rpc);
  EXPECT_FALSE(error.error_info.has_value());
  EXPECT_TRUE(error.request_id.empty());
}

TEST(VisionClientTest, ACertificateNeedsItsKey) {
  ClientOptions options;
  options.tls = TlsOptions{.root_certs_pem = "", .cert_chain_pem = "CERT", .private_key_pem = ""};
  EXPECT_EQ(VisionClient::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vision_gateway::client
