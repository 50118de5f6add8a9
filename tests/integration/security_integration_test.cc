// Security through the whole stack: caller tokens, per-caller limits, cost guards, TLS and mTLS
// (certificates made at test time), certificate rotation, and what errors show callers.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/error_details.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "emulator/gemini_wire.h"
#include "service/server/leak_filter.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/leak_check.h"
#include "tests/service/http/test_certs.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAliceToken[] = "alice-secret-token-0123456789";
constexpr char kBobToken[] = "bob-secret-token-0123456789ab";
constexpr char kCarolToken[] = "carol-secret-token-0123456789";

std::string SquarePng() {
  return MakePng(160, 120, Rgb{255, 255, 255}, Rgb{220, 20, 20}, 20, 20, 80, 70);
}

std::string TempPath(const std::string& name) {
  static int counter = 0;
  return absl::StrCat(::testing::TempDir(), "/", getpid(), "_", counter++, "_", name);
}

void WriteFile(const std::string& path, const std::string& text) {
  // Write-then-rename, as a Secret volume update does: a reader never sees half a file.
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp, std::ios::binary | std::ios::trunc) << text;
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

google::rpc::Status DetailsOf(const grpc::Status& status) {
  google::rpc::Status details;
  details.ParseFromString(status.error_details());
  return details;
}

std::string ReasonOf(const grpc::Status& status) {
  const google::rpc::Status details = DetailsOf(status);
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

bool HasRetryInfo(const grpc::Status& status) {
  const google::rpc::Status details = DetailsOf(status);
  for (const auto& any : details.details()) {
    google::rpc::RetryInfo retry;
    if (any.UnpackTo(&retry)) return true;
  }
  return false;
}

struct CaptionResult {
  grpc::Status status;
  std::string text;
};

CaptionResult Caption(v1::VisionService::Stub& stub, const std::string& token,
                      const v1::CaptionRequest& request, absl::Duration timeout = absl::Seconds(20)) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  auto reader = stub.Caption(&context, request);
  CaptionResult result;
  v1::CaptionResponse response;
  while (reader->Read(&response)) result.text += response.text();
  result.status = reader->Finish();
  return result;
}

v1::CaptionRequest OneImage() {
  v1::CaptionRequest request;
  request.add_images()->set_content(SquarePng());
  return request;
}

class AuthTest : public GatewayTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    tokens_file_ = TempPath("tokens");
    WriteFile(tokens_file_, absl::StrCat("alice ", kAliceToken, "\nbob ", kBobToken, "\n"));
    server::AuthOptions auth;
    auth.tokens_file = tokens_file_;
    auth.reload_interval = absl::Milliseconds(50);
    auth.limits = limits_;
    auth.overrides = overrides_;
    options.auth = auth;
    options.vision.cost = cost_;
  }

  std::string tokens_file_;
  server::CallerLimits limits_;
  std::map<std::string, server::CallerOverrides> overrides_;
  vision::CostLimits cost_;
};

TEST_F(AuthTest, MissingWrongAndRightTokens) {
  CaptionResult missing = Caption(*stub_, "", OneImage());
  EXPECT_EQ(missing.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReasonOf(missing.status), "CALLER_UNAUTHENTICATED");
  CaptionResult wrong = Caption(*stub_, "not-a-valid-token-000000000", OneImage());
  EXPECT_EQ(wrong.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(emulator_->Requests().size(), 0u) << "refused calls must not reach Gemini";

  CaptionResult right = Caption(*stub_, kAliceToken, OneImage());
  ASSERT_TRUE(right.status.ok()) << right.status.error_message();
  EXPECT_THAT(right.text, HasSubstr("red"));

  // CountTokens is guarded too.
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  v1::CountTokensRequest count;
  count.add_images()->set_content(SquarePng());
  v1::CountTokensResponse response;
  EXPECT_EQ(stub_->CountTokens(&context, count, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // So are Detect and Segment (Segment once skipped the gate).
  {
    grpc::ClientContext detect_context;
    detect_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    v1::DetectRequest detect;
    detect.mutable_image()->set_content(SquarePng());
    auto reader = stub_->Detect(&detect_context, detect);
    v1::DetectResponse message;
    EXPECT_FALSE(reader->Read(&message));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext segment_context;
    segment_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    v1::SegmentRequest segment;
    segment.mutable_image()->set_content(SquarePng());
    auto reader = stub_->Segment(&segment_context, segment);
    v1::SegmentResponse message;
    EXPECT_FALSE(reader->Read(&message));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(emulator_->Requests().size(), 1u) << "only alice's Caption may reach Gemini";
}

TEST_F(AuthTest, RotatedTokensTakeEffectWithoutRestart) {
  ASSERT_TRUE(Caption(*stub_, kAliceToken, OneImage()).status.ok());
  WriteFile(tokens_file_, absl::StrCat("carol ", kCarolToken, "\n"));
  // The gate re-reads the file every 50 ms: wait (bounded) for carol to be let in.
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  grpc::Status carol;
  do {
    carol = Caption(*stub_, kCarolToken, OneImage()).status;
  } while (!carol.ok() && absl::Now() < give_up &&
           (absl::SleepFor(absl::Milliseconds(20)), true));
  ASSERT_TRUE(carol.ok()) << carol.error_message();
  EXPECT_EQ(Caption(*stub_, kAliceToken, OneImage()).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

class RateLimitTest : public AuthTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    // Two calls at once, then one per 100 s: the third call is refused however slow the machine.
    limits_ = server::CallerLimits{.requests_per_second = 0.01, .burst = 2};
    AuthTest::ConfigureServer(options);
  }
};

TEST_F(RateLimitTest, PerCallerRequestsPerSecond) {
  ASSERT_TRUE(Caption(*stub_, kAliceToken, OneImage()).status.ok());
  ASSERT_TRUE(Caption(*stub_, kAliceToken, OneImage()).status.ok());
  CaptionResult third = Caption(*stub_, kAliceToken, OneImage());
  EXPECT_EQ(third.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ReasonOf(third.status), "CALLER_RATE_LIMITED");
  EXPECT_TRUE(HasRetryInfo(third.status));
  // Bob has his own budget.
  EXPECT_TRUE(Caption(*stub_, kBobToken, OneImage()).status.ok());
  EXPECT_EQ(emulator_->Requests().size(), 3u);
}

class ConcurrencyLimitTest : public AuthTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    limits_ = server::CallerLimits{.max_concurrent_calls = 1};
    AuthTest::ConfigureServer(options);
  }
};

TEST_F(ConcurrencyLimitTest, PerCallerCallsInFlight) {
  emulator::EmulatorConfig slow = emulator_->config();
  slow.response_delay = std::chrono::milliseconds(1500);
  emulator_->SetConfig(slow);
  CaptionResult first;
  std::thread held([&] { first = Caption(*stub_, kAliceToken, OneImage()); });
  ASSERT_TRUE(emulator_->WaitForRequests(1, absl::Seconds(20)).ok());
  // Alice's one slot is taken: refused at once; Bob is unaffected.
  CaptionResult second = Caption(*stub_, kAliceToken, OneImage());
  EXPECT_EQ(second.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ReasonOf(second.status), "CALLER_CONCURRENCY_LIMITED");
  EXPECT_TRUE(HasRetryInfo(second.status));
  slow.response_delay = std::chrono::milliseconds(0);
  emulator_->SetConfig(slow);
  EXPECT_TRUE(Caption(*stub_, kBobToken, OneImage()).status.ok());
  held.join();
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  // The slot is free once the first call has ended.
  EXPECT_TRUE(Caption(*stub_, kAliceToken, OneImage()).status.ok());
}

class CostGuardTest : public AuthTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    cost_.allowed_models = {"gemini-3-flash-preview", "gemini-3.1-pro-preview"};
    cost_.max_output_tokens = 300;
    cost_.max_image_bytes_per_request = 1 << 20;
    server::CallerOverrides bob;
    bob.allowed_models = std::vector<std::string>{"gemini-3.1-flash-lite"};
    bob.max_output_tokens = 40;
    bob.max_images_per_request = 1;
    overrides_["bob"] = bob;
    AuthTest::ConfigureServer(options);
    options.vision.max_images_per_request = 4;
  }

  // generationConfig.maxOutputTokens of the last request Gemini saw.
  std::string LastBody() {
    auto requests = emulator_->Requests();
    return requests.empty() ? "" : requests.back().body;
  }
};

TEST_F(CostGuardTest, ModelAllowlist) {
  v1::CaptionRequest request = OneImage();
  request.mutable_options()->set_model("gemini-1.5-ultra");
  CaptionResult refused = Caption(*stub_, kAliceToken, request);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("gemini-3-flash-preview, gemini-3.1-pro-preview"));
  EXPECT_EQ(ReasonOf(refused.status), "MODEL_NOT_ALLOWED");
  request.mutable_options()->set_model("models/gemini-3.1-pro-preview");
  EXPECT_TRUE(Caption(*stub_, kAliceToken, request).status.ok());
  EXPECT_TRUE(absl::StrContains(emulator_->Requests().back().target, "gemini-3.1-pro-preview"));
  // Bob's own list.
  EXPECT_EQ(Caption(*stub_, kBobToken, request).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  request.mutable_options()->set_model("gemini-3.1-flash-lite");
  EXPECT_TRUE(Caption(*stub_, kBobToken, request).status.ok());
}

TEST_F(CostGuardTest, OutputTokenCapsFillInAndRefuse) {
  ASSERT_TRUE(Caption(*stub_, kAliceToken, OneImage()).status.ok());
  EXPECT_THAT(LastBody(), HasSubstr("\"maxOutputTokens\":300"));
  v1::CaptionRequest over = OneImage();
  over.mutable_options()->set_max_output_tokens(301);
  CaptionResult refused = Caption(*stub_, kAliceToken, over);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(refused.status), "COST_LIMIT_EXCEEDED");
  // Bob's override is lower.
  v1::CaptionRequest lite = OneImage();
  lite.mutable_options()->set_model("gemini-3.1-flash-lite");
  ASSERT_TRUE(Caption(*stub_, kBobToken, lite).status.ok());
  EXPECT_THAT(LastBody(), HasSubstr("\"maxOutputTokens\":40"));
}

TEST_F(CostGuardTest, ImagesPerRequestAndBytes) {
  v1::CaptionRequest five;
  for (int i = 0; i < 5; ++i) five.add_images()->set_content(SquarePng());
  EXPECT_EQ(Caption(*stub_, kAliceToken, five).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::CaptionRequest two;
  for (int i = 0; i < 2; ++i) two.add_images()->set_content(SquarePng());
  EXPECT_TRUE(Caption(*stub_, kAliceToken, two).status.ok());
  v1::CaptionRequest lite = two;
  lite.mutable_options()->set_model("gemini-3.1-flash-lite");
  EXPECT_EQ(Caption(*stub_, kBobToken, lite).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // bob: one image
  // Over the byte cap: a PNG padded past 1 MiB (trailing bytes after IEND).
  v1::CaptionRequest big;
  big.add_images()->set_content(SquarePng() + std::string((1 << 20) + 1, '\0'));
  CaptionResult refused = Caption(*stub_, kAliceToken, big);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(refused.status), "COST_LIMIT_EXCEEDED");
}

// ---- TLS --------------------------------------------------------------------------------------

struct CertFiles {
  std::string cert, key;
};

CertFiles WriteIdentity(const http::testing::PemIdentity& identity, const std::string& name) {
  CertFiles files{TempPath(name + ".crt"), TempPath(name + ".key")};
  WriteFile(files.cert, identity.cert_pem);
  WriteFile(files.key, identity.key_pem);
  return files;
}

class TlsTest : public GatewayTest {
 protected:
  TlsTest() : ca_("vision-gateway test CA"), other_ca_("some other CA") {}

  void ConfigureServer(server::ServerOptions& options) override {
    server_files_ = WriteIdentity(ca_.IssueServerCert({"localhost"}, {"127.0.0.1"}), "server");
    server::TlsOptions tls{server_files_.cert, server_files_.key, "", absl::Seconds(1)};
    if (mtls_) {
      client_ca_file_ = ca_.WriteCertFile("client-ca.pem");
      tls.client_ca_file = client_ca_file_;
      server::AuthOptions auth;
      auth.client_cert_identity = true;
      options.auth = auth;
    }
    options.tls = tls;
  }

  std::unique_ptr<v1::VisionService::Stub> Stub(const std::string& root_pem,
                                                const http::testing::PemIdentity* client = nullptr) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = root_pem;
    if (client != nullptr) {
      ssl.pem_cert_chain = client->cert_pem;
      ssl.pem_private_key = client->key_pem;
    }
    grpc::ChannelArguments args;
    // A fresh connection per stub, so that each one does its own handshake.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return v1::VisionService::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", server_->port()), grpc::SslCredentials(ssl), args));
  }

  http::testing::TestCa ca_;
  http::testing::TestCa other_ca_;
  CertFiles server_files_;
  std::string client_ca_file_;
  bool mtls_ = false;
};

TEST_F(TlsTest, ServesTlsAndRefusesPlaintext) {
  auto tls = Stub(ca_.cert_pem());
  CaptionResult ok = Caption(*tls, "", OneImage());
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_THAT(ok.text, HasSubstr("red"));
  // The fixture's plaintext stub cannot talk to a TLS port.
  EXPECT_EQ(Caption(*stub_, "", OneImage(), absl::Seconds(5)).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // Nor can a client that does not trust the server's CA.
  EXPECT_EQ(Caption(*Stub(other_ca_.cert_pem()), "", OneImage(), absl::Seconds(5))
                .status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, RotatedCertificateServesNewConnectionsWhileOpenStreamCompletes) {
  auto before = Stub(ca_.cert_pem());
  ASSERT_TRUE(Caption(*before, "", OneImage()).status.ok());

  // A slow stream is open on the old certificate...
  emulator::EmulatorConfig slow = emulator_->config();
  slow.stream_event_delay = std::chrono::milliseconds(400);
  emulator_->SetConfig(slow);
  emulator_->ClearRequests();
  CaptionResult open;
  std::thread stream([&] { open = Caption(*before, "", OneImage(), absl::Seconds(60)); });
  ASSERT_TRUE(emulator_->WaitForRequests(1, absl::Seconds(20)).ok());

  // ...when the files change to a certificate from another CA.
  const http::testing::PemIdentity rotated = other_ca_.IssueServerCert({"localhost"}, {"127.0.0.1"});
  WriteFile(server_files_.key, rotated.key_pem);
  WriteFile(server_files_.cert, rotated.cert_pem);
  slow.stream_event_delay = std::chrono::milliseconds(0);
  emulator_->SetConfig(slow);
  // New connections get the new certificate once the watcher has re-read the files (1 s).
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  grpc::Status fresh;
  do {
    fresh = Caption(*Stub(other_ca_.cert_pem()), "", OneImage(), absl::Seconds(5)).status;
  } while (!fresh.ok() && absl::Now() < give_up &&
           (absl::SleepFor(absl::Milliseconds(100)), true));
  EXPECT_TRUE(fresh.ok()) << fresh.error_message();
  EXPECT_EQ(Caption(*Stub(ca_.cert_pem()), "", OneImage(), absl::Seconds(5)).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  stream.join();
  EXPECT_TRUE(open.status.ok()) << open.status.error_message();
  EXPECT_THAT(open.text, HasSubstr("red"));
}

class TlsHealthPortTest : public TlsTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    TlsTest::ConfigureServer(options);
    options.health_listen_address = "127.0.0.1:0";
  }
};

TEST_F(TlsHealthPortTest, PlaintextHealthOnlyPortMirrorsStatuses) {
  ASSERT_NE(server_->health_port(), 0);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->health_port()),
                                     grpc::InsecureChannelCredentials());
  EXPECT_EQ(HealthStatus(channel, "vision.v1.VisionService"), 1);
  EXPECT_EQ(HealthStatus(channel, "liveness"), 1);
  // Only health there: the vision service is not served in plaintext.
  auto plain = v1::VisionService::NewStub(channel);
  EXPECT_EQ(Caption(*plain, "", OneImage(), absl::Seconds(5)).status.error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  server_->StartDraining();
  EXPECT_EQ(HealthStatus(channel, "vision.v1.VisionService"), 2);
  EXPECT_EQ(HealthStatus(channel, "liveness"), 1);
}

class MtlsTest : public TlsTest {
 protected:
  MtlsTest() { mtls_ = true; }
};

TEST_F(MtlsTest, ClientCertificateRequiredVerifiedAndNamesCaller) {
  const http::testing::PemIdentity svc = ca_.IssueClientCert("svc-a");
  CaptionResult ok = Caption(*Stub(ca_.cert_pem(), &svc), "", OneImage());
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  // No certificate: the handshake fails.
  EXPECT_EQ(Caption(*Stub(ca_.cert_pem()), "", OneImage(), absl::Seconds(5)).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A certificate from another CA: refused too.
  const http::testing::PemIdentity stranger = other_ca_.IssueClientCert("svc-a");
  EXPECT_EQ(Caption(*Stub(ca_.cert_pem(), &stranger), "", OneImage(), absl::Seconds(5))
                .status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A certificate whose name is not a caller name: authenticated transport, unknown caller.
  const http::testing::PemIdentity odd = ca_.IssueClientCert("Not A Caller");
  EXPECT_EQ(Caption(*Stub(ca_.cert_pem(), &odd), "", OneImage()).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

// ---- Nothing leaked --------------------------------------------------------------------------

class LeakTest : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    server::LeakFilterOptions leak;
    leak.secrets = {kEmulatorKey};
    leak.upstream_hosts = {"127.0.0.1", "localhost", "gemini.invalid"};
    server::ConfigureLeakFilter(leak);
  }
  void TearDown() override {
    server::ConfigureLeakFilter({});
    GatewayTest::TearDown();
  }
};

TEST_F(LeakTest, GeminiErrorDetailsAreFiltered) {
  emulator::ScriptedResponse quota;
  quota.status = 429;
  quota.body = R"({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
    "message": "Quota exceeded for quota metric 'generate_content' of service 'generativelanguage.googleapis.com' for consumer 'project_number:123456789012'.",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
       "domain": "googleapis.com",
       "metadata": {"service": "generativelanguage.googleapis.com",
                    "consumer": "projects/123456789012", "quota_metric": "generate_content",
                    "quota_limit_value": "10"}},
      {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
        {"quotaMetric": "generate_content", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]},
      {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": "backend 10.1.2.3:443"},
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "15s"}]}})";
  emulator_->Enqueue(quota);
  CaptionResult result = Caption(*stub_, "", OneImage());
  ASSERT_EQ(result.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Everything the caller gets, minus the detail type URLs (type.googleapis.com/...).
  std::string everything =
      result.status.error_message() + DetailsOf(result.status).DebugString();
  absl::StrReplaceAll({{"type.googleapis.com/google.rpc.", ""}}, &everything);
  for (const char* leak : {"123456789012", "googleapis.com", "10.1.2.3", ":443",
                           "key: \"consumer\"", "key: \"service\""}) {
    EXPECT_THAT(everything, Not(HasSubstr(leak))) << everything;
  }
  ExpectNoLeaks("429 with project details", result.status, {},
                LeakCheck{.secrets = {kEmulatorKey}, .upstream_ports = {emulator_->port()}, .literals = {}});
  EXPECT_TRUE(HasRetryInfo(result.status));
  EXPECT_THAT(everything, HasSubstr("GenerateRequestsPerMinutePerProjectPerModel"));
  EXPECT_THAT(everything, HasSubstr("quota_limit_value"));
}

TEST_F(LeakTest, ConnectionFailuresShowNoAddress) {
  const int port = emulator_->port();
  emulator_->Stop();
  CaptionResult result = Caption(*stub_, "", OneImage());
  EXPECT_NE(result.status.error_code(), grpc::StatusCode::OK);
  const std::string everything =
      result.status.error_message() + DetailsOf(result.status).DebugString();
  EXPECT_THAT(everything, Not(HasSubstr("127.0.0.1")));
  EXPECT_THAT(everything, Not(HasSubstr(absl::StrCat(port)))) << everything;
  EXPECT_THAT(everything, Not(HasSubstr("refused"))) << everything;
}

// Everything a caller gets of an error, through the one leak checker (leak_check.h), with the
// text this suite's upstream errors inject.
void ExpectNothingLeaked(const std::string& what, const grpc::Status& status, int upstream_port) {
  ExpectNoLeaks(what, status, {},
                LeakCheck{.secrets = {kEmulatorKey},
                          .upstream_ports = {upstream_port},
                          .literals = {"123456789012", "googleapis.com", "10.0.0.7", "8443",
                                       "Connection refused", "resolve", "DebugInfo",
                                       "consumer=", "service="}});
}

// Every fault the emulator can script, through the whole stack: each caller-facing error is
// scanned for what must not leak.
TEST_F(LeakTest, FaultCatalogueLeaksNothing) {
  const std::string quota_message =
      "Quota exceeded for quota metric 'generate_content' of service "
      "'generativelanguage.googleapis.com' for consumer 'project_number:123456789012'.";
  const std::string project_details = R"([
      {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CONSUMER_SUSPENDED",
       "domain": "googleapis.com",
       "metadata": {"service": "generativelanguage.googleapis.com",
                    "consumer": "projects/123456789012"}},
      {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": "at 10.0.0.7:8443"}])";
  struct Fault {
    std::string name;
    emulator::ScriptedResponse response;
    // What the caller gets: every fault fails the call, so every fault's error is scanned.
    grpc::StatusCode code;
  };
  std::vector<Fault> faults;
  faults.push_back({"400 key invalid, echoing the key",
                    emulator::ScriptedError(400, absl::StrCat("API key not valid: ", kEmulatorKey),
                                            emulator::ApiKeyInvalidDetails()),
                    grpc::StatusCode::INTERNAL});
  faults.push_back({"403 project", emulator::ScriptedError(
                                       403, "Permission denied on project 123456789012.",
                                       project_details),
                    grpc::StatusCode::INTERNAL});
  faults.push_back({"429 quota", emulator::ScriptedError(
                                     429, quota_message,
                                     emulator::QuotaRetryDetails("15s", "gemini-3-flash-preview")),
                    grpc::StatusCode::RESOURCE_EXHAUSTED});
  faults.push_back({"500 debug info", emulator::ScriptedError(500, "Internal error at 10.0.0.7:8443",
                                                               project_details),
                    grpc::StatusCode::UNAVAILABLE});
  faults.push_back({"503 overloaded", emulator::ScriptedError(503, "The model is overloaded."),
                    grpc::StatusCode::UNAVAILABLE});
  faults.push_back({"504", emulator::ScriptedError(504, "Deadline exceeded upstream."),
                    grpc::StatusCode::UNAVAILABLE});
  faults.push_back({"404 model", emulator::ScriptedError(
                                     404, "models/x is not found for API version v1beta"),
                    grpc::StatusCode::NOT_FOUND});
  emulator::ScriptedResponse html;
  html.status = 502;
  html.headers = {{"Content-Type", "text/html"}};
  html.body = "<html><body>upstream connect error: 10.0.0.7:8443 reset (project 123456789012)"
              "</body></html>";
  faults.push_back({"502 html from a proxy", html, grpc::StatusCode::UNAVAILABLE});
  emulator::ScriptedResponse mid_stream = emulator::ScriptedStream({"A red", " square"}, "");
  mid_stream.stream_writes.push_back(emulator::MakeSseEvent(
      emulator::MakeErrorBody(500, "INTERNAL", quota_message, project_details)));
  faults.push_back({"error object mid-stream", mid_stream, grpc::StatusCode::UNAVAILABLE});
  emulator::ScriptedResponse dropped;
  dropped.drop_connection_after_writes = true;
  faults.push_back(
      {"connection dropped before the response", dropped, grpc::StatusCode::UNAVAILABLE});
  emulator::ScriptedResponse truncated = emulator::ScriptedStream({"A red", " square"}, "");
  truncated.drop_connection_after_writes = true;
  faults.push_back({"stream truncated", truncated, grpc::StatusCode::UNAVAILABLE});
  emulator::ScriptedResponse malformed;
  malformed.headers = {{"Content-Type", "text/event-stream"}};
  malformed.stream_writes = {"data: {not json at all 10.0.0.7:8443\r\n\r\n"};
  faults.push_back({"malformed event", malformed, grpc::StatusCode::UNAVAILABLE});

  for (Fault& fault : faults) {
    SCOPED_TRACE(fault.name);
    emulator_->ClearScript();
    emulator_->Enqueue(fault.response);
    // A second copy, for the gateway's own retry of a dropped connection.
    emulator_->Enqueue(fault.response);
    CaptionResult result = Caption(*stub_, "", OneImage());
    // A fault that does not fail the call would leave nothing to scan: that is a failure too.
    EXPECT_EQ(result.status.error_code(), fault.code) << result.status.error_message();
    ExpectNothingLeaked(fault.name, result.status, emulator_->port());
  }
}

// Every google.rpc detail Gemini sends on a 400, a 429 and a 500 (Help, QuotaFailure, BadRequest,
// LocalizedMessage, ErrorInfo metadata), each naming the project, Google's hosts and the Cloud
// console, through the whole stack: the caller sees none of it, in the message or in any detail,
// while the details themselves (the documentation link, the violations) still arrive.
TEST_F(LeakTest, ForwardedDetailsOf400And429And500LeakNothing) {
  const std::string details = R"([
      {"@type": "type.googleapis.com/google.rpc.Help", "links": [
        {"description": "Request a higher quota limit for project 987654321012.",
         "url": "https://console.cloud.google.com/apis/api/generativelanguage.googleapis.com/quotas?project=987654321012"},
        {"description": "Learn more about Gemini API quotas",
         "url": "https://ai.google.dev/gemini-api/docs/rate-limits?project=987654321012"}]},
      {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
        {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
         "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
         "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}, "quotaValue": "10"},
        {"subject": "project_number:987654321012", "description": "project_id: my-gcp-project"}]},
      {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
        {"field": "projects/987654321012/contents[0]",
         "description": "Invalid value at console.cloud.google.com for project_id: my-gcp-project"}]},
      {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
       "message": "Quota exceeded for projects/my-gcp-project (987654321012) at generativelanguage.googleapis.com"},
      {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
       "domain": "googleapis.com",
       "metadata": {"service": "generativelanguage.googleapis.com",
                    "consumer": "projects/987654321012",
                    "quota_location": "projects/my-gcp-project/locations/global",
                    "quota_metric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "model": "gemini-2.5-flash"}}])";
  struct Case {
    int http;
    grpc::StatusCode code;
  };
  for (const Case& c : {Case{400, grpc::StatusCode::INVALID_ARGUMENT},
                        Case{429, grpc::StatusCode::RESOURCE_EXHAUSTED},
                        Case{500, grpc::StatusCode::UNAVAILABLE}}) {
    SCOPED_TRACE(c.http);
    emulator_->ClearScript();
    emulator_->Enqueue(emulator::ScriptedError(
        c.http,
        "Request failed for project 987654321012 (projects/my-gcp-project); see "
        "console.cloud.google.com",
        details));
    CaptionResult result = Caption(*stub_, "", OneImage());
    ASSERT_EQ(result.status.error_code(), c.code) << result.status.error_message();
    const std::string text = CallerFacingText(result.status);
    ExpectNoLeaks(absl::StrCat(c.http, " with project details"), result.status, {},
                  LeakCheck{.secrets = {kEmulatorKey},
                            .upstream_ports = {emulator_->port()},
                            .literals = {"987654321012", "my-gcp-project", "console.cloud",
                                         "googleapis.com", "project="}});
    // Filtered, not dropped: the documentation link, the violations and the quota's model.
    EXPECT_THAT(text, HasSubstr("https://ai.google.dev/gemini-api/docs/rate-limits\"")) << text;
    EXPECT_THAT(text, HasSubstr("generate_content_free_tier_requests")) << text;
    EXPECT_THAT(text, HasSubstr("contents[0]")) << text;
    EXPECT_THAT(text, HasSubstr("LocalizedMessage")) << text;
    EXPECT_THAT(text, HasSubstr("model=gemini-2.5-flash")) << text;
  }
}

// Failures below HTTP: refused connection, TLS to a plain-HTTP port, an unresolvable name.
TEST_F(LeakTest, TransportFailuresLeakNothing) {
  const int port = emulator_->port();
  for (const std::string& base_url :
       {absl::StrCat("https://localhost:", port), std::string("https://gemini.invalid"),
        absl::StrCat("http://127.0.0.1:", port)}) {
    gemini::GeminiOptions gemini_options;
    gemini_options.base_url = base_url;
    gemini_options.api_key = kEmulatorKey;
    auto gemini = gemini::MakeGeminiClient(gemini_options, http_);
    ASSERT_TRUE(gemini.ok()) << gemini.status();
    server::ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    auto server = server::VisionServer::Start(options, *std::move(gemini));
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = v1::VisionService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials()));
    if (absl::StartsWith(base_url, "http://")) emulator_->Stop();  // connection refused
    CaptionResult result = Caption(*stub, "", OneImage());
    EXPECT_FALSE(result.status.ok()) << base_url;
    ExpectNothingLeaked(base_url, result.status, port);
    EXPECT_THAT(CallerFacingText(result.status), Not(HasSubstr("gemini.invalid")));
    (*server)->Shutdown(absl::Seconds(1));
  }
}

}  // namespace
}  // namespace vision_gateway::testing
