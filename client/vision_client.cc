#include "client/vision_client.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string_view>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/http/sha256.h"

namespace vision_gateway::client {
namespace {

std::string FindMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                         std::string_view key) {
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// The call's status as an absl::Status that keeps the google.rpc details and the request id
// (from the initial metadata, or the trailers of a trailers-only answer).
absl::Status FromGrpc(const grpc::Status& status, const grpc::ClientContext& context) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  out.SetPayload(kRpcStatusPayload, absl::Cord(status.error_details()));
  std::string request_id = FindMetadata(context.GetServerInitialMetadata(), "x-request-id");
  if (request_id.empty()) {
    request_id = FindMetadata(context.GetServerTrailingMetadata(), "x-request-id");
  }
  if (!request_id.empty()) out.SetPayload(kRequestIdPayload, absl::Cord(request_id));
  return out;
}

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return text.str();
}

RpcError RpcErrorOf(const absl::Status& status) {
  RpcError error;
  auto details = status.GetPayload(kRpcStatusPayload);
  if (!details.has_value()) return error;
  error.from_rpc = true;
  if (auto id = status.GetPayload(kRequestIdPayload)) error.request_id = std::string(*id);
  google::rpc::Status rpc_status;
  if (details->empty() || !rpc_status.ParseFromString(std::string(*details))) return error;
  for (const google::protobuf::Any& any : rpc_status.details()) {
    if (any.Is<google::rpc::ErrorInfo>()) {
      any.UnpackTo(&error.error_info.emplace());
    } else if (any.Is<google::rpc::RetryInfo>()) {
      any.UnpackTo(&error.retry_info.emplace());
    } else if (any.Is<google::rpc::BadRequest>()) {
      any.UnpackTo(&error.bad_request.emplace());
    } else if (any.Is<google::rpc::QuotaFailure>()) {
      any.UnpackTo(&error.quota_failure.emplace());
    }
  }
  return error;
}

absl::StatusOr<::vision::v1::Image> ImageFromPath(const std::string& path_or_file) {
  ::vision::v1::Image image;
  if (path_or_file == "-") {
    std::string bytes((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return absl::DataLossError("error reading stdin");
    *image.mutable_content() = std::move(bytes);
    return image;
  }
  struct stat info;
  const bool local = ::stat(path_or_file.c_str(), &info) == 0 && !S_ISDIR(info.st_mode);
  if (!local && (absl::StartsWith(path_or_file, "files/") ||
                 absl::StartsWith(path_or_file, "https://generativelanguage.googleapis.com/"))) {
    image.set_file(path_or_file);
    return image;
  }
  auto bytes = ReadFileToString(path_or_file);
  if (!bytes.ok()) return bytes.status();
  *image.mutable_content() = *std::move(bytes);
  return image;
}

absl::StatusOr<std::unique_ptr<VisionClient>> VisionClient::Create(ClientOptions options) {
  if (options.tls && options.tls->cert_chain_pem.empty() != options.tls->private_key_pem.empty()) {
    return absl::InvalidArgumentError("a client certificate needs its key, and a key its certificate");
  }
  return std::make_unique<VisionClient>(std::move(options));
}

VisionClient::VisionClient(ClientOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options_.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options_.tls->root_certs_pem;
    ssl.pem_cert_chain = options_.tls->cert_chain_pem;
    ssl.pem_private_key = options_.tls->private_key_pem;
    credentials = grpc::SslCredentials(ssl);
    if (!options_.authority.empty()) args.SetSslTargetNameOverride(options_.authority);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  if (!options_.authority.empty()) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, options_.authority);
  auto channel = grpc::CreateCustomChannel(options_.target, credentials, args);
  stub_ = ::vision::v1::VisionService::NewStub(channel);
  health_ = ::grpc::health::v1::Health::NewStub(channel);
}

std::unique_ptr<grpc::ClientContext> VisionClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (options_.timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  }
  // Plain metadata rather than call credentials: gRPC sends call credentials only over TLS, and
  // a token over plaintext is the caller's choice (e.g. through a TLS-terminating proxy).
  if (!options_.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  return context;
}

absl::StatusOr<::vision::v1::CaptionResponse> VisionClient::Caption(
    const ::vision::v1::CaptionRequest& request,
    const std::function<void(const std::string&)>& on_text,
    const std::function<void(const ::vision::v1::CaptionResponse&)>& on_message) {
  auto context = NewContext();
  auto reader = stub_->Caption(context.get(), request);
  ::vision::v1::CaptionResponse response, last;
  while (reader->Read(&response)) {
    if (on_message) on_message(response);
    if (!response.text().empty() && on_text) on_text(response.text());
    if (!response.finish_reason().empty()) last = response;
  }
  if (absl::Status s = FromGrpc(reader->Finish(), *context); !s.ok()) return s;
  return last;
}

namespace {

// Reads a server stream to the end, handing each message to on_message.
template <typename Response, typename Reader>
absl::Status ReadStream(Reader& reader, const grpc::ClientContext& context,
                        const std::function<void(const Response&)>& on_message) {
  Response response;
  while (reader->Read(&response)) on_message(response);
  return FromGrpc(reader->Finish(), context);
}

}  // namespace

absl::Status VisionClient::Detect(
    const ::vision::v1::DetectRequest& request,
    const std::function<void(const ::vision::v1::DetectResponse&)>& on_message) {
  auto context = NewContext();
  auto reader = stub_->Detect(context.get(), request);
  return ReadStream(reader, *context, on_message);
}

absl::Status VisionClient::Segment(
    const ::vision::v1::SegmentRequest& request,
    const std::function<void(const ::vision::v1::SegmentResponse&)>& on_message) {
  auto context = NewContext();
  auto reader = stub_->Segment(context.get(), request);
  return ReadStream(reader, *context, on_message);
}

absl::StatusOr<::vision::v1::CountTokensResponse> VisionClient::CountTokens(
    const ::vision::v1::CountTokensRequest& request) {
  auto context = NewContext();
  ::vision::v1::CountTokensResponse response;
  if (absl::Status s = FromGrpc(stub_->CountTokens(context.get(), request, &response), *context);
      !s.ok()) {
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
  auto context = NewContext();
  ::vision::v1::File file;
  auto writer = stub_->Upload(context.get(), &file);
  bool open = writer->Write(header);
  int64_t sent = 0;
  ::vision::v1::UploadRequest message;
  std::string* buffer = message.mutable_chunk();
  while (open && sent < size) {
    buffer->resize(static_cast<std::size_t>(std::min<int64_t>(chunk_bytes, size - sent)));
    in.read(buffer->data(), static_cast<std::streamsize>(buffer->size()));
    if (in.gcount() != static_cast<std::streamsize>(buffer->size())) {
      context->TryCancel();
      writer->Finish();
      return absl::DataLossError(absl::StrCat(path, " changed while it was being uploaded"));
    }
    // A failed write means the server has already answered (e.g. an identical file exists).
    open = writer->Write(message);
    sent += static_cast<int64_t>(buffer->size());
    if (open && options.on_progress) options.on_progress(sent, size);
  }
  if (open) writer->WritesDone();
  if (absl::Status s = FromGrpc(writer->Finish(), *context); !s.ok()) return s;
  return file;
}

absl::StatusOr<::vision::v1::File> VisionClient::GetFile(const std::string& name) {
  auto context = NewContext();
  ::vision::v1::GetFileRequest request;
  request.set_name(name);
  ::vision::v1::File file;
  if (absl::Status s = FromGrpc(stub_->GetFile(context.get(), request, &file), *context); !s.ok()) {
    return s;
  }
  return file;
}

absl::StatusOr<::vision::v1::ListFilesResponse> VisionClient::ListFiles(
    int page_size, const std::string& page_token) {
  auto context = NewContext();
  ::vision::v1::ListFilesRequest request;
  request.set_page_size(page_size);
  request.set_page_token(page_token);
  ::vision::v1::ListFilesResponse response;
  if (absl::Status s = FromGrpc(stub_->ListFiles(context.get(), request, &response), *context);
      !s.ok()) {
    return s;
  }
  return response;
}

absl::Status VisionClient::DeleteFile(const std::string& name) {
  auto context = NewContext();
  ::vision::v1::DeleteFileRequest request;
  request.set_name(name);
  google::protobuf::Empty empty;
  return FromGrpc(stub_->DeleteFile(context.get(), request, &empty), *context);
}

absl::StatusOr<::vision::v1::BatchJob> VisionClient::CreateBatch(
    const ::vision::v1::CreateBatchHeader& header, const std::vector<std::string>& paths) {
  auto context = NewContext();
  ::vision::v1::BatchJob job;
  auto writer = stub_->CreateBatch(context.get(), &job);
  ::vision::v1::CreateBatchRequest message;
  *message.mutable_header() = header;
  bool open = writer->Write(message);
  absl::Status local;
  for (size_t i = 0; open && i < paths.size(); ++i) {
    auto image = ImageFromPath(paths[i]);
    if (!image.ok()) {
      local = image.status();
      context->TryCancel();
      break;
    }
    ::vision::v1::CreateBatchRequest item;
    item.mutable_item()->set_key(paths[i]);
    *item.mutable_item()->mutable_image() = *std::move(image);
    open = writer->Write(item);
  }
  if (open) writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!local.ok()) return local;
  if (absl::Status s = FromGrpc(status, *context); !s.ok()) return s;
  return job;
}

absl::StatusOr<::vision::v1::BatchJob> VisionClient::GetBatch(const std::string& name) {
  auto context = NewContext();
  ::vision::v1::GetBatchRequest request;
  request.set_name(name);
  ::vision::v1::BatchJob job;
  if (absl::Status s = FromGrpc(stub_->GetBatch(context.get(), request, &job), *context);
      !s.ok()) {
    return s;
  }
  return job;
}

absl::StatusOr<::vision::v1::ListBatchesResponse> VisionClient::ListBatches(
    int page_size, const std::string& page_token) {
  auto context = NewContext();
  ::vision::v1::ListBatchesRequest request;
  request.set_page_size(page_size);
  request.set_page_token(page_token);
  ::vision::v1::ListBatchesResponse response;
  if (absl::Status s = FromGrpc(stub_->ListBatches(context.get(), request, &response), *context);
      !s.ok()) {
    return s;
  }
  return response;
}

absl::Status VisionClient::CancelBatch(const std::string& name) {
  auto context = NewContext();
  ::vision::v1::CancelBatchRequest request;
  request.set_name(name);
  google::protobuf::Empty empty;
  return FromGrpc(stub_->CancelBatch(context.get(), request, &empty), *context);
}

absl::Status VisionClient::DeleteBatch(const std::string& name) {
  auto context = NewContext();
  ::vision::v1::DeleteBatchRequest request;
  request.set_name(name);
  google::protobuf::Empty empty;
  return FromGrpc(stub_->DeleteBatch(context.get(), request, &empty), *context);
}

absl::Status VisionClient::ReadBatchResults(
    const std::string& name, const std::string& start_after_key,
    const std::function<void(const ::vision::v1::BatchResult&)>& on_message) {
  auto context = NewContext();
  ::vision::v1::ReadBatchResultsRequest request;
  request.set_name(name);
  request.set_start_after_key(start_after_key);
  auto reader = stub_->ReadBatchResults(context.get(), request);
  return ReadStream(reader, *context, on_message);
}

absl::StatusOr<::vision::v1::ListModelsResponse> VisionClient::ListModels() {
  auto context = NewContext();
  ::vision::v1::ListModelsResponse response;
  if (absl::Status s = FromGrpc(
          stub_->ListModels(context.get(), ::vision::v1::ListModelsRequest(), &response), *context);
      !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<::grpc::health::v1::HealthCheckResponse> VisionClient::Health(
    const std::string& service) {
  auto context = NewContext();
  ::grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  ::grpc::health::v1::HealthCheckResponse response;
  if (absl::Status s = FromGrpc(health_->Check(context.get(), request, &response), *context);
      !s.ok()) {
    return s;
  }
  return response;
}

}  // namespace vision_gateway::client
