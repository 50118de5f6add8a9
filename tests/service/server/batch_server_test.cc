// The batch RPCs through the gRPC server (#20), with fake Batch and Files stubs injected:
// UNIMPLEMENTED without a batches stub, CreateBatch's client stream to a job, ReadBatchResults'
// typed stream and its state check, the job RPCs.
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/error_details.h>

#include <memory>
#include <string>
#include <vector>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "client/vision_client.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "service/gemini/json_codec.h"
#include "service/server/server.h"
#include "service/vision/batch_key.h"
#include "tests/testing/fake_batches_stub.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/test_images.h"
#include "vision/v1/vision.grpc.pb.h"

namespace vision_gateway::server {
namespace {

namespace v1 = ::vision::v1;
using ::vision_gateway::testing::FakeBatchesStub;
using ::vision_gateway::testing::FakeFilesStub;
using ::vision_gateway::testing::FakeGeminiClient;
using ::vision_gateway::testing::MakePng;

std::string ReasonOf(const grpc::Status& status) {
  google::rpc::Status details;
  if (!grpc::ExtractErrorDetails(status, &details).ok()) return "";
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

class BatchServerTest : public ::testing::Test {
 protected:
  void Start(bool with_batches) {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.vision.batch_spool_dir = ::testing::TempDir();
    gemini::GeminiStubs stubs(generate_, files_);
    if (with_batches) stubs.batches = batches_;
    auto server = VisionServer::Start(options, stubs);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = v1::VisionService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  void PutDetectJob(const std::string& state, const std::vector<std::string>& keys) {
    gemini::BatchJob job;
    job.name = "batches/b1";
    job.display_name = vision::EncodeBatchDisplayName("nightly", v1::BATCH_TASK_DETECT, "");
    job.model = "models/gemini-3-flash-preview";
    job.state = state;
    job.responses_file = "files/out1";
    batches_->PutJob(job);
    std::string file;
    for (const std::string& k : keys) {
      vision::BatchItemKey key;
      key.task = v1::BATCH_TASK_DETECT;
      key.max_objects = 25;
      key.width = 400;
      key.height = 200;
      key.mime_type = "image/png";
      key.caller_key = k;
      gemini::GenerateContentResponse answer;
      auto& candidate = answer.candidates.emplace_back();
      candidate.content.parts.emplace_back().text =
          R"([{"box_2d":[250,250,750,500],"label":"red"}])";
      candidate.finish_reason = "STOP";
      absl::StrAppend(&file, R"({"key":")", vision::EncodeBatchItemKey(key),
                      R"(","response":)", gemini::EncodeGenerateContentResponse(answer), "}\n");
    }
    batches_->SetResponses(file, 50);
  }

  std::shared_ptr<FakeGeminiClient> generate_ = std::make_shared<FakeGeminiClient>();
  std::shared_ptr<FakeFilesStub> files_ = std::make_shared<FakeFilesStub>();
  std::shared_ptr<FakeBatchesStub> batches_ = std::make_shared<FakeBatchesStub>();
  std::unique_ptr<VisionServer> server_;
  std::unique_ptr<v1::VisionService::Stub> stub_;
};

TEST_F(BatchServerTest, WithoutTheBatchApiEveryBatchRpcIsUnimplemented) {
  Start(false);
  {
    grpc::ClientContext context;
    v1::GetBatchRequest request;
    request.set_name("batches/b1");
    v1::BatchJob job;
    EXPECT_EQ(stub_->GetBatch(&context, request, &job).error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
  }
  {
    grpc::ClientContext context;
    v1::ReadBatchResultsRequest request;
    request.set_name("batches/b1");
    auto reader = stub_->ReadBatchResults(&context, request);
    v1::BatchResult result;
    EXPECT_FALSE(reader->Read(&result));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  {
    grpc::ClientContext context;
    v1::BatchJob job;
    auto writer = stub_->CreateBatch(&context, &job);
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
}

TEST_F(BatchServerTest, ReadBatchResultsStreamsTypedResultsWithKeys) {
  Start(true);
  PutDetectJob("BATCH_STATE_SUCCEEDED", {"a", "b"});
  grpc::ClientContext context;
  v1::ReadBatchResultsRequest request;
  request.set_name("batches/b1");
  auto reader = stub_->ReadBatchResults(&context, request);
  std::vector<v1::BatchResult> results;
  v1::BatchResult result;
  while (reader->Read(&result)) results.push_back(result);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(results.size(), 6u);
  EXPECT_EQ(results[0].key(), "a");
  EXPECT_EQ(results[0].detect().image_info().width(), 400);
  EXPECT_EQ(results[1].detect().detection().box().x_min(), 100);
  EXPECT_TRUE(results[2].detect().has_summary());
  EXPECT_EQ(results[5].key(), "b");

  // Resumed after "a".
  grpc::ClientContext resumed_context;
  request.set_start_after_key("a");
  auto resumed = stub_->ReadBatchResults(&resumed_context, request);
  std::vector<std::string> keys;
  while (resumed->Read(&result)) keys.push_back(result.key());
  ASSERT_TRUE(resumed->Finish().ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"b", "b", "b"}));
}

TEST_F(BatchServerTest, ResultsOfARunningJobAreFailedPrecondition) {
  Start(true);
  PutDetectJob("BATCH_STATE_RUNNING", {"a"});
  grpc::ClientContext context;
  v1::ReadBatchResultsRequest request;
  request.set_name("batches/b1");
  auto reader = stub_->ReadBatchResults(&context, request);
  v1::BatchResult result;
  EXPECT_FALSE(reader->Read(&result));
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("BATCH_STATE_RUNNING"), std::string::npos);
  EXPECT_EQ(ReasonOf(status), "BATCH_NOT_SUCCEEDED");

  grpc::ClientContext get_context;
  v1::GetBatchRequest get;
  get.set_name("batches/b1");
  v1::BatchJob job;
  ASSERT_TRUE(stub_->GetBatch(&get_context, get, &job).ok());
  EXPECT_EQ(job.state(), v1::BatchJob::STATE_RUNNING);
  EXPECT_EQ(job.task(), v1::BATCH_TASK_DETECT);
  EXPECT_EQ(job.display_name(), "nightly");

  grpc::ClientContext missing_context;
  get.set_name("batches/nope");
  EXPECT_EQ(stub_->GetBatch(&missing_context, get, &job).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(BatchServerTest, CreateBatchStreamsItemsIntoAJob) {
  Start(true);
  grpc::ClientContext context;
  v1::BatchJob job;
  auto writer = stub_->CreateBatch(&context, &job);
  v1::CreateBatchRequest header;
  header.mutable_header()->set_task(v1::BATCH_TASK_DETECT);
  header.mutable_header()->set_display_name("two images");
  ASSERT_TRUE(writer->Write(header));
  const std::string png = MakePng(64, 32, {255, 255, 255}, {0, 0, 255}, 8, 8, 24, 24);
  for (const char* key : {"one", "two"}) {
    v1::CreateBatchRequest item;
    item.mutable_item()->set_key(key);
    item.mutable_item()->mutable_image()->set_content(png);
    ASSERT_TRUE(writer->Write(item));
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(job.name(), "batches/job1");
  EXPECT_EQ(job.display_name(), "two images");
  EXPECT_EQ(job.task(), v1::BATCH_TASK_DETECT);
  ASSERT_EQ(batches_->created().size(), 1u);
  const std::string input = batches_->created()[0].second.input_file;
  const std::string file = files_->uploaded().at(input);
  EXPECT_EQ(std::count(file.begin(), file.end(), '\n'), 2);
}

// The C++ client library's batch calls (what `vision batch` runs): images read from paths, the
// path as each item's key, then the typed results.
TEST_F(BatchServerTest, ClientLibraryCreatesAndReadsBatches) {
  Start(true);
  const std::string path = ::testing::TempDir() + "/batch-client-one.png";
  {
    std::ofstream out(path, std::ios::binary);
    out << MakePng(64, 32, {255, 255, 255}, {0, 0, 255}, 8, 8, 24, 24);
  }
  client::ClientOptions options;
  options.target = "127.0.0.1:" + std::to_string(server_->port());
  auto client = client::VisionClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  v1::CreateBatchHeader header;
  header.set_task(v1::BATCH_TASK_DETECT);
  auto job = (*client)->CreateBatch(header, {path});
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::BatchJob::STATE_PENDING);
  const std::string input = batches_->created()[0].second.input_file;
  EXPECT_NE(files_->uploaded().at(input).find(
                absl::StrCat("\"key\":\"", vision::EncodeBatchItemKey([&] {
                               vision::BatchItemKey key;
                               key.task = v1::BATCH_TASK_DETECT;
                               key.max_objects = 25;
                               key.width = 64;
                               key.height = 32;
                               key.mime_type = "image/png";
                               key.caller_key = path;
                               return key;
                             }()))),
            std::string::npos);
  // A missing local image fails locally, and no job is created.
  EXPECT_FALSE((*client)->CreateBatch(header, {path + ".missing"}).ok());
  EXPECT_EQ(batches_->created().size(), 1u);

  PutDetectJob("BATCH_STATE_SUCCEEDED", {path});
  std::vector<v1::BatchResult> results;
  ASSERT_TRUE((*client)
                  ->ReadBatchResults("batches/b1", "",
                                     [&](const v1::BatchResult& r) { results.push_back(r); })
                  .ok());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].key(), path);
  auto listed = (*client)->ListBatches(0, "");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->batches_size(), 2);
  EXPECT_TRUE((*client)->CancelBatch("batches/b1").ok());
  EXPECT_TRUE((*client)->DeleteBatch("batches/b1").ok());
  EXPECT_EQ(batches_->cancelled_or_deleted(),
            (std::vector<std::string>{"cancel batches/b1", "delete batches/b1"}));
}

}  // namespace
}  // namespace vision_gateway::server
