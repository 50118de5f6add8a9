#include "service/server/status_conversion.h"

#include <grpcpp/support/error_details.h>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "service/common/status_details.h"

namespace vision_gateway::server {
namespace {

struct CodePair {
  absl::StatusCode absl_code;
  grpc::StatusCode grpc_code;
};

class StatusConversionTest : public ::testing::TestWithParam<CodePair> {};

TEST_P(StatusConversionTest, MapsEveryCanonicalCode) {
  const CodePair pair = GetParam();
  EXPECT_EQ(ToGrpcCode(pair.absl_code), pair.grpc_code);
  if (pair.absl_code != absl::StatusCode::kOk) {
    grpc::Status status = ToGrpcStatus(absl::Status(pair.absl_code, "what happened"));
    EXPECT_EQ(status.error_code(), pair.grpc_code);
    EXPECT_EQ(status.error_message(), "what happened");
    EXPECT_TRUE(status.error_details().empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllCodes, StatusConversionTest,
    ::testing::Values(
        CodePair{absl::StatusCode::kOk, grpc::StatusCode::OK},
        CodePair{absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
        CodePair{absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
        CodePair{absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
        CodePair{absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
        CodePair{absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
        CodePair{absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
        CodePair{absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED},
        CodePair{absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
        CodePair{absl::StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
        CodePair{absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
        CodePair{absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
        CodePair{absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
        CodePair{absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
        CodePair{absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
        CodePair{absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
        CodePair{absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED}));

TEST(StatusConversionTest, UnknownAbslCodeBecomesUnknown) {
  EXPECT_EQ(ToGrpcCode(static_cast<absl::StatusCode>(42)), grpc::StatusCode::UNKNOWN);
}

TEST(StatusConversionTest, CarriesDetailsAsGoogleRpcStatus) {
  absl::Status status = absl::ResourceExhaustedError("Gemini: quota exceeded");
  status = WithRetryInfo(status, absl::Milliseconds(15500));
  status = WithErrorInfo(status, "RATE_LIMIT_EXCEEDED", {{"model", "gemini-2.5-flash"}});

  grpc::Status converted = ToGrpcStatus(status);
  ASSERT_EQ(converted.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  google::rpc::Status rpc_status;
  ASSERT_TRUE(grpc::ExtractErrorDetails(converted, &rpc_status).ok());
  EXPECT_EQ(rpc_status.code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(rpc_status.message(), "Gemini: quota exceeded");
  ASSERT_EQ(rpc_status.details_size(), 2);

  google::rpc::RetryInfo retry;
  google::rpc::ErrorInfo info;
  for (const auto& any : rpc_status.details()) {
    if (any.Is<google::rpc::RetryInfo>()) {
      ASSERT_TRUE(any.UnpackTo(&retry));
    }
    if (any.Is<google::rpc::ErrorInfo>()) {
      ASSERT_TRUE(any.UnpackTo(&info));
    }
  }
  EXPECT_EQ(retry.retry_delay().seconds(), 15);
  EXPECT_EQ(retry.retry_delay().nanos(), 500000000);
  EXPECT_EQ(info.reason(), "RATE_LIMIT_EXCEEDED");
  EXPECT_EQ(info.domain(), "vision-gateway");
  EXPECT_EQ(info.metadata().at("model"), "gemini-2.5-flash");
}

TEST(StatusConversionTest, IgnoresPayloadsThatAreNotRpcDetails) {
  absl::Status status = absl::InternalError("x");
  status.SetPayload("example.com/private", absl::Cord("secret"));
  EXPECT_TRUE(ToGrpcStatus(status).error_details().empty());
}

}  // namespace
}  // namespace vision_gateway::server
