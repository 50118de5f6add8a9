// The configuration is read once, validated, and falls back to the environment as documented.
#include "service/config/server_config.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <ostream>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_DECLARE_FLAG(std::string, listen_host);
ABSL_DECLARE_FLAG(int, port);
ABSL_DECLARE_FLAG(std::string, gemini_base_url);
ABSL_DECLARE_FLAG(std::string, gemini_api_key_file);
ABSL_DECLARE_FLAG(int, gemini_api_key_poll_ms);
ABSL_DECLARE_FLAG(std::string, default_model);
ABSL_DECLARE_FLAG(std::string, segment_model);
ABSL_DECLARE_FLAG(int, model_refresh_s);
ABSL_DECLARE_FLAG(int, max_receive_message_mb);
ABSL_DECLARE_FLAG(int, max_request_memory_mb);
ABSL_DECLARE_FLAG(int, max_call_duration_s);
ABSL_DECLARE_FLAG(int, upstream_timeout_s);
ABSL_DECLARE_FLAG(int, max_upstream_connections_per_host);
ABSL_DECLARE_FLAG(int, max_concurrent_calls);
ABSL_DECLARE_FLAG(int, max_upload_mb);
ABSL_DECLARE_FLAG(int, max_reorient_upload_mb);
ABSL_DECLARE_FLAG(int, upload_idle_timeout_s);
ABSL_DECLARE_FLAG(int, file_hash_cache_ttl_s);
ABSL_DECLARE_FLAG(int, drain_delay_s);
ABSL_DECLARE_FLAG(int, shutdown_grace_s);
ABSL_DECLARE_FLAG(int, max_connection_age_s);
ABSL_DECLARE_FLAG(int, max_retry_delay_s);
ABSL_DECLARE_FLAG(std::string, tls_cert_file);
ABSL_DECLARE_FLAG(std::string, tls_client_ca_file);
ABSL_DECLARE_FLAG(bool, auth_client_cert);
ABSL_DECLARE_FLAG(std::string, auth_tokens_file);
ABSL_DECLARE_FLAG(double, per_caller_rps);
ABSL_DECLARE_FLAG(std::string, caller_overrides);
ABSL_DECLARE_FLAG(std::string, allowed_models);
ABSL_DECLARE_FLAG(std::string, max_thinking_level);
ABSL_DECLARE_FLAG(int, metrics_port);
ABSL_DECLARE_FLAG(std::string, metrics_models);
ABSL_DECLARE_FLAG(std::string, log_format);
ABSL_DECLARE_FLAG(std::string, log_level);
ABSL_DECLARE_FLAG(int, max_batch_items);
ABSL_DECLARE_FLAG(int, batch_spool_max_mb);
ABSL_DECLARE_FLAG(int, result_cache_mb);
ABSL_DECLARE_FLAG(int, result_cache_ttl_s);
ABSL_DECLARE_FLAG(std::string, result_cache_redis);

namespace vision_gateway::config {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

constexpr char kKey[] = "AIzaTestKeyThatIsNotReal0123456789abcd";

class ServerConfigTest : public ::testing::Test {
 protected:
  EnvLookup Env() const {
    return [env = env_](const char* name) -> std::optional<std::string> {
      auto it = env.find(name);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
  }
  absl::StatusOr<ServerConfig> Read() const { return ServerConfigFromFlags(Env()); }
  // The error of reading the configuration (OK if it was valid).
  absl::Status ReadError() const { return Read().status(); }

  absl::FlagSaver saver_;  // every test's flags are undone after it
  std::map<std::string, std::string> env_ = {{"GEMINI_API_KEY", kKey}};
};

TEST_F(ServerConfigTest, DefaultsAreValidAndWhatTheFlagsSay) {
  auto config = Read();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.listen_address, "0.0.0.0:50051");
  EXPECT_EQ(config->gemini.base_url, "https://generativelanguage.googleapis.com");
  EXPECT_EQ(config->gemini.api_key.Current(), kKey);
  EXPECT_EQ(config->server.vision.default_model, "gemini-3-flash-preview");
  EXPECT_EQ(config->server.vision.files_base_uri,
            "https://generativelanguage.googleapis.com/v1beta");
  EXPECT_EQ(config->server.max_receive_message_bytes, 47 << 20);
  EXPECT_EQ(config->server.limits.max_concurrent_calls, 1024);
  EXPECT_EQ(config->server.limits.max_call_duration, absl::Hours(1));
  EXPECT_EQ(config->http.max_connections_per_host, 256u);
  EXPECT_EQ(config->server.vision.max_filling_upload_chunks, 128);
  EXPECT_EQ(config->retry.max_attempts, 4);
  EXPECT_EQ(config->retry.max_retry_delay, absl::Seconds(60));
  EXPECT_EQ(config->server.vision.max_retry_delay, absl::Seconds(60));
  EXPECT_EQ(config->server.vision.upload_idle_timeout, absl::Seconds(60));
  EXPECT_EQ(config->server.vision.batch_spool_max_bytes, int64_t{4096} << 20);
  EXPECT_EQ(config->metrics_port, 9464);
  EXPECT_THAT(config->metrics.known_models, Contains("gemini-3-flash-preview"));
  EXPECT_FALSE(config->server.tls.has_value());
  EXPECT_FALSE(config->server.auth.has_value());
  EXPECT_EQ(config->server.telemetry, nullptr);
  EXPECT_EQ(config->drain_delay, absl::ZeroDuration());
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(20));
  EXPECT_FALSE(config->server.vision.file_tag_key.empty());
}

TEST_F(ServerConfigTest, NoApiKeyIsRefusedNamingBothSources) {
  env_.erase("GEMINI_API_KEY");
  absl::Status status = ReadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("GEMINI_API_KEY"));
  EXPECT_THAT(status.message(), HasSubstr("--gemini_api_key_file"));
  env_["GEMINI_API_KEY"] = "  \n";
  EXPECT_EQ(ReadError().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ServerConfigTest, KeyFileWinsOverTheEnvironmentAndAMissingOneIsAnError) {
  const std::string path = ::testing::TempDir() + "/server_config_test_key";
  std::ofstream(path) << "AIzaFromTheFileNotReal0123456789abcdefg\n";
  absl::SetFlag(&FLAGS_gemini_api_key_file, path);
  absl::SetFlag(&FLAGS_gemini_api_key_poll_ms, 0);
  auto config = Read();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->gemini.api_key.Current(), "AIzaFromTheFileNotReal0123456789abcdefg");
  // The leak filter asks for the key in force on every error.
  ASSERT_TRUE(config->leak_filter.secret_source);
  EXPECT_EQ(config->leak_filter.secret_source(), "AIzaFromTheFileNotReal0123456789abcdefg");
  std::remove(path.c_str());

  absl::SetFlag(&FLAGS_gemini_api_key_file, path + ".missing");
  absl::Status status = ReadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("--gemini_api_key_file"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr(kKey)));
}

TEST_F(ServerConfigTest, EnvironmentFillsFlagsLeftAtTheirDefaults) {
  env_["GEMINI_BASE_URL"] = "http://127.0.0.1:8089";
  env_["VISION_GATEWAY_PORT"] = "7001";
  env_["VISION_GATEWAY_DEFAULT_MODEL"] = "gemini-3.1-pro-preview";
  env_["VISION_GATEWAY_METRICS_PORT"] = "-1";
  auto config = Read();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->gemini.base_url, "http://127.0.0.1:8089");
  EXPECT_EQ(config->server.vision.files_base_uri, "http://127.0.0.1:8089/v1beta");
  EXPECT_EQ(config->server.listen_address, "0.0.0.0:7001");
  EXPECT_EQ(config->server.vision.default_model, "gemini-3.1-pro-preview");
  EXPECT_EQ(config->metrics_port, -1);
  EXPECT_THAT(config->leak_filter.upstream_hosts, Contains("127.0.0.1"));
}

TEST_F(ServerConfigTest, FlagsGivenWinOverTheEnvironment) {
  env_["GEMINI_BASE_URL"] = "http://127.0.0.1:8089";
  env_["VISION_GATEWAY_PORT"] = "7001";
  absl::SetFlag(&FLAGS_gemini_base_url, "http://localhost:9999");
  absl::SetFlag(&FLAGS_port, 0);
  absl::SetFlag(&FLAGS_listen_host, "127.0.0.1");
  auto config = Read();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->gemini.base_url, "http://localhost:9999");
  EXPECT_EQ(config->server.listen_address, "127.0.0.1:0");
}

TEST_F(ServerConfigTest, AMalformedNumberInTheEnvironmentIsAnErrorNotIgnored) {
  env_["VISION_GATEWAY_PORT"] = "50o51";
  absl::Status status = ReadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("VISION_GATEWAY_PORT"));
}

// Each invalid setting is refused with a message naming the flag.
struct BadSetting {
  const char* name;
  void (*apply)();
  const char* message;
};

void PrintTo(const BadSetting& setting, std::ostream* os) { *os << setting.name; }

class InvalidSettingTest : public ServerConfigTest,
                           public ::testing::WithParamInterface<BadSetting> {};

TEST_P(InvalidSettingTest, IsRefusedNamingTheFlag) {
  GetParam().apply();
  absl::Status status = ReadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Flags, InvalidSettingTest,
    ::testing::Values(
        BadSetting{"ReceiveOverBase64Cap", [] { absl::SetFlag(&FLAGS_max_receive_message_mb, 48); },
                   "--max_receive_message_mb must be 1..47"},
        BadSetting{"RequestMemoryBelowOneRequest",
                   [] { absl::SetFlag(&FLAGS_max_request_memory_mb, 10); },
                   "--max_request_memory_mb must be 0 (unbounded) or at least"},
        BadSetting{"NegativeCallDuration", [] { absl::SetFlag(&FLAGS_max_call_duration_s, -1); },
                   "--max_call_duration_s must not be negative"},
        BadSetting{"ZeroUpstreamTimeout", [] { absl::SetFlag(&FLAGS_upstream_timeout_s, 0); },
                   "--upstream_timeout_s must be >= 1"},
        BadSetting{"NoConnections",
                   [] { absl::SetFlag(&FLAGS_max_upstream_connections_per_host, 0); },
                   "--max_upstream_connections_per_host must be >= 1"},
        BadSetting{"UploadOverTwoGB", [] { absl::SetFlag(&FLAGS_max_upload_mb, 4096); },
                   "--max_upload_mb must be 1..2048"},
        BadSetting{"ReorientOverUpload", [] { absl::SetFlag(&FLAGS_max_reorient_upload_mb, 4096); },
                   "--max_reorient_upload_mb"},
        BadSetting{"NegativeUploadIdle", [] { absl::SetFlag(&FLAGS_upload_idle_timeout_s, -1); },
                   "--upload_idle_timeout_s"},
        BadSetting{"NegativeHashTtl", [] { absl::SetFlag(&FLAGS_file_hash_cache_ttl_s, -5); },
                   "--file_hash_cache_ttl_s"},
        BadSetting{"NegativeDrain", [] { absl::SetFlag(&FLAGS_drain_delay_s, -1); },
                   "--drain_delay_s"},
        BadSetting{"NegativeGrace", [] { absl::SetFlag(&FLAGS_shutdown_grace_s, -1); },
                   "--shutdown_grace_s"},
        BadSetting{"NegativeConnectionAge", [] { absl::SetFlag(&FLAGS_max_connection_age_s, -1); },
                   "--max_connection_age_s"},
        BadSetting{"ModelRefresh", [] { absl::SetFlag(&FLAGS_model_refresh_s, -2); },
                   "--model_refresh_s"},
        BadSetting{"BadDefaultModel", [] { absl::SetFlag(&FLAGS_default_model, "not a model!"); },
                   "--default_model/--segment_model"},
        BadSetting{"DefaultModelNotAllowed",
                   [] { absl::SetFlag(&FLAGS_default_model, "gemini-3.1-pro-preview");
                        absl::SetFlag(&FLAGS_allowed_models, "gemini-3-flash-preview"); },
                   "--default_model gemini-3.1-pro-preview is not in --allowed_models"},
        BadSetting{"SegmentModelNotAllowed",
                   [] { absl::SetFlag(&FLAGS_segment_model, "gemini-3.1-flash-lite");
                        absl::SetFlag(&FLAGS_allowed_models, "gemini-3-flash-preview"); },
                   "--segment_model gemini-3.1-flash-lite is not in --allowed_models"},
        BadSetting{"NoAllowedModels", [] { absl::SetFlag(&FLAGS_allowed_models, " , "); },
                   "--allowed_models is empty"},
        BadSetting{"ThinkingLevel", [] { absl::SetFlag(&FLAGS_max_thinking_level, "extreme"); },
                   "--max_thinking_level must be MINIMAL, LOW, MEDIUM or HIGH"},
        BadSetting{"CertWithoutKey", [] { absl::SetFlag(&FLAGS_tls_cert_file, "/x.pem"); },
                   "TLS needs both --tls_cert_file and --tls_key_file"},
        BadSetting{"ClientCertIdentityWithoutMtls",
                   [] { absl::SetFlag(&FLAGS_auth_client_cert, true); },
                   "--auth_client_cert needs mTLS"},
        BadSetting{"PerCallerLimitWithoutCallers", [] { absl::SetFlag(&FLAGS_per_caller_rps, 5.0); },
                   "need caller authentication"},
        BadSetting{"MalformedOverrides",
                   [] { absl::SetFlag(&FLAGS_auth_tokens_file, "/tokens");
                        absl::SetFlag(&FLAGS_caller_overrides, "alice:rps"); },
                   "alice"},
        BadSetting{"NoBatchItems", [] { absl::SetFlag(&FLAGS_max_batch_items, 0); },
                   "--max_batch_items must be 1..1000000"},
        BadSetting{"NegativeBatchSpool", [] { absl::SetFlag(&FLAGS_batch_spool_max_mb, -1); },
                   "--batch_spool_max_mb must be 0 (unbounded) or more"},
        BadSetting{"NegativeResultCache", [] { absl::SetFlag(&FLAGS_result_cache_mb, -1); },
                   "--result_cache_mb must be 0..1048576"},
        BadSetting{"ZeroResultCacheTtl", [] { absl::SetFlag(&FLAGS_result_cache_ttl_s, 0); },
                   "--result_cache_ttl_s must be >= 1"},
        BadSetting{"MalformedRedisEndpoint",
                   [] { absl::SetFlag(&FLAGS_result_cache_redis, "redis-without-port"); },
                   "--result_cache_redis"},
        BadSetting{"PortOutOfRange", [] { absl::SetFlag(&FLAGS_port, 70000); },
                   "--port must be 0..65535"},
        BadSetting{"MetricsPortOutOfRange", [] { absl::SetFlag(&FLAGS_metrics_port, -7); },
                   "--metrics_port must be -1 (off) or 0..65535"}),
    [](const ::testing::TestParamInfo<BadSetting>& info) { return info.param.name; });

TEST_F(ServerConfigTest, AuthenticationAndLimitsAreAssembledTogether) {
  absl::SetFlag(&FLAGS_auth_tokens_file, "/run/tokens");
  absl::SetFlag(&FLAGS_per_caller_rps, 2.5);
  absl::SetFlag(&FLAGS_caller_overrides, "alice:rps=9");
  auto config = Read();
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->server.auth.has_value());
  EXPECT_EQ(config->server.auth->tokens_file, "/run/tokens");
  EXPECT_EQ(config->server.auth->limits.requests_per_second, 2.5);
  EXPECT_EQ(config->server.auth->overrides.size(), 1u);
}

TEST_F(ServerConfigTest, DerivedSettingsFollowTheirFlags) {
  absl::SetFlag(&FLAGS_max_upstream_connections_per_host, 40);
  absl::SetFlag(&FLAGS_max_concurrent_calls, 4096);
  absl::SetFlag(&FLAGS_segment_model, "gemini-3.1-pro-preview");
  absl::SetFlag(&FLAGS_metrics_models, "custom-model-a, custom-model-b");
  absl::SetFlag(&FLAGS_max_retry_delay_s, 5);
  absl::SetFlag(&FLAGS_max_call_duration_s, 0);
  absl::SetFlag(&FLAGS_batch_spool_max_mb, 512);
  auto config = Read();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.vision.max_filling_upload_chunks, 20);
  EXPECT_EQ(config->http.max_waiting_requests_per_host, 4096u);
  EXPECT_EQ(config->server.vision.max_retry_delay, absl::Seconds(5));
  EXPECT_EQ(config->server.limits.max_call_duration, absl::InfiniteDuration());
  EXPECT_EQ(config->server.vision.batch_spool_max_bytes, int64_t{512} << 20);
  EXPECT_THAT(config->metrics.known_models, Contains("gemini-3.1-pro-preview"));
  EXPECT_THAT(config->metrics.known_models, Contains("custom-model-b"));
}

TEST_F(ServerConfigTest, TheResultCacheIsOffByDefaultAndRedisWinsWhenNamed) {
  auto config = Read();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->result_cache.enabled());
  absl::SetFlag(&FLAGS_result_cache_mb, 64);
  config = Read();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->result_cache.enabled());
  EXPECT_EQ(config->result_cache.memory_bytes, std::size_t{64} << 20);
  EXPECT_FALSE(config->result_cache.redis.has_value());
  absl::SetFlag(&FLAGS_result_cache_redis, "vision-gateway-redis:6379");
  config = Read();
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->result_cache.redis.has_value());
  EXPECT_EQ(config->result_cache.redis->host, "vision-gateway-redis");
  EXPECT_EQ(config->result_cache.redis->port, 6379);
  // Redis is never asked to hold a value the cache would not store.
  EXPECT_EQ(config->result_cache.redis->max_value_bytes, config->result_cache.caching.max_entry_bytes);
}

TEST_F(ServerConfigTest, LogSettingsAreCheckedOnTheirOwn) {
  auto log = LogConfigFromFlags();
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->format, LogFormat::kText);
  absl::SetFlag(&FLAGS_log_format, "json");
  absl::SetFlag(&FLAGS_log_level, "warning");
  log = LogConfigFromFlags();
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->format, LogFormat::kJson);
  EXPECT_EQ(log->min_severity, LogSeverity::kWarning);
  absl::SetFlag(&FLAGS_log_level, "loud");
  EXPECT_EQ(LogConfigFromFlags().status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vision_gateway::config
