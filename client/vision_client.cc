#include "client/vision_client.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vision_gateway::client {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace

absl::StatusOr<::vision::v1::Image> ImageFromPath(const std::string& path_or_file) {
  ::vision::v1::Image image;
  if (absl::StartsWith(path_or_file, "files/")) {
    image.set_file(path_or_file);
    return image;
  }
  std::ifstream in(path_or_file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path_or_file));
  image.mutable_content()->assign(std::istreambuf_iterator<char>(in),
                                  std::istreambuf_iterator<char>());
  return image;
}

VisionClient::VisionClient(ClientOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  stub_ = ::vision::v1::VisionService::NewStub(grpc::CreateCustomChannel(
      options_.target, grpc::InsecureChannelCredentials(), args));
}

absl::StatusOr<::vision::v1::CaptionResponse> VisionClient::Caption(
    const ::vision::v1::CaptionRequest& request,
    const std::function<void(const std::string&)>& on_text) {
  grpc::ClientContext context;
  SetDeadline(context, options_.timeout);
  auto reader = stub_->Caption(&context, request);
  ::vision::v1::CaptionResponse response, last;
  while (reader->Read(&response)) {
    if (!response.text().empty()) on_text(response.text());
    if (!response.finish_reason().empty()) last = response;
  }
  if (absl::Status s = FromGrpc(reader->Finish()); !s.ok()) return s;
  return last;
}

namespace {

// Reads a server stream to the end, handing each message to on_message.
template <typename Response, typename Reader>
absl::Status ReadStream(Reader& reader, const std::function<void(const Response&)>& on_message) {
  Response response;
  while (reader->Read(&response)) on_message(response);
  return FromGrpc(reader->Finish());
}

}  // namespace

absl::Status VisionClient::Detect(
    const ::vision::v1::DetectRequest& request,
    const std::function<void(const ::vision::v1::DetectResponse&)>& on_message) {
  grpc::ClientContext context;
  SetDeadline(context, options_.timeout);
  auto reader = stub_->Detect(&context, request);
  return ReadStream(reader, on_message);
}

absl::Status VisionClient::Segment(
    const ::vision::v1::SegmentRequest& request,
    const std::function<void(const ::vision::v1::SegmentResponse&)>& on_message) {
  grpc::ClientContext context;
  SetDeadline(context, options_.timeout);
  auto reader = stub_->Segment(&context, request);
  return ReadStream(reader, on_message);
}

absl::StatusOr<::vision::v1::CountTokensResponse> VisionClient::CountTokens(
    const ::vision::v1::CountTokensRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context, options_.timeout);
  ::vision::v1::CountTokensResponse response;
  if (absl::Status s = FromGrpc(stub_->CountTokens(&context, request, &response)); !s.ok()) {
    return s;
  }
  return response;
}

}  // namespace vision_gateway::client
