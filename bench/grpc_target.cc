#include "bench/grpc_target.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "vision/v1/vision.grpc.pb.h"

namespace vision_gateway::bench {
namespace {

using vision::v1::VisionService;

// Starts a server-streaming call of one RPC on a stub with the callback API.
template <typename Request, typename Response>
using StreamStarter = std::function<void(VisionService::Stub*, grpc::ClientContext*,
                                         const Request*, grpc::ClientReadReactor<Response>*)>;

// One server-streaming call. Owns itself: deleted in OnDone, after which `done` runs.
template <typename Request, typename Response>
class StreamCall final : public grpc::ClientReadReactor<Response> {
 public:
  StreamCall(std::shared_ptr<const Request> request, std::chrono::milliseconds timeout,
             LoadTarget::DoneCallback done)
      : request_(std::move(request)), done_(std::move(done)) {
    context_.set_deadline(std::chrono::system_clock::now() + timeout);
  }

  void Go(VisionService::Stub* stub, const StreamStarter<Request, Response>& starter) {
    sample_.start = Clock::now();
    starter(stub, &context_, request_.get(), this);
    this->StartRead(&response_);
    this->StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows with the status
    if (!sample_.got_first) {
      sample_.first = Clock::now();
      sample_.got_first = true;
    }
    ++sample_.messages;
    this->StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    sample_.end = Clock::now();
    if (!status.ok()) sample_.error = GrpcCodeName(status.error_code());
    Sample sample = std::move(sample_);
    LoadTarget::DoneCallback done = std::move(done_);
    delete this;
    done(sample);
  }

 private:
  grpc::ClientContext context_;
  std::shared_ptr<const Request> request_;
  Response response_;
  Sample sample_;
  LoadTarget::DoneCallback done_;
};

// The RPC-independent part: channels, stubs and round-robin.
template <typename Request, typename Response>
class StreamTarget final : public LoadTarget {
 public:
  StreamTarget(std::vector<std::unique_ptr<VisionService::Stub>> stubs,
               std::shared_ptr<const Request> request, StreamStarter<Request, Response> starter,
               std::chrono::milliseconds timeout, std::string description)
      : stubs_(std::move(stubs)),
        request_(std::move(request)),
        starter_(std::move(starter)),
        timeout_(timeout),
        description_(std::move(description)) {}

  void Start(DoneCallback done) override {
    const size_t index = next_.fetch_add(1, std::memory_order_relaxed) % stubs_.size();
    auto* call = new StreamCall<Request, Response>(request_, timeout_, std::move(done));
    call->Go(stubs_[index].get(), starter_);
  }

  std::string Describe() const override { return description_; }

 private:
  std::vector<std::unique_ptr<VisionService::Stub>> stubs_;
  std::shared_ptr<const Request> request_;
  StreamStarter<Request, Response> starter_;
  std::chrono::milliseconds timeout_;
  std::string description_;
  std::atomic<size_t> next_{0};
};

vision::v1::Image MakeImage(const GrpcTargetOptions& options) {
  vision::v1::Image image;
  image.set_content(options.image);
  image.set_mime_type(options.mime_type);
  return image;
}

template <typename Request, typename Response>
std::unique_ptr<LoadTarget> MakeStreamTarget(
    std::vector<std::unique_ptr<VisionService::Stub>> stubs, const GrpcTargetOptions& options,
    std::shared_ptr<const Request> request, StreamStarter<Request, Response> starter,
    const std::string& rpc_name) {
  std::string description = absl::StrCat("grpc ", rpc_name, " ", options.target, " over ",
                                         stubs.size(), " channel(s)");
  return std::make_unique<StreamTarget<Request, Response>>(
      std::move(stubs), std::move(request), std::move(starter), options.timeout,
      std::move(description));
}

}  // namespace

std::string GrpcCodeName(int code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",          "UNKNOWN",           "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS",    "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",       "DATA_LOSS",
      "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))) {
    return kNames[code];
  }
  return absl::StrCat("CODE_", code);
}

absl::StatusOr<std::unique_ptr<LoadTarget>> MakeGrpcTarget(const GrpcTargetOptions& options) {
  if (options.channels < 1) return absl::InvalidArgumentError("channels must be >= 1");
  std::vector<std::unique_ptr<VisionService::Stub>> stubs;
  for (int i = 0; i < options.channels; ++i) {
    grpc::ChannelArguments args;
    // Without a local subchannel pool, channels with equal arguments share one connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("vision_gateway.bench.channel_index", i);
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    auto channel =
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + options.connect_timeout)) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to ", options.target, " (channel ", i, ")"));
    }
    stubs.push_back(VisionService::NewStub(channel));
  }

  if (options.rpc == "caption") {
    auto request = std::make_shared<vision::v1::CaptionRequest>();
    *request->add_images() = MakeImage(options);
    request->set_prompt(options.prompt);
    request->mutable_options()->set_model(options.model);
    StreamStarter<vision::v1::CaptionRequest, vision::v1::CaptionResponse> starter =
        [](VisionService::Stub* stub, grpc::ClientContext* context,
           const vision::v1::CaptionRequest* req,
           grpc::ClientReadReactor<vision::v1::CaptionResponse>* reactor) {
          stub->async()->Caption(context, req, reactor);
        };
    return MakeStreamTarget(std::move(stubs), options,
                            std::shared_ptr<const vision::v1::CaptionRequest>(request),
                            std::move(starter), "Caption");
  }
  // Detect and Segment exist in vision.v1; a server that has not implemented them yet answers
  // UNIMPLEMENTED, which the report shows as failures by code.
  if (options.rpc == "detect") {
    auto request = std::make_shared<vision::v1::DetectRequest>();
    *request->mutable_image() = MakeImage(options);
    request->set_prompt(options.prompt);
    request->mutable_options()->set_model(options.model);
    StreamStarter<vision::v1::DetectRequest, vision::v1::DetectResponse> starter =
        [](VisionService::Stub* stub, grpc::ClientContext* context,
           const vision::v1::DetectRequest* req,
           grpc::ClientReadReactor<vision::v1::DetectResponse>* reactor) {
          stub->async()->Detect(context, req, reactor);
        };
    return MakeStreamTarget(std::move(stubs), options,
                            std::shared_ptr<const vision::v1::DetectRequest>(request),
                            std::move(starter), "Detect");
  }
  if (options.rpc == "segment") {
    auto request = std::make_shared<vision::v1::SegmentRequest>();
    *request->mutable_image() = MakeImage(options);
    request->set_prompt(options.prompt);
    request->mutable_options()->set_model(options.model);
    StreamStarter<vision::v1::SegmentRequest, vision::v1::SegmentResponse> starter =
        [](VisionService::Stub* stub, grpc::ClientContext* context,
           const vision::v1::SegmentRequest* req,
           grpc::ClientReadReactor<vision::v1::SegmentResponse>* reactor) {
          stub->async()->Segment(context, req, reactor);
        };
    return MakeStreamTarget(std::move(stubs), options,
                            std::shared_ptr<const vision::v1::SegmentRequest>(request),
                            std::move(starter), "Segment");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown --rpc '", options.rpc, "' (caption, detect, segment)"));
}

}  // namespace vision_gateway::bench
