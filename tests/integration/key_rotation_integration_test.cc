// The Gemini key rotates without a restart: the gateway reads it from a file laid out like a
// Kubernetes Secret volume; the Secret is updated (atomic ..data symlink swap) and the key is
// revoked upstream (the emulator accepts only the new one). A Caption stream in flight across the
// switch (its last event held upstream until the switch is over) completes with the key it
// started with; calls started after the reload use the new key.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "emulator/emulator.h"
#include "emulator/gemini_wire.h"
#include "gmock/gmock.h"
#include "service/gemini/api_key_file.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/testing/secret_mount.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;

constexpr char kNewKey[] = "integration-key-rotated-7c21";

class KeyRotationTest : public GatewayTest {
 protected:
  void SetUp() override {}  // each test starts the stack with its key source
};

v1::CaptionRequest RedSquareCaption() {
  v1::CaptionRequest request;
  request.add_images()->set_content(
      MakePng(320, 240, Rgb{255, 255, 255}, Rgb{220, 20, 20}, 40, 30, 140, 110));
  return request;
}

grpc::Status Caption(v1::VisionService::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto reader = stub.Caption(&context, RedSquareCaption());
  v1::CaptionResponse response;
  while (reader->Read(&response)) {
  }
  return reader->Finish();
}

TEST_F(KeyRotationTest, InFlightCallKeepsItsKeyAndNewCallsUseTheRotatedOne) {
  SecretMount secret;
  secret.Publish(std::string(kEmulatorKey) + "\n");
  auto key_file = gemini::ApiKeyFile::Open(secret.path().string(), absl::Milliseconds(20));
  ASSERT_TRUE(key_file.ok()) << key_file.status();
  StartStack(gemini::ApiKey(std::shared_ptr<const gemini::ApiKeySource>(*key_file)));
  // The first stream's last event is held until the rotation is over (the second call has been
  // answered): the stream is provably in flight, upstream, across the whole switch. Its
  // messages cannot all be waiting in the client's buffer already.
  auto rotated = std::make_shared<absl::Notification>();
  emulator::ScriptedResponse held = emulator::ScriptedStream({"A red", " square", " rotated"});
  held.hold_last_write_until = [rotated] { return rotated->HasBeenNotified(); };
  emulator_->Enqueue(held);

  grpc::ClientContext first_context;
  first_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto first = stub_->Caption(&first_context, RedSquareCaption());
  v1::CaptionResponse response;
  ASSERT_TRUE(first->Read(&response)) << "no first message";

  // The Secret is updated; once the gateway has reloaded, the old key is revoked upstream.
  secret.Publish(kNewKey);
  ASSERT_TRUE((*key_file)->WaitForChange(0, absl::Seconds(30))) << "key file not reloaded";
  emulator_->SetApiKey(kNewKey);

  const grpc::Status second = Caption(*stub_);
  EXPECT_TRUE(second.ok()) << second.error_code() << " " << second.error_message();
  rotated->Notify();

  std::string rest;
  while (first->Read(&response)) rest += response.text();
  const grpc::Status first_status = first->Finish();
  EXPECT_TRUE(first_status.ok()) << first_status.error_message();
  // Written upstream only after the rotation.
  EXPECT_THAT(rest, ::testing::HasSubstr("rotated"));
  EXPECT_EQ(response.finish_reason(), "STOP");

  const auto requests = emulator_->Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].Header("x-goog-api-key"), kEmulatorKey);
  EXPECT_EQ(requests[1].Header("x-goog-api-key"), kNewKey);

  // And the old key really is revoked: a gateway still sending it is refused.
  emulator_->SetApiKey("some-other-key");
  const grpc::Status refused = Caption(*stub_);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INTERNAL) << refused.error_message();
  EXPECT_EQ(refused.error_message().find(kNewKey), std::string::npos) << "key leaked";
}

}  // namespace
}  // namespace vision_gateway::testing
