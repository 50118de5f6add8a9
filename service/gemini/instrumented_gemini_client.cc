#include "service/gemini/instrumented_gemini_client.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/time/clock.h"
#include "service/telemetry/call_record.h"

namespace vision_gateway::gemini {
namespace {

using telemetry::TokenKind;

// What one exchange reports when it ends.
class Exchange {
 public:
  Exchange(telemetry::Telemetry& telemetry, const CallOptions& options, const char* operation,
           std::string model)
      : telemetry_(telemetry),
        record_(options.record),
        operation_(operation),
        model_(std::move(model)),
        start_(absl::Now()) {}

  void FirstByte() {
    if (first_byte_ < absl::ZeroDuration()) first_byte_ = absl::Now() - start_;
  }

  // Usage is cumulative over a stream: the last one counts.
  void Usage(const UsageMetadata& usage) { usage_ = usage; }

  void Done(const absl::Status& status) {
    const absl::Duration latency = absl::Now() - start_;
    telemetry_.UpstreamAttemptDone({.operation = operation_,
                                    .model = model_,
                                    .code = status.code(),
                                    .latency = latency,
                                    .time_to_first_byte = first_byte_});
    if (record_) record_->AddUpstreamAttempt(latency);
    if (usage_) {
      const std::pair<TokenKind, int64_t> counts[] = {
          {TokenKind::kPrompt, usage_->prompt_token_count},
          {TokenKind::kOutput, usage_->candidates_token_count},
          {TokenKind::kThinking, usage_->thoughts_token_count}};
      for (const auto& [kind, count] : counts) {
        if (count <= 0) continue;
        telemetry_.Tokens(model_, kind, count);
        if (record_) record_->AddTokens(kind, count);
      }
    }
  }

 private:
  telemetry::Telemetry& telemetry_;
  const std::shared_ptr<telemetry::CallRecord> record_;
  const char* const operation_;
  const std::string model_;
  const absl::Time start_;
  absl::Duration first_byte_ = absl::Seconds(-1);
  std::optional<UsageMetadata> usage_;
};

// The completion of a call without a model (list, files), reporting its exchange first.
template <typename T>
absl::AnyInvocable<void(absl::StatusOr<T>)> Observe(
    telemetry::Telemetry& telemetry, const char* operation, const CallOptions& options,
    absl::AnyInvocable<void(absl::StatusOr<T>)> done) {
  auto exchange = std::make_shared<Exchange>(telemetry, options, operation, std::string());
  return [exchange, done = std::move(done)](absl::StatusOr<T> result) mutable {
    if (result.ok()) exchange->FirstByte();
    exchange->Done(result.status());
    if (done) done(std::move(result));
  };
}

absl::AnyInvocable<void(absl::Status)> ObserveStatus(telemetry::Telemetry& telemetry,
                                                     const char* operation,
                                                     const CallOptions& options,
                                                     absl::AnyInvocable<void(absl::Status)> done) {
  auto exchange = std::make_shared<Exchange>(telemetry, options, operation, std::string());
  return [exchange, done = std::move(done)](absl::Status status) mutable {
    if (status.ok()) exchange->FirstByte();
    exchange->Done(status);
    if (done) done(std::move(status));
  };
}

class InstrumentedGenerateStub final : public GenerateStub {
 public:
  InstrumentedGenerateStub(std::shared_ptr<GenerateStub> inner, telemetry::Telemetry& telemetry)
      : inner_(std::move(inner)), telemetry_(telemetry) {}

  std::shared_ptr<PendingCall> StreamGenerateContent(const std::string& model,
                                                     GenerateContentRequest request,
                                                     CallOptions options,
                                                     StreamObserver observer) override {
    // Stream callbacks of one call never run concurrently: the exchange needs no lock.
    auto exchange =
        std::make_shared<Exchange>(telemetry_, options, "streamGenerateContent", model);
    StreamObserver wrapped{
        .on_chunk =
            [exchange, on_chunk = std::move(observer.on_chunk)](
                GenerateContentResponse chunk) mutable {
              exchange->FirstByte();
              if (chunk.usage_metadata) exchange->Usage(*chunk.usage_metadata);
              if (on_chunk) on_chunk(std::move(chunk));
            },
        .on_done =
            [exchange, on_done = std::move(observer.on_done)](absl::Status status) mutable {
              exchange->Done(status);
              if (on_done) on_done(std::move(status));
            },
    };
    return inner_->StreamGenerateContent(model, std::move(request), std::move(options),
                                         std::move(wrapped));
  }

  std::shared_ptr<PendingCall> GenerateContent(
      const std::string& model, GenerateContentRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<GenerateContentResponse>)> done) override {
    auto exchange = std::make_shared<Exchange>(telemetry_, options, "generateContent", model);
    return inner_->GenerateContent(
        model, std::move(request), std::move(options),
        [exchange, done = std::move(done)](absl::StatusOr<GenerateContentResponse> result) mutable {
          if (result.ok()) {
            exchange->FirstByte();
            if (result->usage_metadata) exchange->Usage(*result->usage_metadata);
          }
          exchange->Done(result.status());
          if (done) done(std::move(result));
        });
  }

  std::shared_ptr<PendingCall> CountTokens(
      const std::string& model, CountTokensRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<CountTokensResponse>)> done) override {
    auto exchange = std::make_shared<Exchange>(telemetry_, options, "countTokens", model);
    return inner_->CountTokens(
        model, std::move(request), std::move(options),
        [exchange, done = std::move(done)](absl::StatusOr<CountTokensResponse> result) mutable {
          if (result.ok()) exchange->FirstByte();
          exchange->Done(result.status());
          if (done) done(std::move(result));
        });
  }

  std::shared_ptr<PendingCall> ListModels(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListModelsResponse>)> done) override {
    auto observed = Observe(telemetry_, "models.list", options, std::move(done));
    return inner_->ListModels(page_size, page_token, std::move(options), std::move(observed));
  }

 private:
  const std::shared_ptr<GenerateStub> inner_;
  telemetry::Telemetry& telemetry_;
};

class InstrumentedFilesStub final : public FilesStub {
 public:
  InstrumentedFilesStub(std::shared_ptr<FilesStub> inner, telemetry::Telemetry& telemetry)
      : inner_(std::move(inner)), telemetry_(telemetry) {}

  // Files API calls: one attempt each, under their operation name (no model).
  std::shared_ptr<PendingCall> StartUpload(
      StartUploadRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadSession>)> done) override {
    auto observed = Observe(telemetry_, "uploadStart", options, std::move(done));
    return inner_->StartUpload(std::move(request), std::move(options), std::move(observed));
  }

  std::shared_ptr<PendingCall> UploadChunk(
      const std::string& upload_url, int64_t offset, ChunkBytes bytes, bool finalize,
      CallOptions options, absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) override {
    if (options.record) options.record->AddUploadBytes(static_cast<int64_t>(bytes.size()));
    auto observed = Observe(telemetry_, "uploadChunk", options, std::move(done));
    return inner_->UploadChunk(upload_url, offset, std::move(bytes), finalize, std::move(options),
                               std::move(observed));
  }

  std::shared_ptr<PendingCall> QueryUpload(
      const std::string& upload_url, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) override {
    auto observed = Observe(telemetry_, "uploadQuery", options, std::move(done));
    return inner_->QueryUpload(upload_url, std::move(options), std::move(observed));
  }

  std::shared_ptr<PendingCall> CancelUpload(const std::string& upload_url, CallOptions options,
                                            absl::AnyInvocable<void(absl::Status)> done) override {
    auto observed = ObserveStatus(telemetry_, "uploadCancel", options, std::move(done));
    return inner_->CancelUpload(upload_url, std::move(options), std::move(observed));
  }

  std::shared_ptr<PendingCall> GetFile(const std::string& name, CallOptions options,
                                       absl::AnyInvocable<void(absl::StatusOr<File>)> done) override {
    auto observed = Observe(telemetry_, "files.get", options, std::move(done));
    return inner_->GetFile(name, std::move(options), std::move(observed));
  }

  std::shared_ptr<PendingCall> ListFiles(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListFilesResponse>)> done) override {
    auto observed = Observe(telemetry_, "files.list", options, std::move(done));
    return inner_->ListFiles(page_size, page_token, std::move(options), std::move(observed));
  }

  std::shared_ptr<PendingCall> DeleteFile(const std::string& name, CallOptions options,
                                          absl::AnyInvocable<void(absl::Status)> done) override {
    auto observed = ObserveStatus(telemetry_, "files.delete", options, std::move(done));
    return inner_->DeleteFile(name, std::move(options), std::move(observed));
  }

 private:
  const std::shared_ptr<FilesStub> inner_;
  telemetry::Telemetry& telemetry_;
};

// The Batch API (#20): one exchange per call, under the retrying decorator's operation names
// (batches.create with its model; the others, and the responses file's download, without one).
class InstrumentedBatchesStub final : public BatchesStub {
 public:
  InstrumentedBatchesStub(std::shared_ptr<BatchesStub> inner, telemetry::Telemetry& telemetry)
      : inner_(std::move(inner)), telemetry_(telemetry) {}

  std::shared_ptr<PendingCall> CreateBatch(
      const std::string& model, CreateBatchRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<BatchJob>)> done) override {
    auto exchange = std::make_shared<Exchange>(telemetry_, options, "batches.create", model);
    return inner_->CreateBatch(
        model, std::move(request), std::move(options),
        [exchange, done = std::move(done)](absl::StatusOr<BatchJob> result) mutable {
          if (result.ok()) exchange->FirstByte();
          exchange->Done(result.status());
          if (done) done(std::move(result));
        });
  }

  std::shared_ptr<PendingCall> GetBatch(
      const std::string& name, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<BatchJob>)> done) override {
    auto observed = Observe(telemetry_, "batches.get", options, std::move(done));
    return inner_->GetBatch(name, std::move(options), std::move(observed));
  }

  std::shared_ptr<PendingCall> ListBatches(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListBatchesResponse>)> done) override {
    auto observed = Observe(telemetry_, "batches.list", options, std::move(done));
    return inner_->ListBatches(page_size, page_token, std::move(options), std::move(observed));
  }

  std::shared_ptr<PendingCall> CancelBatch(const std::string& name, CallOptions options,
                                           absl::AnyInvocable<void(absl::Status)> done) override {
    auto observed = ObserveStatus(telemetry_, "batches.cancel", options, std::move(done));
    return inner_->CancelBatch(name, std::move(options), std::move(observed));
  }

  std::shared_ptr<PendingCall> DeleteBatch(const std::string& name, CallOptions options,
                                           absl::AnyInvocable<void(absl::Status)> done) override {
    auto observed = ObserveStatus(telemetry_, "batches.delete", options, std::move(done));
    return inner_->DeleteBatch(name, std::move(options), std::move(observed));
  }

  // The whole download is one exchange: its first byte is the first piece, it ends with on_done
  // (the reader's pauses count in its latency, as the deadline counts them).
  std::shared_ptr<PendingCall> DownloadFile(const std::string& name, CallOptions options,
                                            DownloadObserver observer) override {
    // A download's callbacks never run concurrently: the exchange needs no lock.
    auto exchange = std::make_shared<Exchange>(telemetry_, options, "files.download", "");
    DownloadObserver wrapped{
        .on_data =
            [exchange, on_data = std::move(observer.on_data)](
                std::string_view data, absl::AnyInvocable<void()> more) mutable {
              exchange->FirstByte();
              if (on_data) on_data(data, std::move(more));
            },
        .on_done =
            [exchange, on_done = std::move(observer.on_done)](absl::Status status) mutable {
              exchange->Done(status);
              if (on_done) on_done(std::move(status));
            },
    };
    return inner_->DownloadFile(name, std::move(options), std::move(wrapped));
  }

 private:
  const std::shared_ptr<BatchesStub> inner_;
  telemetry::Telemetry& telemetry_;
};

}  // namespace

std::unique_ptr<GenerateStub> MakeInstrumentedGenerateStub(std::shared_ptr<GenerateStub> inner,
                                                           telemetry::Telemetry& telemetry) {
  return std::make_unique<InstrumentedGenerateStub>(std::move(inner), telemetry);
}

std::unique_ptr<FilesStub> MakeInstrumentedFilesStub(std::shared_ptr<FilesStub> inner,
                                                     telemetry::Telemetry& telemetry) {
  return std::make_unique<InstrumentedFilesStub>(std::move(inner), telemetry);
}

std::unique_ptr<BatchesStub> MakeInstrumentedBatchesStub(std::shared_ptr<BatchesStub> inner,
                                                         telemetry::Telemetry& telemetry) {
  return std::make_unique<InstrumentedBatchesStub>(std::move(inner), telemetry);
}

GeminiStubs MakeInstrumentedStubs(GeminiStubs inner, telemetry::Telemetry& telemetry) {
  GeminiStubs stubs(MakeInstrumentedGenerateStub(std::move(inner.generate), telemetry),
                    MakeInstrumentedFilesStub(std::move(inner.files), telemetry));
  if (inner.batches != nullptr) {
    stubs.batches = MakeInstrumentedBatchesStub(std::move(inner.batches), telemetry);
  }
  return stubs;
}

}  // namespace vision_gateway::gemini
