#include "client/vision_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <string_view>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/http/sha256.h"

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
  if (absl::StartsWith(path_or_file, "files/") ||
      absl::StartsWith(path_or_file, "https://generativelanguage.googleapis.com/")) {
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

namespace {

absl::StatusOr<std::string> HashFile(const std::string& path, std::size_t buffer_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  http::Sha256 hasher;
  std::string buffer(buffer_bytes, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hasher.Update(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (!in.eof()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return hasher.FinishHex();
}

}  // namespace

absl::StatusOr<::vision::v1::File> VisionClient::UploadFile(const std::string& path,
                                                            const UploadOptions& options) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  const int64_t size = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  const std::size_t chunk_bytes = std::max<std::size_t>(options.chunk_bytes, 1);
  ::vision::v1::UploadRequest header;
  header.mutable_header()->set_size_bytes(size);
  header.mutable_header()->set_display_name(options.display_name);
  header.mutable_header()->set_mime_type(options.mime_type);
  if (options.send_sha256) {
    auto sha256 = HashFile(path, chunk_bytes);
    if (!sha256.ok()) return sha256.status();
    header.mutable_header()->set_sha256(*sha256);
  }
  grpc::ClientContext context;
  SetDeadline(context, options_.timeout);
  ::vision::v1::File file;
  auto writer = stub_->Upload(&context, &file);
  bool open = writer->Write(header);
  int64_t sent = 0;
  ::vision::v1::UploadRequest message;
  std::string* buffer = message.mutable_chunk();
  while (open && sent < size) {
    buffer->resize(static_cast<std::size_t>(std::min<int64_t>(chunk_bytes, size - sent)));
    in.read(buffer->data(), static_cast<std::streamsize>(buffer->size()));
    if (in.gcount() != static_cast<std::streamsize>(buffer->size())) {
      context.TryCancel();
      writer->Finish();
      return absl::DataLossError(absl::StrCat(path, " changed while it was being uploaded"));
    }
    // A failed write means the server has already answered (e.g. an identical file exists).
    open = writer->Write(message);
    sent += static_cast<int64_t>(buffer->size());
    if (open && options.on_progress) options.on_progress(sent, size);
  }
  if (open) writer->WritesDone();
  if (absl::Status s = FromGrpc(writer->Finish()); !s.ok()) return s;
  return file;
}

absl::StatusOr<::vision::v1::File> VisionClient::GetFile(const std::string& name) {
  grpc::ClientContext context;
  SetDeadline(context, options_.timeout);
  ::vision::v1::GetFileRequest request;
  request.set_name(name);
  ::vision::v1::File file;
  if (absl::Status s = FromGrpc(stub_->GetFile(&context, request, &file)); !s.ok()) return s;
  return file;
}

absl::StatusOr<::vision::v1::ListFilesResponse> VisionClient::ListFiles(
    int page_size, const std::string& page_token) {
  grpc::ClientContext context;
  SetDeadline(context, options_.timeout);
  ::vision::v1::ListFilesRequest request;
  request.set_page_size(page_size);
  request.set_page_token(page_token);
  ::vision::v1::ListFilesResponse response;
  if (absl::Status s = FromGrpc(stub_->ListFiles(&context, request, &response)); !s.ok()) {
    return s;
  }
  return response;
}

absl::Status VisionClient::DeleteFile(const std::string& name) {
  grpc::ClientContext context;
  SetDeadline(context, options_.timeout);
  ::vision::v1::DeleteFileRequest request;
  request.set_name(name);
  google::protobuf::Empty empty;
  return FromGrpc(stub_->DeleteFile(&context, request, &empty));
}

absl::StatusOr<::vision::v1::ListModelsResponse> VisionClient::ListModels() {
  grpc::ClientContext context;
  SetDeadline(context, options_.timeout);
  ::vision::v1::ListModelsResponse response;
  if (absl::Status s = FromGrpc(stub_->ListModels(&context, ::vision::v1::ListModelsRequest(),
                                                  &response));
      !s.ok()) {
    return s;
  }
  return response;
}

}  // namespace vision_gateway::client
